"""A PNG grid of frames read back from a SynthRooms file, to eyeball what was generated."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from depth_lightning.core.files import write_with


def _read_rows(h5_path: str | Path, n: int) -> tuple[list[str], list[tuple]]:
    """Scene names and (RGB, filled depth, raw depth) of up to n frames spread over the file."""
    import h5py

    with h5py.File(h5_path, "r") as f:
        total = f["images"].shape[0]
        idx = np.unique(np.linspace(0, total - 1, min(n, total)).astype(int))
        names = ["".join(map(chr, f[r][()].ravel())) for r in f["scenes"][0, idx]]
        rows = [(f["images"][i].T, f["depths"][i].T, f["rawDepths"][i].T) for i in idx]
    return names, rows


def save_preview(h5_path: str | Path, png: str | Path, n: int = 8) -> Path:
    """Grid of the first ``n`` frames (RGB, filled depth, raw depth) read back from the file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, rows = _read_rows(h5_path, n)
    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3 * len(rows)), squeeze=False,
                             layout="constrained")
    for ax_row, (img, dep, raw), name in zip(axes, rows, names, strict=True):
        ax_row[0].imshow(img)
        ax_row[0].set_title(name, fontsize=8)
        im = ax_row[1].imshow(dep, cmap="magma_r", vmin=0, vmax=8)
        ax_row[1].set_title(f"depth {dep.min():.2f}-{dep.max():.2f} m", fontsize=8)
        ax_row[2].imshow(np.ma.masked_equal(raw, 0), cmap="magma_r", vmin=0, vmax=8)
        ax_row[2].set_title(f"raw, holes {(raw == 0).mean():.0%}", fontsize=8)
        for a in ax_row:
            a.axis("off")
    fig.colorbar(im, ax=axes[:, 1:].ravel().tolist(), shrink=0.3, label="depth (m)")
    # the temporary name hides the extension, so the format is named explicitly
    fmt = Path(png).suffix.lstrip(".") or plt.rcParams["savefig.format"]
    try:
        return write_with(png, lambda tmp: fig.savefig(tmp, format=fmt, dpi=80,
                                                       bbox_inches="tight"))
    finally:
        plt.close(fig)
