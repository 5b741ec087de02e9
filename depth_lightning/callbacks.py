"""Callbacks: the per-epoch metrics table and its learning-curve figure."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L

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
