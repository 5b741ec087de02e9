"""Training one stage: its Trainer (callbacks, loggers, precision, epochs) and its fit.

Every callback and logger comes from the config by `_target_`; what differs per stage (its
folder, its name) reaches them through the `stage.name` / `stage.dir` settings, which the
pipeline sets for each stage before they are built.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from depth_lightning.checkpoints import load_stage
from depth_lightning.console import quiet_lightning, stage_done
from depth_lightning.hw import resolve_precision
from depth_lightning.plugins import build
from depth_lightning.protocols import TRAINING_TARGET
from depth_lightning.scoring import StagePredictor, score

log = logging.getLogger("depth_lightning")


def _entries(node: DictConfig | None) -> list[tuple[str, DictConfig]]:
    return [(k, v) for k, v in (node or {}).items() if v is not None and "_target_" in v]


def start_logger(name: str, lg_cfg: DictConfig, cfg: DictConfig) -> Any:
    """One logger; a dashboard that cannot start warns and is left out, so that training goes
    on with the CSV log."""
    try:
        logger = instantiate(lg_cfg)
        from depth_lightning.tracking import start_wandb

        start_wandb(logger, cfg)
        return logger
    except Exception as e:  # an optional dashboard must never stop training
        while e.__cause__ is not None:  # Hydra's instantiate wraps the logger's own error
            e = e.__cause__
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("logger %s could not start (%s); continuing without it", name, first)
        return None


def build_trainer(cfg: DictConfig, max_epochs: int) -> L.Trainer:
    """A Trainer for the stage named in `cfg.stage`: its checkpoints, logs and figures go to
    `cfg.stage.dir`."""
    quiet_lightning()
    callbacks = [build(c, f"callbacks.{k}") for k, c in _entries(cfg.get("callbacks"))]
    loggers = [lg for k, c in _entries(cfg.get("logger"))
               if (lg := start_logger(k, c, cfg)) is not None]
    return build(trainer_settings(cfg, max_epochs), "trainer", callbacks=callbacks,
                 logger=loggers or False)


def trainer_settings(cfg: DictConfig, max_epochs: int) -> dict:
    """The Trainer's config for a stage of `max_epochs` epochs (precision `auto` resolved)."""
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg["precision"] = resolve_precision(trainer_cfg.get("precision", "auto"))
    trainer_cfg["max_epochs"] = max_epochs
    trainer_cfg["default_root_dir"] = str(cfg.stage.dir or cfg.paths.output_dir)
    debug = cfg.get("debug")  # debug=fdr|limit|...: its Trainer settings win over the stage's
    if debug is not None and debug.get("trainer"):
        trainer_cfg.update(OmegaConf.to_container(debug.trainer, resolve=True))
    return trainer_cfg


def final_scores(module: Any, dm: Any, precision: Any, device: Any = "cpu") -> dict[str, float]:
    """A stage's own validation metrics over every validation frame, in one process (under DDP
    Lightning's sampler repeats frames to even out the last batch; this does not)."""
    predictor = StagePredictor(module.to(device).eval(), precision, columns=(module.name,))
    metrics, _ = score([predictor], dm.val_dataloader(), TRAINING_TARGET, device=device)
    return metrics[module.name]


def fit_stage(cfg: DictConfig, model_cfg: dict, dm: Any, max_epochs: int,
              base_ckpt: str | None = None, resume: str | None = None,
              table: dict[str, dict[str, float]] | None = None, last: bool = True
              ) -> tuple[str, dict[str, float]]:
    """Train the stage named in `cfg.stage` (resuming from `resume` if given); return its best
    checkpoint's path and that checkpoint's validation metrics (empty on ranks other than 0).
    `table` (the Mean baseline and the stages before) and this stage's metrics go into the
    W&B summary; a stage that is not the `last` closes with its table and the next commands."""
    name, stage_dir = cfg.stage.name, cfg.stage.dir
    extra = {"base_ckpt": base_ckpt} if base_ckpt else {}
    model = build(model_cfg, "model", name=name, **extra)
    trainer = build_trainer(cfg, max_epochs)
    log.info("%s stage: %d trainable parameters, precision %s", name,
             sum(p.numel() for p in model.parameters() if p.requires_grad), trainer.precision)
    with warnings.catch_warnings():
        base = getattr(model, "base", None)
        if base is not None:  # the frozen stages below are in eval mode on purpose
            frozen = sum(1 for _ in base.modules())
            warnings.filterwarnings("ignore", message=rf"Found {frozen} module\(s\) in eval "
                                    "mode at the start of training")
        trainer.fit(model, datamodule=dm, ckpt_path=resume, weights_only=True)
    cb = trainer.checkpoint_callback
    best = (cb.best_model_path or cb.last_model_path) if cb is not None else ""
    if not best:  # fast_dev_run or checkpointing off: keep the weights for the next stage
        best = f"{stage_dir}/checkpoints/final.ckpt"
        trainer.save_checkpoint(best)
    best = trainer.strategy.broadcast(best)
    scores: dict[str, float] = {}
    if trainer.is_global_zero:
        scores = final_scores(load_stage(best), dm, trainer.precision,
                              trainer.strategy.root_device)
        close_stage(cfg, trainer, best, {**(table or {}), name: scores}, last)
    finish_wandb()
    return best, scores


def close_stage(cfg: DictConfig, trainer: L.Trainer, best: str,
                table: dict[str, dict[str, float]], last: bool) -> None:
    """The W&B summary of the stage (the best epoch's validation metrics, the table so far)
    and, unless it is the run's last stage, its closing lines on the console."""
    from depth_lightning.tracking import summarize
    from depth_lightning.viz import best_row

    rows = next((cb.rows for cb in trainer.callbacks if hasattr(cb, "rows")
                 and type(cb).__name__ == "EpochTable"), [])
    row = best_row(rows)
    summarize(table, cfg.stage.name, best, None if row is None else int(row["epoch"]))
    if not last:
        stage_done(cfg.stage.name, Path(cfg.paths.output_dir), best, table)


def finish_wandb() -> None:
    """End the stage's W&B run (if any), or the next stage or multirun job would log into it.
    Checked on wandb itself: fast_dev_run hides the loggers behind a dummy."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()
