"""Training one stage: build its module and Trainer, fit, keep its best checkpoint and score it.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import Any

import lightning as L
from omegaconf import DictConfig

from depth_lightning.core.plugins import build
from depth_lightning.evaluation.protocols import TRAINING_TARGET
from depth_lightning.evaluation.scoring import StagePredictor, score
from depth_lightning.models.checkpoints import load_stage
from depth_lightning.reporting.figures import best_row
from depth_lightning.training.callbacks import EpochTable
from depth_lightning.training.tracking import summarize
from depth_lightning.training.trainer import StageContext, build_trainer

log = logging.getLogger("depth_lightning")


def final_scores(module: Any, dm: Any, precision: Any, device: Any = "cpu") -> dict[str, float]:
    """A stage's own validation metrics over every validation frame, in one process (under DDP
    Lightning's sampler repeats frames to even out the last batch; this does not)."""
    predictor = StagePredictor(module.to(device).eval(), precision, columns=(module.name,))
    metrics, _ = score([predictor], dm.val_dataloader(), TRAINING_TARGET, device=device,
                       geometry=dm.geometry)
    return metrics[module.name]


def fit_stage(cfg: DictConfig, stage: StageContext, model_cfg: dict, dm: Any, max_epochs: int,
              base_ckpt: str | None = None, resume: str | None = None,
              table: dict[str, dict[str, float]] | None = None
              ) -> tuple[str, dict[str, float]]:
    """Train `stage` (resuming from the checkpoint `resume` if given); return its best
    checkpoint's path and that checkpoint's validation metrics (empty on ranks other than 0).
    `table` (the Mean baseline and the stages before) and this stage's metrics go into the
    W&B summary."""
    extra = {"base_ckpt": base_ckpt} if base_ckpt else {}
    model = build(model_cfg, "model", name=stage.name, **extra)
    trainer = build_trainer(cfg, stage, max_epochs)
    log.info("%s stage: %d trainable parameters, precision %s", stage.name,
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
        best = str(stage.dir / "checkpoints" / "final.ckpt")
        trainer.save_checkpoint(best)
    best = trainer.strategy.broadcast(best)
    scores: dict[str, float] = {}
    if trainer.is_global_zero:
        scores = final_scores(load_stage(best), dm, trainer.precision,
                              trainer.strategy.root_device)
        summarize_stage(trainer, stage, best, {**(table or {}), stage.name: scores})
    finish_wandb()
    return best, scores


def summarize_stage(trainer: L.Trainer, stage: StageContext, best: str,
                    table: dict[str, dict[str, float]]) -> None:
    """The W&B summary of the stage: the best epoch's validation metrics, the table so far."""
    rows = next((cb.rows for cb in trainer.callbacks if isinstance(cb, EpochTable)), [])
    row = best_row(rows)
    summarize(table, stage.name, best, None if row is None else int(row["epoch"]))


def finish_wandb() -> None:
    """End the stage's W&B run (if any), or the next stage or multirun job would log into it.
    Checked on wandb itself: fast_dev_run hides the loggers behind a dummy."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()
