"""The Trainer of one stage: its settings, callbacks and loggers, built for that stage.

The stage being trained is an explicit :class:`StageContext` (its name, its folder, the
reference lines of its curves). Everything a stage writes goes into its folder: the Trainer's
`default_root_dir` is that folder, a callback or logger whose constructor takes a `stage`
argument is given the context (the checkpoints go to ``<stage folder>/checkpoints``,
epochs.csv and curves beside them), a logger whose config sets no `save_dir` writes there too,
and so does a profiler without a `dirpath`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from depth_lightning.core.hardware import resolve_precision
from depth_lightning.core.plugins import build, takes
from depth_lightning.errors import DepthLightningError, first_line, user_cause

log = logging.getLogger("depth_lightning")


@dataclass(frozen=True)
class StageContext:
    """The stage a Trainer is built for.

    Attributes:
        name: the stage's name (coarse, fine, ...): its metrics.json key.
        dir: its folder, ``<run folder>/<name>``: checkpoints, epochs.csv, curves, panels, logs.
        reference: val si_rmse_log of the Mean baseline and of the stage it builds on, drawn
            as lines in its curves.
    """

    name: str
    dir: Path
    reference: dict[str, float] = field(default_factory=dict)


# -- Lightning's chatter ----------------------------------------------------------------------
# Lightning has no setting for these lines: "Tip ... litlogger", the device lines, "Loading
# `train_dataloader` to estimate ..." and "`Trainer.fit` stopped: `max_epochs=N` reached." are
# `rank_zero_info` records of one logger, dropped there by a filter (its other lines, such as
# "Restoring states from the checkpoint ...", still show). The FutureWarning
# "`isinstance(treespec, LeafSpec)` is deprecated" comes from Lightning's own `_pytree.py`
# (torch 2.10 deprecated LeafSpec; no released Lightning avoids it), ignored for that module.
_NOISE = ("💡 Tip: For seamless cloud logging", "GPU available:", "TPU available:",
          "HPU available:", "Loading `train_dataloader` to estimate",
          "`Trainer.fit` stopped: `max_epochs=")
_RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"


class _LightningNoise(logging.Filter):
    """Drops Lightning's tip, device and loader lines; passes everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_NOISE)


def quiet_lightning() -> None:
    """Turn off Lightning's tip, hardware lines and the `_pytree` deprecation (idempotent)."""
    logger = logging.getLogger(_RANK_ZERO_LOGGER)
    if not any(isinstance(f, _LightningNoise) for f in logger.filters):
        logger.addFilter(_LightningNoise())
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning, module=r"lightning\.pytorch\.utilities\._pytree")


# -- building ---------------------------------------------------------------------------------
def _entries(node: DictConfig | None) -> list[tuple[str, DictConfig]]:
    return [(k, v) for k, v in (node or {}).items() if v is not None and "_target_" in v]


def takes_stage(target: str) -> bool:
    """Whether the class or function `target` names has a `stage` parameter."""
    return takes(target, "stage")


def build_for_stage(cfg: Mapping[str, Any], setting: str, stage: StageContext) -> Any:
    """`build(cfg)`, given `stage` (the object itself, not a config copy of it) when its
    target takes one."""
    if not (isinstance(cfg, Mapping) and takes_stage(str(cfg.get("_target_")))):
        return build(cfg, setting)
    factory = build(cfg, setting, _partial_=True)
    try:
        return factory(stage=stage)
    except DepthLightningError:
        raise
    except Exception as e:
        raise DepthLightningError(f"{setting}: {cfg['_target_']}: {first_line(e)}") from None


def start_logger(name: str, lg_cfg: DictConfig, stage: StageContext, cfg: DictConfig) -> Any:
    """One logger of the stage; a dashboard that cannot start warns and is left out, so that
    training goes on with the CSV log."""
    extra = {} if lg_cfg.get("save_dir") is not None else {"save_dir": str(stage.dir)}
    if takes_stage(str(lg_cfg.get("_target_"))):
        extra["stage"] = stage
    try:
        logger = instantiate(lg_cfg, _partial_=True)(**extra)
        from depth_lightning.training.tracking import start_wandb

        start_wandb(logger, cfg)
        return logger
    except Exception as e:  # an optional dashboard must never stop training
        log.warning("logger %s could not start (%s); continuing without it", name,
                    first_line(user_cause(e)))
        return None


def trainer_settings(cfg: DictConfig, max_epochs: int, root_dir: Path | str) -> dict:
    """The Trainer's config for a stage of `max_epochs` epochs writing into `root_dir`
    (precision `auto` resolved; a debug config's Trainer settings win)."""
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg["precision"] = resolve_precision(trainer_cfg.get("precision", "auto"),
                                                 trainer_cfg.get("accelerator", "auto"))
    trainer_cfg["max_epochs"] = max_epochs
    trainer_cfg["default_root_dir"] = str(root_dir)
    debug = cfg.get("debug")  # debug=fdr|limit|...: its Trainer settings win over the stage's
    if debug is not None and debug.get("trainer"):
        trainer_cfg.update(OmegaConf.to_container(debug.trainer, resolve=True))
    profiler = trainer_cfg.get("profiler")
    if isinstance(profiler, dict) and profiler.get("dirpath") is None:
        profiler["dirpath"] = str(root_dir)
    return trainer_cfg


def build_trainer(cfg: DictConfig, stage: StageContext, max_epochs: int) -> L.Trainer:
    """A Trainer for `stage`: its checkpoints, logs and figures go to `stage.dir`."""
    quiet_lightning()
    callbacks = [build_for_stage(c, f"callbacks.{k}", stage)
                 for k, c in _entries(cfg.get("callbacks"))]
    loggers = [lg for k, c in _entries(cfg.get("logger"))
               if (lg := start_logger(k, c, stage, cfg)) is not None]
    return build(trainer_settings(cfg, max_epochs, stage.dir), "trainer", callbacks=callbacks,
                 logger=loggers or False)


def check_trainer(cfg: DictConfig) -> None:
    """The Trainer's settings (accelerator, devices, precision, ...) build, before any work."""
    from depth_lightning.reporting.figures import figure_settings

    viz = cfg.get("viz") or {}
    figure_settings(viz.get("format", "png"), viz.get("dpi", 100), viz.get("depth_scale", "row"))
    quiet_lightning()
    build(trainer_settings(cfg, 1, cfg.paths.output_dir), "trainer", logger=False,
          enable_checkpointing=False)
