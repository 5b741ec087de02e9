"""The OmegaConf resolvers the packaged configs use: where a command's run folder goes.

:func:`register_resolvers` adds them once; the command-line wrapper calls it before Hydra
composes, and :func:`depth_lightning.cli.compose.compose` before an in-process compose.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf

# Drawn once per process: Hydra resolves the run directory more than once, and two runs started
# in the same second (or on two nodes) must still get different folders.
RUN_UID = secrets.token_hex(3)
# The private folder a command that writes only where it is told (predict with output_dir,
# export, demo) gives Hydra for its bookkeeping; removed when the command ends.
SCRATCH = Path(tempfile.gettempdir()) / f"depth_lightning-{os.getpid()}-{RUN_UID}"


def run_folder(stamp: str) -> str:
    """A run folder's name: under SLURM `slurm-<job id>`, the same again when the scheduler
    requeues the job (so it continues in its folder); else `<date>_<time>_<random id>`."""
    job = os.environ.get("SLURM_JOB_ID")
    return f"slurm-{job}" if job else f"{stamp}_{RUN_UID}"


def _is_run(resume: str | None) -> bool:
    return bool(resume) and (Path(str(resume)).expanduser() / "config.yaml").is_file()


def run_dir(resume: str | None, fresh: str) -> str:
    """Hydra's run folder: the stopped run's own for `resume=RUN_DIR`, else a fresh one (also
    when RUN_DIR is no run folder: the refusal then leaves nothing in it)."""
    return str(resume) if _is_run(resume) else fresh


def hydra_subdir(resume: str | None) -> str:
    """Hydra's record of the invocation: `.hydra`, or for a resume `.hydra/resume-<time>`, so
    the original record stays."""
    return f".hydra/resume-{time.strftime('%Y-%m-%d_%H-%M-%S')}" if _is_run(resume) else ".hydra"


def scratch_run_dir(output_dir: str | None = None, fresh: str = "") -> str:
    """Hydra's run folder: the private SCRATCH folder when the command writes only where it is
    told (`output_dir` given, or no default run folder `fresh`), else the run folder `fresh`."""
    return str(SCRATCH) if output_dir or not fresh else fresh


def record_subdir(output_dir: str | None = None) -> str | None:
    """Hydra's record of a prediction: none when the user chose where outputs go."""
    return None if output_dir else ".hydra"


def remove_scratch(run_dir: str | os.PathLike[str]) -> None:
    """Remove the SCRATCH folder once the command is done (never any other folder)."""
    if Path(run_dir) == SCRATCH:
        shutil.rmtree(SCRATCH, ignore_errors=True)


def user_conf() -> Path:
    """The folder of the user's own configs (the configs' `hydra.searchpath`)."""
    return Path(os.environ.get("DEPTH_LIGHTNING_CONF", "conf"))


def help_groups(*groups: str) -> str:
    """`--help`'s list of config groups: each of `groups` with its options, the packaged ones
    (conf/<group>/*.yaml in the package; the bases other options extend, `common` and `stage`,
    left out) and the user's own (conf/<group>/ of the folder commands start in)."""
    roots = (Path(__file__).resolve().parents[1] / "conf", user_conf())
    lines = []
    for group in groups:
        options = sorted({p.stem for root in roots for p in (root / group).glob("*.yaml")
                          if p.stem not in ("common", "stage")})
        none = "(your own conf/local/default.yaml, git-ignored; used when it exists)" \
            if group == "local" else "(none)"
        lines.append(f"  {group + ':':<16}{', '.join(options) or none}")
    return "\n".join(lines)


RESOLVERS = {"dl_uid": lambda: RUN_UID, "dl_run_dir": run_dir, "dl_hydra_subdir": hydra_subdir,
             "dl_run_folder": run_folder, "dl_scratch_run_dir": scratch_run_dir,
             "dl_record_subdir": record_subdir, "dl_help_groups": help_groups}


def register_resolvers() -> None:
    """Add the resolvers the configs use (idempotent)."""
    for name, fn in RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
