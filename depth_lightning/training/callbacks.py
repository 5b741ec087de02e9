"""Callbacks: the per-epoch metrics table, its learning-curve figure, depth panels of fixed
validation frames, and progress (a rich bar on a terminal, one plain line per epoch in a log
file)."""

from __future__ import annotations

import csv
import math
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar

from depth_lightning.core.files import write_with
from depth_lightning.evaluation.protocols import TRAINING_TARGET
from depth_lightning.evaluation.scoring import panel_rows
from depth_lightning.reporting.figures import plot_learning_curves

COLUMNS = ("train/loss", "train/si_rmse_log", "val/loss", "val/si_rmse_log", "val/rmse_log",
           "val/abs_rel", "val/delta1")


class EpochTable(L.Callback):
    """Writes `epochs.csv` (one row per epoch: losses, validation metrics, each group's learning
    rate) and `curves.png` into `dirpath` (default: the stage's folder) as training goes; the
    curves show the stage's `reference` lines (the Mean baseline, the stage built on)."""

    def __init__(self, dirpath: str | Path | None = None, plot_every: int = 5,
                 references: dict[str, float] | None = None, format: str = "png",
                 dpi: int = 100, stage: Any = None) -> None:
        if dirpath is None and stage is not None:
            dirpath = stage.dir
        if references is None and stage is not None:
            references = stage.reference
        self.dirpath = Path(dirpath) if dirpath else None
        self.plot_every = plot_every
        # column -> val si_rmse_log drawn as a line (the Mean baseline, the stage built on)
        self.references = {str(k): float(v) for k, v in (references or {}).items()}
        self.format, self.dpi = format, dpi
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
        plot_learning_curves(self.rows, self.dirpath / f"curves.{self.format}",
                             title=f"{stage} stage", references=self.references, dpi=self.dpi)


class DepthPanels(L.Callback):
    """At each validation epoch, draws the first validation frames as RGB | ground truth | each
    stage's map (coarse, coarse+fine; one colour scale per row) into
    `<stage>/panels/epoch_NNN.png`, from the maps validation predicted (no extra forward
    pass), and logs the panel to W&B when a WandbLogger is active."""

    def __init__(self, n_frames: int = 4, every_n_epochs: int = 1, format: str = "png",
                 dpi: int = 100, depth_scale: str = "row") -> None:
        self.n_frames = n_frames
        self.every = every_n_epochs
        self.format, self.dpi, self.depth_scale = format, dpi, depth_scale
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
        self.rows += panel_rows(batch, outputs, TRAINING_TARGET, wanted, pl_module.geometry)

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        rows, self.rows = self.rows, []
        if not self._due(trainer) or not rows:
            return
        from depth_lightning.reporting.figures import plot_depth_grid

        root = Path(trainer.default_root_dir) / "panels"
        root.mkdir(parents=True, exist_ok=True)
        path = plot_depth_grid(rows, root / f"epoch_{trainer.current_epoch:03d}.{self.format}",
                               title=f"{getattr(pl_module, 'name', '')} stage, epoch "
                                     f"{trainer.current_epoch}", scale=self.depth_scale,
                               dpi=self.dpi)
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:  # W&B shows raster images: PNG panels only
            if isinstance(logger, WandbLogger) and self.format == "png":
                logger.log_image(key="val/panels", images=[str(path)], step=trainer.global_step)


# -- progress ---------------------------------------------------------------------------------
class _BestSoFar:
    """The lowest val/si_rmse_log seen in this fit and its epoch (with the epochs of a resumed
    fit, from its EpochTable)."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, int]] = []

    def record(self, trainer: L.Trainer) -> None:
        value = trainer.callback_metrics.get("val/si_rmse_log")
        if value is not None and not trainer.sanity_checking:
            self.seen.append((float(value), int(trainer.current_epoch)))

    def best(self, trainer: L.Trainer) -> tuple[float, int] | None:
        tables = [cb for cb in trainer.callbacks if isinstance(cb, EpochTable)]
        earlier = [(r["val/si_rmse_log"], int(r["epoch"])) for t in tables for r in t.rows
                   if "val/si_rmse_log" in r]
        return min(earlier + self.seen) if earlier or self.seen else None


def epoch_figures(trainer: L.Trainer, tracker: _BestSoFar) -> dict[str, str]:
    """What progress shows: the training loss, the last validation's si_rmse_log, the best."""
    m = trainer.callback_metrics
    out: dict[str, str] = {}
    loss = m.get("train/loss_epoch", m.get("train/loss_step"))
    if loss is not None:
        out["train/loss"] = f"{float(loss):.4f}"
    if "val/si_rmse_log" in m:
        out["val/si_rmse_log"] = f"{float(m['val/si_rmse_log']):.4f}"
    best = tracker.best(trainer)
    if best is not None:
        out["best"] = f"{best[0]:.4f} (epoch {best[1]})"
    return out


class DepthProgressBar(RichProgressBar):
    """Lightning's rich bar showing train/loss, val/si_rmse_log and the best so far."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._best = _BestSoFar()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        self._best.record(trainer)

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = {k: v for k, v in super().get_metrics(trainer, pl_module).items()
                 if not k.startswith(("train/loss", "v_num"))}
        m = trainer.callback_metrics
        if "train/loss_step" in m:
            items["train/loss"] = f"{float(m['train/loss_step']):.4f}"
        items.update({k: v for k, v in epoch_figures(trainer, self._best).items()
                      if k != "train/loss"})
        return items


class EpochLines(ProgressBar):
    """Progress for a log file (stdout not a terminal, as under SLURM): one plain line per
    epoch, `coarse epoch 3/7  train/loss 0.0812  val/si_rmse_log 0.3102  best 0.3050 (epoch 2)
    61.2 s`, instead of progress-bar frames."""

    def __init__(self, stream: Any = None) -> None:
        super().__init__()
        self.stream = stream
        self._enabled = True
        self._best = _BestSoFar()
        self._start = time.monotonic()

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._best.record(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        last = max(int(trainer.max_epochs or 1) - 1, 0)
        parts = [f"{getattr(pl_module, 'name', '')} epoch {trainer.current_epoch}/{last}".strip()]
        parts += [f"{k} {v}" for k, v in epoch_figures(trainer, self._best).items()]
        parts.append(f"{time.monotonic() - self._start:.1f} s")
        print("  ".join(parts), file=self.stream or sys.stdout, flush=True)


def progress_bar(**kwargs: Any) -> ProgressBar:
    """On a terminal Lightning's rich bar (`kwargs` are its settings, e.g. leave), else one
    plain line per epoch (EpochLines)."""
    if sys.stdout.isatty():
        return DepthProgressBar(**kwargs)
    return EpochLines()
