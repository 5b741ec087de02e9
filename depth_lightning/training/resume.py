"""Exact resume: every checkpoint holds what exactness needs beyond Lightning's own state (the
random states of torch (CPU and CUDA), numpy and Python, and the training loader's seed); on
resume :class:`ResumeState` restores them and has the loader continue where the checkpoint
stopped (depth_lightning.data.sampling)."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch


def rng_states() -> dict[str, Any]:
    """The random states a training step can draw from (dropout, anything user code does), as
    tensors and plain values: checkpoints stay loadable with `weights_only=True`."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    states = {"torch": torch.get_rng_state(),
              "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
              "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def batches_done(checkpoint: dict) -> int:
    """Training batches of the checkpoint's epoch that were trained on when it was saved
    ("processed": a checkpoint saved at a batch's end counts that batch, which Lightning marks
    "completed" only afterwards)."""
    progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    return int(progress["processed"])


class ResumeState(L.Callback):
    """Random states and the training loader's position, saved with every checkpoint and
    restored on resume (before any of them is drawn from again)."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict) -> None:
        checkpoint["resume_state"] = {"rng": rng_states(),
                                      "data_seed": getattr(trainer.datamodule, "seed", None)}

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict) -> None:
        state = checkpoint.get("resume_state")
        if state is None:
            return
        set_rng_states(state["rng"])
        dm = trainer.datamodule
        if dm is not None and hasattr(dm, "resume_at"):
            dm.seed = state["data_seed"]
            dm.resume_at(int(checkpoint["epoch"]), batches_done(checkpoint))
