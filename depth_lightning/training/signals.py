"""Stopping on a signal: SIGTERM (a scheduler) or Ctrl+C saves a resumable checkpoint and ends
the fit with :class:`~depth_lightning.errors.Stopped`, which the command line reports with the
`resume=` command and a non-zero exit status."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import lightning as L

from depth_lightning.errors import Stopped


class GracefulStop(L.Callback):
    """SIGTERM / SIGINT: finish the current training batch, save `last.ckpt` there, raise
    :class:`Stopped`. A second Ctrl+C stops at once (KeyboardInterrupt).

    Where the stop lands: after a training batch that is not its epoch's last; a signal during
    validation or at an epoch's last batch waits for the next epoch's first batch (a fit
    resumed from the last batch of an epoch would skip that epoch's validation), and one
    during the last epoch's validation stops when the stage's training ends."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._active = False

    def _handle(self, signum: int, frame: Any) -> None:
        if not self._active or (self.received is not None and signum == signal.SIGINT):
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            signal.signal(signum, signal.SIG_DFL)  # outside training: the default, at once
            os.kill(os.getpid(), signum)
        self.received = signum

    def _install(self) -> None:
        for s in self.SIGNALS:
            try:
                previous = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                return
            self._previous.setdefault(s, previous)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.received, self._active = None, True
            self._install()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning registers its own SIGTERM handler after `setup`, around ours; with it, its
        # loops leave by SystemExit (exit status 0, no checkpoint) after a validation batch or
        # an epoch. Ours alone decides where the run stops.
        if self._previous:
            self._install()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._active = False
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _stop_requested(self, trainer: L.Trainer) -> bool:
        return trainer.strategy.reduce_boolean_decision(self.received is not None, all=False)

    def _stop(self, trainer: L.Trainer, where: str) -> None:
        cb = trainer.checkpoint_callback
        path = Path(cb.dirpath if cb is not None and cb.dirpath else trainer.default_root_dir)
        trainer.save_checkpoint(path / "last.ckpt")
        raise Stopped(self.received or signal.SIGTERM, f"{where}; saved {path / 'last.ckpt'}")

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        if not self._stop_requested(trainer):
            return
        if batch_idx + 1 >= trainer.num_training_batches:  # the epoch's last: after validation
            return
        self._stop(trainer, f"at epoch {trainer.current_epoch}, batch {batch_idx + 1}")

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._stop_requested(trainer):
            self._stop(trainer, f"after the stage's last epoch ({trainer.current_epoch - 1})")
