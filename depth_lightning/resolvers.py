"""OmegaConf resolvers used by the configs (imported by every entry point before composing)."""

from __future__ import annotations

import secrets

from omegaconf import OmegaConf

from depth_lightning import tracking  # noqa: F401  (registers the W&B resolvers)

# Drawn once per process: Hydra resolves the run directory more than once, and two runs started
# in the same second (or on two nodes) must still get different folders.
_RUN_UID = secrets.token_hex(3)

if not OmegaConf.has_resolver("dl_uid"):
    OmegaConf.register_new_resolver("dl_uid", lambda: _RUN_UID)


def run_folder(stamp: str) -> str:
    """A run folder's name: under SLURM `slurm-<job id>`, the same again when the scheduler
    requeues the job (so it continues in its folder); else `<date>_<time>_<random id>`."""
    import os

    job = os.environ.get("SLURM_JOB_ID")
    return f"slurm-{job}" if job else f"{stamp}_{_RUN_UID}"


def run_dir(resume: str | None, fresh: str) -> str:
    """Hydra's run folder: the stopped run's own for `resume=RUN_DIR`, else a fresh one (also
    when RUN_DIR is no run folder: the refusal then leaves nothing in it)."""
    from pathlib import Path

    if resume and (Path(str(resume)).expanduser() / "config.yaml").is_file():
        return str(resume)
    return fresh


def hydra_subdir(resume: str | None) -> str:
    """Hydra's record of the invocation: `.hydra`, or for a resume `.hydra/resume-<time>`, so
    the original record stays."""
    from pathlib import Path

    if not resume or not (Path(str(resume)).expanduser() / "config.yaml").is_file():
        return ".hydra"
    import time

    return f".hydra/resume-{time.strftime('%Y-%m-%d_%H-%M-%S')}"


for _name, _fn in (("dl_run_dir", run_dir), ("dl_hydra_subdir", hydra_subdir),
                   ("dl_run_folder", run_folder)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
