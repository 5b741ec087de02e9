"""Figures: learning curves, the Figure-3 depth grid and prediction panels (matplotlib, Agg)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from depth_lightning.io import write_with  # noqa: E402


def read_epoch_csv(path: str | Path) -> list[dict[str, float]]:
    """Rows of an epochs.csv, numeric cells only (empty or other cells dropped); a file that is
    not text CSV is one DepthLightningError naming it."""
    from depth_lightning.errors import DepthLightningError

    def number(v: str | None) -> float | None:
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None
        return x if math.isfinite(x) else None

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DepthLightningError(f"{path}: not a text CSV file ({e})") from None
    return [{k: x for k, x in ((k, number(v)) for k, v in row.items() if k) if x is not None}
            for row in rows]


def plot_learning_curves(rows: list[dict[str, float]], path: str | Path, title: str = "") -> None:
    """Loss and validation errors per epoch: left the losses, right the validation metrics."""
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = [r["epoch"] for r in rows]
    for key, label in (("train/loss", "train loss"), ("val/loss", "val loss")):
        ys = [(e, r[key]) for e, r in zip(epochs, rows) if key in r]
        if ys:
            ax_loss.plot(*zip(*ys), marker=".", label=label)
    for key in ("train/si_rmse_log", "val/si_rmse_log", "val/rmse_log"):
        ys = [(e, r[key]) for e, r in zip(epochs, rows) if key in r]
        if ys:
            ax_val.plot(*zip(*ys), marker=".", label=key)
    ax_loss.set(xlabel="epoch", ylabel="scale-invariant loss", title="loss")
    ax_val.set(xlabel="epoch", ylabel="RMSE (log)", title="errors")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _savefig_atomic(fig, path)


# -- depth maps -------------------------------------------------------------------------------
DEPTH_CMAP = "viridis"  # perceptually uniform: near is dark, far is bright


def _savefig_atomic(fig: plt.Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save a figure as PNG under a temporary name, then rename it into place."""
    try:
        return write_with(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    finally:
        plt.close(fig)


def depth_range(*maps: np.ndarray) -> tuple[float, float]:
    """One colour scale for several depth maps: min and max of their finite positive values."""
    values = [m[np.isfinite(m) & (m > 0)] for m in maps if m is not None]
    values = [v for v in values if v.size]
    if not values:
        return 0.0, 1.0
    lo = float(min(v.min() for v in values))
    hi = float(max(v.max() for v in values))
    return (lo, hi) if hi > lo else (lo, lo + 1e-3)


def _depth_cmap() -> matplotlib.colors.Colormap:
    return matplotlib.colormaps[DEPTH_CMAP].with_extremes(bad="white")  # holes: white


def plot_depth_grid(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """The seed's Figure 3: one row per frame, columns RGB | ground truth | each predicted map
    (coarse | coarse+fine | ...), one colour scale per row with its colourbar in metres.

    Each row is a dict: ``rgb`` uint8 (H,W,3), ``gt`` (H,W) metres (0 or NaN = no ground truth,
    drawn white), one (H,W) map in metres per column (``mean``, ``coarse``, ``fine``, any stage
    name: in the first row's order), optionally ``label``.
    """
    if not rows:
        raise ValueError("plot_depth_grid needs at least one row")
    from depth_lightning.tables import column_name

    keys = ["gt", *(k for k in rows[0] if k not in ("rgb", "gt", "label"))]
    columns = [(k, "Ground truth" if k == "gt" else column_name(k)) for k in keys
               if all(r.get(k) is not None for r in rows)]
    n_cols = 1 + len(columns)
    h, w = rows[0]["rgb"].shape[:2]
    panel_w = 3.0
    fig, axes = plt.subplots(len(rows), n_cols, squeeze=False,
                             figsize=(panel_w * n_cols + 0.8, panel_w * h / w * len(rows) + 0.6),
                             layout="constrained")
    cmap = _depth_cmap()
    for i, row in enumerate(rows):
        maps = [np.where(np.asarray(row[k]) > 0, row[k], np.nan) for k, _ in columns]
        vmin, vmax = depth_range(*maps)
        axes[i, 0].imshow(row["rgb"])
        axes[i, 0].set_ylabel(row.get("label", ""), fontsize=8)
        image = None
        for j, depth in enumerate(maps, start=1):
            image = axes[i, j].imshow(np.ma.masked_invalid(depth), cmap=cmap, vmin=vmin,
                                      vmax=vmax)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
        if image is not None:
            fig.colorbar(image, ax=list(axes[i, 1:]), fraction=0.03, pad=0.01, label="m")
    for j, name in enumerate(["RGB", *(name for _, name in columns)]):
        axes[0, j].set_title(name, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=9)
    return _savefig_atomic(fig, path)


def plot_prediction(photo: np.ndarray, depth: np.ndarray, path: str | Path,
                    title: str = "") -> Path:
    """The photo beside its predicted depth map, colour-mapped, with a scale bar in metres."""
    h, w = depth.shape
    panel_w = 4.0
    fig, (ax_rgb, ax_depth) = plt.subplots(1, 2, figsize=(2 * panel_w + 0.9, panel_w * h / w + 0.5),
                                           layout="constrained")
    ax_rgb.imshow(photo)
    vmin, vmax = depth_range(depth)
    image = ax_depth.imshow(depth, cmap=_depth_cmap(), vmin=vmin, vmax=vmax)
    fig.colorbar(image, ax=ax_depth, fraction=0.046, pad=0.02, label="depth (m)")
    for ax in (ax_rgb, ax_depth):
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        ax_rgb.set_title(title, fontsize=9)
    return _savefig_atomic(fig, path)
