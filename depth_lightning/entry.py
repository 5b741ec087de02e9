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
        print(f"error: {problem}", file=sys.stderr)
        discard_run_dir(Path(cfg.paths.output_dir))
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise  # the sweep goes on with its other jobs; Hydra reports this one at the end
        sys.exit(1)
