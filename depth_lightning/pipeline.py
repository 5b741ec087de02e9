"""The training job: data, then the coarse stage, then (for the fine experiment) the fine stage
on the frozen coarse network, then the final validation table in metrics.json.

Entry points stay thin; this module holds the order of things.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from depth_lightning.data.datamodule import DepthDataModule
from depth_lightning.entry import run_task
from depth_lightning.errors import DepthLightningError
from depth_lightning.hw import resolve_precision, reuse_freed_memory
from depth_lightning.metrics import depth_metrics
from depth_lightning.stages import CoarseStage, DepthStage, load_checkpoint

log = logging.getLogger("depth_lightning")

# The fine stage keeps its frozen coarse network in eval mode on purpose.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")


def mean_baseline(dm: DepthDataModule) -> dict[str, float]:
    """Validation metrics of the per-pixel mean of the training depth maps (the paper's Mean)."""
    mean = dm.depth_statistics()["mean_depth"]
    targets = dm.eval_targets(dm.val_idx)
    metrics = depth_metrics()
    metrics.update(mean.expand_as(targets).contiguous(), targets)
    return {k: float(v) for k, v in metrics.compute().items()}


@torch.no_grad()
def evaluate_model(model: DepthStage, dm: DepthDataModule, precision: str | int | None = None
                   ) -> dict[str, float]:
    """Validation metrics of `model` on all validation frames, in one process.

    Lightning's distributed validation pads the last batch with repeated frames; the final
    figures are computed here instead, on one device, over each frame exactly once.
    """
    device = next(model.parameters()).device
    model.eval()
    metrics = depth_metrics(sync_on_compute=False).to(device)  # this process saw every frame
    bf16 = str(precision).startswith("bf16")
    for batch in dm.val_dataloader():
        images = batch["image"].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            log_depth = model(images)
        metrics.update(torch.exp(log_depth.float()), batch["depth"].to(device))
    return {k: float(v) for k, v in metrics.compute().items()}


def build_trainer(cfg: DictConfig, stage_dir: Path, stage: str, max_epochs: int | None = None
                  ) -> L.Trainer:
    """A Trainer for one stage: its own checkpoints, CSV and figures under `stage_dir`."""
    callbacks = []
    for name, cb_cfg in (cfg.get("callbacks") or {}).items():
        if cb_cfg is None or "_target_" not in cb_cfg:
            continue
        kwargs = {"dirpath": str(stage_dir / "checkpoints")} if name == "model_checkpoint" else {}
        if name == "epoch_table":
            kwargs = {"dirpath": str(stage_dir)}
        callbacks.append(instantiate(cb_cfg, **kwargs))
    loggers = []
    for name, lg_cfg in (cfg.get("logger") or {}).items():
        if lg_cfg is None or "_target_" not in lg_cfg:
            continue
        logger = start_logger(name, lg_cfg, cfg, stage_dir, stage)
        if logger is not None:
            loggers.append(logger)
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg["precision"] = resolve_precision(trainer_cfg.get("precision", "auto"))
    if max_epochs is not None:
        trainer_cfg["max_epochs"] = max_epochs
    trainer_cfg["default_root_dir"] = str(stage_dir)
    return instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False)


def start_logger(name: str, lg_cfg: DictConfig, cfg: DictConfig, stage_dir: Path, stage: str):
    """Instantiate one logger; a dashboard that cannot start warns and is left out, so that
    training goes on with the CSV log."""
    kwargs: dict[str, Any] = {}
    if name == "csv":
        kwargs = {"save_dir": str(stage_dir)}
    elif name == "wandb":
        from depth_lightning.tracking import wandb_settings

        kwargs = wandb_settings(lg_cfg, cfg, stage_dir, stage)
    try:
        logger = instantiate(lg_cfg, **kwargs)
        if name == "wandb":  # W&B starts lazily: make it fail here rather than mid-fit
            logger.experiment.config.update(OmegaConf.to_container(cfg, resolve=True),
                                            allow_val_change=True)
        return logger
    except Exception as e:  # an optional dashboard must never stop training
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("logger %s could not start (%s); continuing without it", name, first)
        return None


def fit_stage(cfg: DictConfig, model_cfg: DictConfig, dm: DepthDataModule, stage_dir: Path,
              stage: str, max_epochs: int | None = None, resume: str | None = None
              ) -> tuple[str, dict[str, float]]:
    """Train one stage (resuming from `resume` if given); return the best checkpoint's path and
    its validation metrics (empty on ranks other than 0)."""
    model: DepthStage = instantiate(model_cfg)
    trainer = build_trainer(cfg, stage_dir, stage, max_epochs)
    log.info("%s stage: %d trainable parameters, precision %s", stage,
             sum(p.numel() for p in model.parameters() if p.requires_grad),
             trainer.precision)
    trainer.fit(model, datamodule=dm, ckpt_path=resume, weights_only=True)
    cb = trainer.checkpoint_callback
    best = (cb.best_model_path or cb.last_model_path) if cb is not None else ""
    if not best:  # fast_dev_run or checkpointing off: keep the weights for the next stage
        best = str(stage_dir / "checkpoints" / "final.ckpt")
        trainer.save_checkpoint(best)
    best = trainer.strategy.broadcast(best)
    _finish_wandb()
    if not trainer.is_global_zero:
        return best, {}
    model = type(model).load_from_checkpoint(best, map_location=model.device, weights_only=True)
    return best, evaluate_model(model, dm, trainer.precision)


def _finish_wandb() -> None:
    """End the stage's W&B run (if any), or the next stage or multirun job would log into it.
    Checked on wandb itself: fast_dev_run hides the loggers behind a dummy."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish()


def run(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Train as configured and return the metrics.json content."""
    out_dir = Path(cfg.paths.output_dir)
    if cfg.get("seed") is not None:  # seed=0 is a seed
        L.seed_everything(int(cfg.seed), workers=True)
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
        reuse_freed_memory(str(cfg.get("cpu_allocator", "reuse")))
    dm: DepthDataModule = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    is_fine = "coarse_ckpt" in cfg.model
    model_cfg = cfg.model
    if is_fine and model_cfg.coarse_ckpt:
        load_checkpoint(model_cfg.coarse_ckpt, "coarse", setting="model.coarse_ckpt")
    elif is_fine and cfg.get("coarse_stage") is None:
        raise DepthLightningError("model.coarse_ckpt: give a coarse checkpoint, or use "
                                  "+experiment=fine to train the coarse stage first")
    # Inputs are checked: from here on the run folder fills up.
    (out_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    metrics: dict[str, dict[str, float]] = {"mean": mean_baseline(dm)}
    if is_fine:
        coarse_ckpt = model_cfg.coarse_ckpt
        if coarse_ckpt:
            coarse = CoarseStage.load_from_checkpoint(coarse_ckpt, map_location="cpu",
                                                      weights_only=True)
            metrics["coarse"] = evaluate_model(coarse, dm, resolve_precision(
                cfg.trainer.get("precision", "auto")))
        else:
            pre = cfg.coarse_stage
            coarse_ckpt, metrics["coarse"] = fit_stage(cfg, pre.model, dm, out_dir / "coarse",
                                                       "coarse", pre.get("max_epochs"))
            model_cfg = OmegaConf.merge(model_cfg, {"coarse_ckpt": coarse_ckpt})
        _, metrics["fine"] = fit_stage(cfg, model_cfg, dm, out_dir / "fine", "fine",
                                       resume=cfg.get("ckpt_path"))
    else:
        _, metrics["coarse"] = fit_stage(cfg, model_cfg, dm, out_dir / "coarse", "coarse",
                                         resume=cfg.get("ckpt_path"))
    if rank_zero_only.rank == 0:  # DDP: one process writes the results
        _write_json(out_dir / "metrics.json", metrics)
        _print_table(metrics)
    return metrics


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    tmp.replace(path)


def _print_table(metrics: dict[str, dict[str, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    cols = [c for c in ("mean", "coarse", "fine") if c in metrics]
    table = Table(title="validation")
    table.add_column("metric")
    for c in cols:
        table.add_column({"mean": "Mean", "coarse": "Coarse", "fine": "Coarse+Fine"}[c],
                         justify="right")
    for key in metrics["mean"]:
        table.add_row(key, *(f"{metrics[c].get(key, float('nan')):.4f}" for c in cols))
    Console().print(table)


def optimized_value(cfg: DictConfig, metrics: dict[str, dict[str, float]]) -> float | None:
    """The value a Hydra sweeper minimises: `stage/key` of metrics.json, or a bare key for the
    last stage trained (fine if there is one)."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    stage, _, key = name.rpartition("/")
    stage = stage or ("fine" if "fine" in metrics else "coarse")
    return metrics.get(stage, {}).get(key)


def main(cfg: DictConfig) -> float | None:
    """Hydra task function: train, and return the value a sweeper optimises."""
    return run_task(cfg, lambda c: optimized_value(c, run(c)))
