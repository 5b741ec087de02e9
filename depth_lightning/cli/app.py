"""The Hydra wrapper of every command: the only place that turns errors into exit statuses.

* A problem with the user's input (:class:`~depth_lightning.errors.DepthLightningError`,
  wherever it is raised) prints one ``error: <message>`` line on stderr, exits 1 and leaves no
  half-written run folder; a run stopped by a signal prints the `resume=` command and exits
  128 + the signal's number.
* An error in the command line or the configs (an unknown setting, a missing option, a
  malformed override, a YAML syntax error, an unwritable run folder) prints one ``error:``
  line and exits 2. ``HYDRA_FULL_ERROR=1`` shows Hydra's own report instead.
* Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from depth_lightning.cli.messages import hydra_message, yaml_message
from depth_lightning.cli.resolvers import register_resolvers, remove_scratch
from depth_lightning.errors import DepthLightningError, Stopped, user_error

CONFIG_PATH = "pkg://depth_lightning.conf"
_FROM_TASK = "_depth_lightning_task"  # marks an exception raised by a task, not by Hydra
# `key=value` with a plain (dotted) key, optionally prefixed +, ++ or ~
_OVERRIDE = re.compile(r"^(~|\+\+|\+)?[A-Za-z_][\w.@/-]*=")


def quote_values(argv: list[str]) -> list[str]:
    """Overrides whose value holds a `=` (a multirun job's folder, `.../0_seed=0/...`), quoted
    for Hydra's override grammar, which would otherwise reject them; values already quoted, or
    holding an interpolation or brackets, are left as they are."""
    out = []
    for arg in argv:
        m = _OVERRIDE.match(arg)
        value = arg[m.end():] if m else ""
        if m and "=" in value and not any(c in value for c in "'\"${}[]()\\"):
            arg = f"{arg[:m.end()]}'{value}'"
        out.append(arg)
    return out


def discard_run_dir(out_dir: Path) -> None:
    """Remove a run folder holding only Hydra's bookkeeping (.hydra and the job's log), so an
    invocation refused for bad input leaves nothing half-written."""
    if out_dir.is_dir() and all(p.name == ".hydra" or p.suffix == ".log"
                                for p in out_dir.iterdir()):
        shutil.rmtree(out_dir, ignore_errors=True)


def _report(problem: DepthLightningError, out_dir: Path) -> None:
    """A user error of a task: one line (and the resume command for a stopped run)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if isinstance(problem, Stopped):  # stopped by a signal, after a resumable checkpoint
        print(f"{problem}\nresume with: python -m depth_lightning.train resume={out_dir}",
              file=sys.stderr)
        sys.exit(128 + int(problem.signum))
    print(f"error: {problem}", file=sys.stderr)
    discard_run_dir(out_dir)
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        problem.reported = True  # the sweep ends with status 1, without a second report
        raise problem  # the sweep goes on with its other jobs; Hydra re-raises this one last
    sys.exit(1)


def run_task(cfg: DictConfig, task: Callable[[DictConfig], Any]) -> Any:
    """Run a command's task inside its Hydra job, reporting user errors as one line."""
    from hydra.core.hydra_config import HydraConfig

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
    try:
        return task(cfg)
    except Exception as e:
        problem = user_error(e)
        if problem is None:
            setattr(e, _FROM_TASK, True)
            raise
        _report(problem, out_dir)
    finally:
        remove_scratch(out_dir)


def _run_main(main: Callable[[], Any], full_error: bool) -> Any:
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return main()
    except (HydraException, OmegaConfBaseException, OSError, yaml.YAMLError) as e:
        if full_error or getattr(e, _FROM_TASK, False):
            raise
        text = yaml_message(e) if isinstance(e, yaml.YAMLError) else hydra_message(e)
        print(f"error: {text}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:
        problem = user_error(e)  # a sweep's failed job, re-raised when all have run
        if problem is None or full_error:
            raise
        if not getattr(problem, "reported", False):
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(1)


def hydra_app(config_name: str, task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
    """The command-line main of a command: Hydra composes `config_name` (the packaged configs,
    then the user's conf/ folder) and `task` runs on the result, with errors as described
    above."""
    import hydra

    @functools.wraps(task)
    def job(cfg: DictConfig) -> Any:
        return run_task(cfg, task)

    hydra_main = hydra.main(version_base="1.3", config_path=CONFIG_PATH,
                            config_name=config_name)(job)

    def main() -> Any:
        register_resolvers()
        sys.argv[1:] = quote_values(sys.argv[1:])
        full_error = os.environ.get("HYDRA_FULL_ERROR") == "1"
        # the folder of the user's own configs (conf/) is optional: no warning without it
        warnings.filterwarnings("ignore", message=r"provider=hydra.searchpath in main, path=.* "
                                "is not available")
        with hydra_raises():
            return _run_main(hydra_main, full_error)

    return main


@contextlib.contextmanager
def hydra_raises() -> Iterator[None]:
    """Hydra raises its errors instead of printing its own report, while a command runs (its
    one switch is the HYDRA_FULL_ERROR variable); the user's setting is back afterwards."""
    before = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = before
