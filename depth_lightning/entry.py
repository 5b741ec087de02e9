"""What the entry points share: paths as the user meant them, required settings, devices, and
the one-line error convention (user errors print `error: <message>`, exit 1, and leave no
half-written run folder behind)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from depth_lightning.errors import DepthLightningError
from depth_lightning.hw import reuse_freed_memory


def user_path(path: str | Path) -> Path:
    """A path as the user meant it: relative paths are taken from the directory the command was
    started in (Hydra's runtime.cwd), whatever the process's working directory is now."""
    p = Path(str(path)).expanduser()
    if p.is_absolute():
        return p
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.cwd) / p
    except ValueError:  # not running under Hydra
        return Path.cwd() / p


def required(cfg: DictConfig, key: str, hint: str) -> Any:
    """cfg[key], or a one-line error naming the setting when it was left at ???."""
    if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
        raise DepthLightningError(f"{key}: required, {hint}")
    return cfg[key]


def resolve_device(name: str, cpu_allocator: str = "reuse") -> torch.device:
    """`auto` -> cuda when available, else cpu; anything else as torch names it. On the CPU the
    allocator is set up as `cpu_allocator` says (hw.reuse_freed_memory)."""
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError as e:
            raise DepthLightningError(f"device: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DepthLightningError(f"device: {name} is not available here (this torch has no "
                                  "usable CUDA device); use device=cpu or device=auto")
    if device.type not in ("cpu", "cuda", "mps") or (
            device.type == "mps" and not torch.backends.mps.is_available()):
        raise DepthLightningError(f"device: {name} is not available here (cpu, cuda or auto)")
    if device.type == "cpu":
        reuse_freed_memory(cpu_allocator)
    return device


def user_error(e: BaseException | None) -> DepthLightningError | None:
    """The DepthLightningError behind `e`, also when Hydra's instantiate wrapped it."""
    while e is not None:
        if isinstance(e, DepthLightningError):
            return e
        e = e.__cause__ or e.__context__
    return None


def discard_run_dir(out_dir: Path) -> None:
    """Remove a run folder holding only Hydra's bookkeeping (.hydra and the job's log), so an
    invocation refused for bad input leaves nothing half-written."""
    if out_dir.is_dir() and all(p.name == ".hydra" or p.suffix == ".log"
                                for p in out_dir.iterdir()):
        shutil.rmtree(out_dir, ignore_errors=True)


def run_task(cfg: DictConfig, task: Callable[[DictConfig], Any]) -> Any:
    """Run an entry point's task: user errors become `error: <message>` on stderr and exit 1."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    with open_dict(cfg):
        cfg.paths.output_dir = HydraConfig.get().runtime.output_dir
    try:
        return task(cfg)
    except Exception as e:
        problem = user_error(e)
        if problem is None:
            raise
        if hasattr(problem, "signum"):  # stopped by a signal, after a resumable checkpoint
            print(f"{problem}\nresume with: python -m depth_lightning.train resume="
                  f"{cfg.paths.output_dir}", file=sys.stderr)
            sys.exit(128 + int(problem.signum))
        print(f"error: {problem}", file=sys.stderr)
        discard_run_dir(Path(cfg.paths.output_dir))
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            problem.reported = True  # entry() ends the sweep with status 1, no second report
            raise  # the sweep goes on with its other jobs; Hydra re-raises this one at the end
        sys.exit(1)


def _hydra_message(e: BaseException) -> str:
    """One line for a Hydra or OmegaConf error about the command line or the configs."""
    import re

    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(e)
    if isinstance(e, MissingConfigException):
        missing = re.search(r"Could not find '([^']+)'", text)
        options = re.findall(r"^\t(\S+)$", text, flags=re.M)
        where = missing.group(1) if missing else text.splitlines()[0]
        group, _, name = where.rpartition("/")
        return (f"{group}={name}" if group else where) + ": no such option" + (
            f" (choose from {', '.join(o for o in options if o != 'common')})" if options else "")
    if isinstance(e, OverrideParseException):
        return f"{e.override}: not an override of the form key=value ({text.splitlines()[0]})"
    if isinstance(e, OSError) and e.filename:
        return f"paths.log_dir: cannot create {e.filename} ({e.strerror})"
    override = re.match(r"Could not override '([^']+)'", text)
    if override and "+" in text:
        key = override.group(1)
        return f"{key}: not a setting of this command (add a new one with +{key}=...)"
    lines = []
    while e is not None:
        lines += [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        e = e.__cause__
    return "; ".join(dict.fromkeys(ln for ln in lines if not ln.startswith(
        ("full_key:", "object_type", "Config search path", "provider="))))


def _raised_in_hydra(e: BaseException) -> bool:
    """Whether an exception comes from Hydra's own work (creating the run folder, say), not
    from an entry point's task: Hydra's frames are the deepest of the package's and Hydra's."""
    files, tb = [], e.__traceback__
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    hydra = [i for i, f in enumerate(files) if "/hydra/" in f]
    ours = [i for i, f in enumerate(files) if "/depth_lightning/" in f and "entry.py" not in f]
    return bool(hydra) and (not ours or hydra[-1] > ours[-1])


def hydra_main(config_name: str) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """`hydra.main` for an entry point, with errors in the command line or the configs (an
    unknown setting, a missing option, a malformed override, an unwritable run folder) as one
    `error:` line and exit status 2 instead of Hydra's report. `HYDRA_FULL_ERROR=1` shows
    Hydra's own."""
    import functools
    import os

    import hydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from depth_lightning import console  # noqa: F401  (--help's resolver)

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        main = hydra.main(version_base="1.3", config_path="conf", config_name=config_name)(task)

        @functools.wraps(task)
        def entry() -> Any:
            user_choice = os.environ.get("HYDRA_FULL_ERROR")
            os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises; the wrapper reports
            try:
                return main()
            except (HydraException, OmegaConfBaseException, OSError) as e:
                unexplained = isinstance(e, OSError) and not isinstance(e, HydraException) \
                    and not (e.filename and _raised_in_hydra(e))
                if user_choice == "1" or unexplained:
                    raise
                print(f"error: {_hydra_message(e)}", file=sys.stderr)
                sys.exit(2)
            except Exception as e:
                problem = user_error(e)  # a sweep's failed job, re-raised when all have run
                if problem is None or user_choice == "1":
                    raise
                if not getattr(problem, "reported", False):
                    print(f"error: {problem}", file=sys.stderr)
                sys.exit(1)
            finally:
                if user_choice is None:
                    os.environ.pop("HYDRA_FULL_ERROR", None)
                else:
                    os.environ["HYDRA_FULL_ERROR"] = user_choice

        return entry

    return decorate
