"""Callbacks: the per-epoch metrics table, its learning-curve figure, and depth panels of fixed
validation frames."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L

from depth_lightning.io import write_with
from depth_lightning.protocols import TRAINING_TARGET
from depth_lightning.scoring import panel_rows
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

    def state_dict(self) -> dict:
        """The rows so far go into checkpoints: a resumed run continues epochs.csv in place."""
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict.get("rows", []))

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
        self.dirpath.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=keys)
                w.writeheader()
                for r in self.rows:
                    w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v)
                                for k, v in r.items()})

        write_with(self.dirpath / "epochs.csv", write)

    def _plot(self, pl_module: L.LightningModule) -> None:
        stage = getattr(pl_module, "name", "")
        self.dirpath.mkdir(parents=True, exist_ok=True)
        plot_learning_curves(self.rows, self.dirpath / "curves.png", title=f"{stage} stage")


class DepthPanels(L.Callback):
    """At each validation epoch, draws the first validation frames as RGB | ground truth | each
    stage's map (coarse, coarse+fine; one colour scale per row) into
    `<stage>/panels/epoch_NNN.png`, from the maps validation predicted (no extra forward
    pass), and logs the panel to W&B when a WandbLogger is active."""

    def __init__(self, n_frames: int = 4, every_n_epochs: int = 1) -> None:
        self.n_frames = n_frames
        self.every = every_n_epochs
        self.rows: list[dict] = []

    def _due(self, trainer: L.Trainer) -> bool:
        return not (trainer.sanity_checking or not trainer.is_global_zero or self.n_frames <= 0
                    or trainer.current_epoch % self.every)

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                outputs: dict | None, batch: dict, batch_idx: int,
                                dataloader_idx: int = 0) -> None:
        if not self._due(trainer) or not outputs or len(self.rows) >= self.n_frames:
            return
        wanted = range(min(self.n_frames - len(self.rows), batch["depth"].shape[0]))
        self.rows += panel_rows(batch, outputs, TRAINING_TARGET, wanted)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows, self.rows = self.rows, []
        if not self._due(trainer) or not rows:
            return
        from depth_lightning.viz import plot_depth_grid

        root = Path(trainer.default_root_dir) / "panels"
        root.mkdir(parents=True, exist_ok=True)
        path = plot_depth_grid(rows, root / f"epoch_{trainer.current_epoch:03d}.png",
                               title=f"{getattr(pl_module, 'name', '')} stage, epoch "
                                     f"{trainer.current_epoch}")
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                logger.log_image(key="val/panels", images=[str(path)], step=trainer.global_step)
