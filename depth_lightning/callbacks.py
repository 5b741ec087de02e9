"""Callbacks: the per-epoch metrics table, its learning-curve figure, and depth panels of fixed
validation frames."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L
import torch

from depth_lightning.viz import plot_learning_curves

COLUMNS = ("train/loss", "train/si_rmse_log", "val/loss", "val/si_rmse_log", "val/rmse_log",
           "val/abs_rel", "val/delta1")


class EpochTable(L.Callback):
    """Writes `epochs.csv` (one row per epoch: losses, validation metrics, each group's learning
    rate) and `curves.png` into `dirpath` as training goes."""

    def __init__(self, dirpath: str | Path | None = None, plot_every: int = 5) -> None:
        self.dirpath = Path(dirpath) if dirpath else None
        self.plot_every = plot_every
        self.rows: list[dict[str, float]] = []
        self._val_ran = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = Path(trainer.default_root_dir)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_ran = not trainer.sanity_checking

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        row: dict[str, float] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for key in COLUMNS:
            name = f"{key}_epoch" if key == "train/loss" else key
            if name in m and (self._val_ran or not key.startswith("val/")):
                row[key] = float(m[name])
        for opt in trainer.optimizers:
            for i, g in enumerate(opt.param_groups):
                row[f"lr/{g.get('name', i)}"] = g["lr"]
        self._val_ran = False
        self.rows.append(row)
        self._write()
        if self.plot_every and (trainer.current_epoch + 1) % self.plot_every == 0:
            self._plot(pl_module)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self.rows:
            self._plot(pl_module)

    def _write(self) -> None:
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        path = self.dirpath / "epochs.csv"
        tmp = path.with_suffix(".csv.tmp")
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            for r in self.rows:
                w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v)
                            for k, v in r.items()})
        tmp.replace(path)

    def _plot(self, pl_module: L.LightningModule) -> None:
        stage = getattr(pl_module, "stage", "")
        plot_learning_curves(self.rows, self.dirpath / "curves.png", title=f"{stage} stage")


class DepthPanels(L.Callback):
    """At each validation epoch, draws the same validation frames as RGB | ground truth | coarse
    | coarse+fine (one colour scale per row) into `<stage>/panels/epoch_NNN.png`, and logs the
    panel to W&B when a WandbLogger is active."""

    def __init__(self, n_frames: int = 4, every_n_epochs: int = 1) -> None:
        self.n_frames = n_frames
        self.every = every_n_epochs

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if (trainer.sanity_checking or not trainer.is_global_zero or self.n_frames <= 0
                or trainer.current_epoch % self.every):
            return
        dm = trainer.datamodule
        ds = dm.val_dataloader().dataset
        items = [ds[i] for i in range(min(self.n_frames, len(ds)))]
        images = torch.stack([it["image"] for it in items]).to(pl_module.device)
        was_training = pl_module.training
        pl_module.eval()
        with torch.no_grad(), torch.autocast(pl_module.device.type, enabled=False):
            if hasattr(pl_module, "forward_both"):
                coarse, fine = pl_module.forward_both(images)
            else:
                coarse, fine = pl_module(images), None
        pl_module.train(was_training)
        rows = []
        for k, it in enumerate(items):
            rows.append({
                "rgb": it["image"].permute(1, 2, 0).numpy(),
                "gt": it["depth"][0].numpy(),
                "coarse": torch.exp(coarse[k, 0].float()).cpu().numpy(),
                "fine": None if fine is None else torch.exp(fine[k, 0].float()).cpu().numpy(),
                "label": f"frame {it['index']}",
            })
        from depth_lightning.viz import plot_depth_grid

        root = Path(trainer.default_root_dir) / "panels"
        root.mkdir(parents=True, exist_ok=True)
        path = plot_depth_grid(rows, root / f"epoch_{trainer.current_epoch:03d}.png",
                               title=f"{getattr(pl_module, 'stage', '')} stage, epoch "
                                     f"{trainer.current_epoch}")
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                logger.log_image(key="val/panels", images=[str(path)], step=trainer.global_step)
