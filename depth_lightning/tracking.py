"""Weights & Biases settings: one run per stage of each job, grouped by sweep, offline unless
the machine has credentials (runs sync later with `wandb sync <dir>`)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig


def has_wandb_credentials() -> bool:
    """An API key in the environment or in ~/.netrc (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def sweep_group(cfg: DictConfig) -> str:
    """The sweep's folder name in a multirun (so its jobs sit together), else the run's."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        if hc.mode == RunMode.MULTIRUN:
            return Path(hc.sweep.dir).name
    except ValueError:  # Hydra not initialised: called outside an entry point
        pass
    return Path(cfg.paths.output_dir).name


def wandb_settings(lg_cfg: DictConfig, cfg: DictConfig, stage_dir: Path, stage: str
                   ) -> dict[str, Any]:
    """Keyword arguments for WandbLogger that depend on the run: group, job type, name, offline
    mode and folder (the resolved config is sent once the run has started)."""
    offline = lg_cfg.get("offline")
    if offline is None:
        offline = not has_wandb_credentials() or os.environ.get("WANDB_MODE") == "offline"
    job = Path(cfg.paths.output_dir).name
    stage_dir.mkdir(parents=True, exist_ok=True)
    return {
        "group": lg_cfg.get("group") or sweep_group(cfg),
        "job_type": stage,
        "name": lg_cfg.get("name") or f"{job}-{stage}",
        "offline": bool(offline),
        # WANDB_DIR, when set, wins (a shared scratch folder); else beside the stage's outputs
        "save_dir": os.environ.get("WANDB_DIR") or str(stage_dir),
        "tags": list(cfg.get("tags") or []),
        "reinit": "finish_previous",
    }
