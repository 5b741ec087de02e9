"""Weights & Biases: one run per stage of each job, offline unless the machine has credentials
(runs sync later with `wandb sync <run>/<stage>/wandb/offline-run-*`).

* group: a multirun's runs share the sweep's folder name; a single run's stages its folder name;
* name: in a sweep the swept overrides (``model.loss.lam=0.5``), else the run folder's name,
  then the stage (``model.loss.lam=0.5 (coarse)``); job type: the stage;
* tags: the stage's name, ``experiment=<name>`` for the experiment's own tag, the user's others;
* config: the resolved run config, sent once (Lightning's copy of the module's hyper-parameters
  is not sent: it would repeat `model` at the top level);
* summary, at the end of each stage: ``val/*`` = the best checkpoint's validation metrics (the
  best epoch's), ``best/epoch``, ``best/checkpoint``, and ``final/<column>/<metric>``: the
  table so far (the last stage's holds all of metrics.json);
* ``logger.wandb.log_model=true``: best and last checkpoints as artifacts (``all``: every one).

What depends on the run (group, name, job type, tags, offline, folder) is filled in by
:class:`WandbLogger` from the stage it is built for when the config leaves it null.
"""

from __future__ import annotations

import netrc
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.wandb import WandbLogger as _LightningWandbLogger
from omegaconf import DictConfig, OmegaConf

from depth_lightning.core.files import write_text

RUN_ID_FILE = "wandb_id.txt"


class WandbLogger(_LightningWandbLogger):
    """Lightning's WandbLogger for one stage, minus what doubles up: the module's
    hyper-parameters (the run config already holds them, under `model`) and wandb's
    deprecated `anonymous` setting. Offline with `log_model` (which Lightning refuses) the
    checkpoints are kept as artifacts of the offline run, uploaded by `wandb sync`.

    Args:
        stage: the stage being trained (depth_lightning.training.trainer.StageContext): names
            the run (``<swept overrides> (<stage>)``), its job type and first tag, and is its
            folder unless `save_dir` is given. The run's id is kept in the stage's folder
            (``wandb_id.txt``): a stopped run continued with `resume=RUN_DIR` continues the
            same W&B run.
        group, offline: null for the sweep's (or run's) folder name, and offline unless the
            machine has W&B credentials.
        others: Lightning's WandbLogger's.
    """

    def __init__(self, *args: Any, stage: Any = None, group: str | None = None,
                 offline: bool | None = None, log_model: Any = False, tags: Any = None,
                 name: str | None = None, job_type: str | None = None,
                 save_dir: str | None = None, **kwargs: Any) -> None:
        offline = wandb_offline() if offline is None else bool(offline)
        if stage is not None:
            name = name or stage_run_name(stage.name)
            job_type = job_type or stage.name
            tags = stage_tags(tags, stage.name)
            save_dir = save_dir or str(stage.dir)
            if kwargs.get("id") is None:
                kwargs["id"], kwargs["resume"] = stage_run_id(Path(stage.dir)), "allow"
        super().__init__(*args, offline=offline and not log_model, log_model=log_model,
                         group=group or sweep_group(), name=name, job_type=job_type,
                         tags=list(tags) if tags else None, save_dir=save_dir or ".",
                         **kwargs)
        self._offline = offline
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous", None)

    def log_hyperparams(self, params: Any) -> None:  # the config goes once, in start_wandb
        return None


def stage_run_id(stage_dir: Path) -> str:
    """The W&B run id of a stage: the one kept in its folder, or a new one, kept there."""
    path = stage_dir / RUN_ID_FILE
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip()
    run_id = secrets.token_hex(4)
    stage_dir.mkdir(parents=True, exist_ok=True)
    write_text(path, run_id + "\n")
    return run_id


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


def _hydra() -> Any:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get()


def _multirun(hc: Any) -> bool:
    from hydra.types import RunMode

    return hc.mode == RunMode.MULTIRUN


def sweep_group() -> str:
    """The sweep's folder name in a multirun (so its jobs sit together), else the run's."""
    try:
        hc = _hydra()
    except ValueError:  # Hydra not initialised: called outside an entry point
        return "depth_lightning"
    return Path(hc.sweep.dir if _multirun(hc) else hc.runtime.output_dir).name


def run_name() -> str:
    """The job's folder name (multirun: number and overrides)."""
    try:
        return Path(_hydra().runtime.output_dir).name
    except ValueError:
        return "run"


def swept_keys(hc: Any) -> set[str]:
    """The settings a multirun varies: its sweeper's `params` and the command line's sweep
    overrides (`a=1,2`, `range(...)`, `choice(...)`), as the sweep's multirun.yaml recorded
    them (else as this process was started)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = hc.sweeper.get("params")
    keys = {str(k) for k in (params.keys() if params is not None else ())}
    recorded = Path(hc.sweep.dir) / "multirun.yaml"
    try:
        task = list(OmegaConf.load(recorded).hydra.overrides.task)
    except Exception:  # no record (another sweeper): the command line of this process
        task = sys.argv[1:]
    parser = OverridesParser.create()
    for text in task:
        try:
            override = parser.parse_override(text)
        except Exception:  # a flag or something Hydra parsed differently: not a sweep
            continue
        if override.is_sweep_override():
            keys.add(override.key_or_group)
    return keys


def swept_name() -> str:
    """The W&B run name of this job: the swept overrides with this job's values in a multirun
    (`model.loss.lam=0.5`), else the run folder's name."""
    try:
        hc = _hydra()
    except ValueError:
        return "run"
    if not _multirun(hc):
        return Path(hc.runtime.output_dir).name
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = swept_keys(hc)
    parser = OverridesParser.create()
    parts = []
    for text in hc.overrides.task:
        override = parser.parse_override(text)
        if override.key_or_group in keys:
            parts.append(f"{override.key_or_group}={override.get_value_element_as_str()}")
    return ",".join(parts) or Path(hc.runtime.output_dir).name


def stage_run_name(stage: str) -> str:
    return f"{swept_name()} ({stage})"


def experiment_names() -> set[str]:
    """The packaged experiments (conf/experiment/*.yaml)."""
    folder = Path(__file__).resolve().parents[1] / "conf" / "experiment"
    return {p.stem for p in folder.glob("*.yaml")}


def stage_tags(tags: Any, stage: str) -> list[str]:
    """A stage's W&B tags: its own name, `experiment=<name>` for an experiment's tag (the
    coarse stage of +experiment=fine is `coarse`, `experiment=fine`), the user's other tags."""
    experiments = experiment_names()
    given = [str(t) for t in (tags or [])]
    out = [stage, *(f"experiment={t}" if t in experiments else t for t in given)]
    return list(dict.fromkeys(out))


def start_wandb(logger: Any, cfg: DictConfig) -> None:
    """Start a WandbLogger's run now (W&B starts lazily: fail here rather than mid-fit) and
    send it the resolved config, once; other loggers are left as they are."""
    if not isinstance(logger, _LightningWandbLogger):
        return
    Path(logger.save_dir).mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    logger.experiment.config.update(config, allow_val_change=True)


def flat_table(table: dict[str, dict[str, float]], prefix: str = "final") -> dict[str, float]:
    """`{column: {metric: v}}` -> `{"final/<column>/<metric>": v}`."""
    return {f"{prefix}/{column}/{key}": value for column, values in table.items()
            for key, value in values.items()}


def summarize(table: dict[str, dict[str, float]], stage: str, best: str,
              best_epoch: int | None) -> None:
    """The running W&B run's summary at the end of a stage (nothing without a run): the best
    checkpoint's validation metrics as `val/*`, where it is, and the table so far."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb is not None else None
    if run is None:
        return
    values: dict[str, Any] = {f"val/{k}": v for k, v in table.get(stage, {}).items()}
    values["best/checkpoint"] = str(best)
    if best_epoch is not None:
        values["best/epoch"] = int(best_epoch)
    values.update(flat_table(table))
    run.summary.update(values)
