"""Colour-mapped depth for people: images through a colour map and figures with a colour bar
in metres (used by `predict`, the web demo and depth videos)."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from depth_lightning.core.files import write_bytes
from depth_lightning.errors import DepthLightningError

DEFAULT_CMAP = "viridis"  # perceptually uniform: near is dark, far is bright


def check_cmap(name: str, setting: str = "cmap") -> str:
    """`name` when matplotlib knows the colour map, else a one-line error listing a few."""
    import matplotlib

    if name not in matplotlib.colormaps:
        some = ", ".join(n for n in ("viridis", "magma", "inferno", "plasma", "turbo", "gray"))
        raise DepthLightningError(f"{setting}: {name!r} is not a matplotlib colour map "
                                  f"(e.g. {some})")
    return name


def check_range(value: Sequence[float] | None, setting: str = "depth_range"
                ) -> tuple[float, float] | None:
    """None (each output scaled to its own depths) or [near, far] in metres, near < far."""
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise DepthLightningError(f"{setting}: expected null or [near, far] in metres, got "
                                  f"{value!r}") from None
    if not (0 <= lo < hi < float("inf")):
        raise DepthLightningError(f"{setting}: need 0 <= near < far, got [{lo:g}, {hi:g}]")
    return lo, hi


def depth_limits(*maps: np.ndarray) -> tuple[float, float]:
    """One colour scale for several maps: min and max of their finite positive values."""
    values = [m[np.isfinite(m) & (m > 0)] for m in maps]
    values = [v for v in values if v.size]
    if not values:
        return 0.0, 1.0
    lo, hi = float(min(v.min() for v in values)), float(max(v.max() for v in values))
    return (lo, hi) if hi > lo else (lo, lo + 1e-3)


def colorize(depth: np.ndarray, limits: tuple[float, float],
             cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """Depth (H,W) in metres -> uint8 RGB (H,W,3) through `cmap` over `limits` (clipped);
    invalid pixels are black."""
    import matplotlib

    lut = (matplotlib.colormaps[cmap](np.linspace(0, 1, 256))[:, :3] * 255).round()
    lo, hi = limits
    valid = np.isfinite(depth)
    scaled = (np.where(valid, depth, lo) - lo) / (hi - lo) * 255
    rgb = lut.astype(np.uint8)[np.clip(np.round(scaled), 0, 255).astype(np.intp)]
    rgb[~valid] = 0
    return rgb


def figure_png(panels: Sequence[tuple[str, np.ndarray]], cmap: str = DEFAULT_CMAP,
               limits: tuple[float, float] | None = None, title: str = "") -> bytes:
    """Panels side by side as PNG bytes: (title, uint8 RGB photo) or (title, depth in metres),
    the depth maps on one colour scale (`limits`, else their own range) with a colour bar in
    metres."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = [a for _, a in panels if a.ndim == 2]
    vmin, vmax = limits or depth_limits(*maps)
    h, w = panels[0][1].shape[:2]
    panel_w = 4.0
    fig, axes = plt.subplots(1, len(panels), squeeze=False, layout="constrained",
                             figsize=(panel_w * len(panels) + 0.9, panel_w * h / w + 0.6))
    shown = None
    for ax, (name, a) in zip(axes[0], panels):
        if a.ndim == 2:
            shown = ax.imshow(np.ma.masked_invalid(a), cmap=cmap, vmin=vmin, vmax=vmax)
        else:
            ax.imshow(a)
        ax.set_title(name, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    if shown is not None:
        fig.colorbar(shown, ax=list(axes[0]), fraction=0.046 / len(panels) * 2, pad=0.02,
                     label="depth (m)")
    if title:
        fig.suptitle(title, fontsize=9)
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=100)
    finally:
        plt.close(fig)
    return buf.getvalue()


def write_figure(path: str | os.PathLike[str], panels: Sequence[tuple[str, np.ndarray]],
                 **kwargs) -> Path:
    """`figure_png` written to `path`, atomically."""
    return write_bytes(path, figure_png(panels, **kwargs))
