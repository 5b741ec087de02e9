"""Weights & Biases: one run per stage of each job, grouped by sweep, offline unless the machine
has credentials (runs sync later with `wandb sync <dir>`). The run-dependent settings are
resolvers the logger config uses (`${dl_wandb_group:}`, `${dl_wandb_offline:}`, ...)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf


def has_wandb_credentials() -> bool:
    """An API key in the environment or in ~/.netrc (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def wandb_offline() -> bool:
    """Offline unless credentials exist (and WANDB_MODE is not offline)."""
    return not has_wandb_credentials() or os.environ.get("WANDB_MODE") == "offline"


def sweep_group() -> str:
    """The sweep's folder name in a multirun (so its jobs sit together), else the run's."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return Path(hc.sweep.dir).name
        return Path(hc.runtime.output_dir).name
    except ValueError:  # Hydra not initialised: called outside an entry point
        return "depth_lightning"


def run_name() -> str:
    """The job's folder name (multirun: number and overrides), for W&B run names."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir).name
    except ValueError:
        return "run"


def start_wandb(logger: Any, cfg: DictConfig) -> None:
    """Start a WandbLogger's run now (W&B starts lazily: fail here rather than mid-fit) and
    send it the resolved config; other loggers are left as they are."""
    if type(logger).__name__ != "WandbLogger":
        return
    Path(logger.save_dir).mkdir(parents=True, exist_ok=True)
    logger.experiment.config.update(OmegaConf.to_container(cfg, resolve=True),
                                    allow_val_change=True)


for _name, _fn in (("dl_wandb_group", sweep_group), ("dl_wandb_offline", wandb_offline),
                   ("dl_run_name", run_name)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
