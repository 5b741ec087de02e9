"""Figures: learning curves, the Figure-3 depth grid and prediction panels (matplotlib, Agg)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from depth_lightning.core.files import write_with  # noqa: E402


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


FORMATS = ("png", "pdf", "svg")
DEPTH_SCALES = ("row", "figure")


def figure_settings(fmt: str = "png", dpi: int = 100, depth_scale: str = "row"
                    ) -> dict[str, object]:
    """The `viz` settings, checked: file format (png, pdf, svg), resolution of raster output in
    dots per inch, and the colour scale of depth figures (one per row, or one per figure)."""
    from depth_lightning.errors import DepthLightningError

    if str(fmt) not in FORMATS:
        raise DepthLightningError(f"viz.format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or not 10 <= dpi <= 2400:
        raise DepthLightningError(f"viz.dpi: {dpi!r} is not a whole number from 10 to 2400")
    if str(depth_scale) not in DEPTH_SCALES:
        raise DepthLightningError(f"viz.depth_scale: {depth_scale!r} is not one of "
                                  f"{', '.join(DEPTH_SCALES)}")
    return {"fmt": str(fmt), "dpi": int(dpi), "depth_scale": str(depth_scale)}


def plain_ticks(ax: plt.Axes, integer_x: bool = True) -> None:
    """Tick labels as plain numbers (no offset such as '1e-6+2.34e-1'); whole epochs on x."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):
        formatter = ScalarFormatter(useOffset=False)
        formatter.set_scientific(False)
        axis.set_major_formatter(formatter)
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def best_row(rows: list[dict[str, float]], key: str = "val/si_rmse_log") -> dict | None:
    """The row with the lowest `key` (the epoch the best checkpoint keeps)."""
    scored = [r for r in rows if key in r]
    return min(scored, key=lambda r: r[key]) if scored else None


def plot_learning_curves(rows: list[dict[str, float]], path: str | Path, title: str = "",
                         references: dict[str, float] | None = None, dpi: int = 100) -> Path:
    """Loss and validation errors per epoch (counted from 0, as epochs.csv and the panels):
    left the losses, right the errors, with the best epoch marked and `references` (column ->
    val si_rmse_log: the Mean baseline, the stage built on) as horizontal lines."""
    from depth_lightning.reporting.tables import column_name

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    epochs = [r["epoch"] for r in rows]
    for key, label in (("train/loss", "train loss"), ("val/loss", "val loss")):
        ys = [(e, r[key]) for e, r in zip(epochs, rows) if key in r]
        if ys:
            ax_loss.plot(*zip(*ys), marker=".", label=label)
    for key in ("train/si_rmse_log", "val/si_rmse_log", "val/rmse_log"):
        ys = [(e, r[key]) for e, r in zip(epochs, rows) if key in r]
        if ys:
            ax_val.plot(*zip(*ys), marker=".", label=key)
    for i, (column, value) in enumerate((references or {}).items()):
        ax_val.axhline(value, color=("0.35", "tab:purple", "tab:brown")[i % 3],
                       linestyle=("--", ":", "-.")[i % 3], linewidth=1,
                       label=f"{column_name(column)} (val si_rmse_log {value:.4f})")
    best = best_row(rows)
    if best is not None:
        for ax in (ax_loss, ax_val):
            ax.axvline(best["epoch"], color="tab:red", alpha=0.35, linewidth=1)
        ax_val.plot([best["epoch"]], [best["val/si_rmse_log"]], marker="*", markersize=12,
                    color="tab:red", linestyle="none",
                    label=f"best: epoch {int(best['epoch'])} ({best['val/si_rmse_log']:.4f})")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_val.set(xlabel="epoch", ylabel="RMSE (log)", title="errors")
    for ax in (ax_loss, ax_val):
        ax.grid(alpha=0.3)
        plain_ticks(ax)
        if ax.get_legend_handles_labels()[0]:  # below the axes: never over the curves
            ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2,
                      frameon=False)
    if title:
        fig.suptitle(title)
    return _savefig_atomic(fig, path, dpi)


# -- depth maps -------------------------------------------------------------------------------
DEPTH_CMAP = "viridis"  # perceptually uniform: near is dark, far is bright


def _savefig_atomic(fig: plt.Figure, path: str | Path, dpi: int = 100) -> Path:
    """Save a figure under a temporary name, then rename it into place; the format is the
    path's suffix (png, pdf, svg; png when it has none of these)."""
    suffix = Path(path).suffix.lstrip(".").lower()
    fmt = suffix if suffix in FORMATS else "png"
    try:
        return write_with(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt))
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


def plot_depth_grid(rows: list[dict], path: str | Path, title: str = "", scale: str = "row",
                    dpi: int = 100) -> Path:
    """The seed's Figure 3: one row per frame, columns RGB | ground truth | each predicted map
    (coarse | coarse+fine | ...), in metres: with `scale="row"` one colour scale (and
    colourbar) per row, with `scale="figure"` one shared by every panel.

    Each row is a dict: ``rgb`` uint8 (H,W,3), ``gt`` (H,W) metres (0 or NaN = no ground truth,
    drawn white), one (H,W) map in metres per column (``mean``, ``coarse``, ``fine``, any stage
    name: in the first row's order), optionally ``label``.
    """
    if not rows:
        raise ValueError("plot_depth_grid needs at least one row")
    from depth_lightning.reporting.tables import column_name

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
    maps = [[np.where(np.asarray(row[k]) > 0, row[k], np.nan) for k, _ in columns]
            for row in rows]
    shared = depth_range(*(m for row_maps in maps for m in row_maps))
    image = None
    for i, row in enumerate(rows):
        vmin, vmax = shared if scale == "figure" else depth_range(*maps[i])
        axes[i, 0].imshow(row["rgb"])
        axes[i, 0].set_ylabel(row.get("label", ""), fontsize=8)
        for j, depth in enumerate(maps[i], start=1):
            image = axes[i, j].imshow(np.ma.masked_invalid(depth), cmap=cmap, vmin=vmin,
                                      vmax=vmax)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
        if image is not None and scale != "figure":
            fig.colorbar(image, ax=list(axes[i, 1:]), fraction=0.03, pad=0.01, label="m")
    if image is not None and scale == "figure":
        fig.colorbar(image, ax=list(axes[:, 1:].ravel()), fraction=0.03, pad=0.01,
                     label="depth (m)")
    for j, name in enumerate(["RGB", *(name for _, name in columns)]):
        axes[0, j].set_title(name, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=9)
    return _savefig_atomic(fig, path, dpi)


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
