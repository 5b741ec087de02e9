"""Figures: learning curves (and, later, depth panels). matplotlib with the Agg backend."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_epoch_csv(path: str | Path) -> list[dict[str, float]]:
    """Rows of an epochs.csv as floats (empty cells dropped)."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)}
                for row in csv.DictReader(f)]


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
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
