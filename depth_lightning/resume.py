"""What lets a run survive: checkpoints that resume exactly, are written crash-safe, and are
saved when the scheduler (SIGTERM) or the user (Ctrl+C) stops the run.

* :class:`ResumeState` puts into every checkpoint what exactness needs beyond Lightning's own
  state: the random states of torch (CPU and CUDA), numpy and Python, and the training
  loader's seed; on resume it restores them and has the loader continue where the
  checkpoint stopped (depth_lightning.data.sampling).
* :class:`StageCheckpoint` writes `last.ckpt`, the newest epoch's full state, after every
  validation, and `best.ckpt` as a hard link to it when validation improves (one write per
  epoch, and the previous best survives any later write).
* :class:`AtomicCheckpointIO` writes each checkpoint to a temporary file in its own folder,
  fsyncs and renames it, so a crash or a full disk never leaves a truncated file under a final
  name; a full disk is one line naming the path and the space needed.
* :class:`GracefulStop` turns SIGTERM and SIGINT into a checkpoint at the end of the current
  training batch and a :class:`Stopped` exception the entry point reports with the `resume=`
  command and a non-zero exit status.
"""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from depth_lightning.errors import DepthLightningError
from depth_lightning.io import _disk_full, tmp_name


class Stopped(DepthLightningError):
    """Training stopped by a signal after saving a resumable checkpoint."""

    def __init__(self, signum: int, where: str) -> None:
        self.signum = signum
        super().__init__(f"stopped by {signal.Signals(signum).name} {where}")


# -- exact resume -----------------------------------------------------------------------------
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


# -- crash-safe files -------------------------------------------------------------------------
def checkpoint_bytes(checkpoint: dict) -> int:
    """About the size of a checkpoint on disk: the bytes of its tensors."""
    total = 0

    def visit(x: Any) -> None:
        nonlocal total
        if isinstance(x, torch.Tensor):
            total += x.numel() * x.element_size()
        elif isinstance(x, dict):
            for v in x.values():
                visit(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                visit(v)

    visit(checkpoint)
    return total


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into a temporary file in the checkpoint's own folder, fsync, rename."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any,
                        storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_name(path)
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except (OSError, RuntimeError) as e:
            tmp.unlink(missing_ok=True)
            # torch's zip writer reports a full disk as "unexpected pos ...", not as ENOSPC
            needed = checkpoint_bytes(checkpoint)
            if getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or \
                    shutil.disk_usage(path.parent).free < needed:
                raise _disk_full(path, needed) from None
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


class StageCheckpoint(ModelCheckpoint):
    """`last.ckpt` = the newest epoch's full state, written after every validation; the best
    checkpoint (`filename`, by `monitor`) a hard link to it when it improves.

    ModelCheckpoint saves the best first and the last second; here the best is held back and
    linked to the last once that is written: one write per epoch, never two copies on disk.
    """

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        if self.save_last and Path(filepath).stem != self.CHECKPOINT_NAME_LAST:
            self._pending_best = filepath  # written as a link by _save_last_checkpoint
            self._last_global_step_saved = trainer.global_step
            return
        super()._save_checkpoint(trainer, filepath)

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        if not self.save_last:
            return
        filepath = self.format_checkpoint_name(monitor_candidates, self.CHECKPOINT_NAME_LAST)
        self.last_model_path = filepath
        super()._save_checkpoint(trainer, filepath)
        best = self.__dict__.pop("_pending_best", None)
        if best is not None and trainer.is_global_zero:
            link_or_copy(filepath, best)
        trainer.strategy.barrier()


def link_or_copy(source: str | Path, dest: str | Path) -> None:
    """`dest` becomes the same file as `source` (a hard link, else a copy), atomically."""
    tmp = tmp_name(Path(dest))
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # a file system without hard links
        shutil.copyfile(source, tmp)
    os.replace(tmp, dest)


# -- signals ----------------------------------------------------------------------------------
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
