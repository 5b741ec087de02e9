"""Checkpoint files: written crash-safe, once per epoch.

* :class:`AtomicCheckpointIO` writes each checkpoint to a temporary file in its own folder,
  fsyncs and renames it, so a crash or a full disk never leaves a truncated file under a final
  name; a full disk is one line naming the path and the space needed.
* :class:`StageCheckpoint` writes `last.ckpt`, the newest epoch's full state, after every
  validation, into the stage's `checkpoints/` folder, and `best.ckpt` as a hard link to it when
  validation improves (one write per epoch, and the previous best survives any later write).
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from depth_lightning.core.files import disk_full, tmp_name


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
                raise disk_full(path, needed) from None
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


class StageCheckpoint(ModelCheckpoint):
    """`last.ckpt` = the newest epoch's full state, written after every validation; the best
    checkpoint (`filename`, by `monitor`) a hard link to it when it improves.

    ModelCheckpoint saves the best first and the last second; here the best is held back and
    linked to the last once that is written: one write per epoch, never two copies on disk.
    `stage`: the stage being trained; without a `dirpath` the checkpoints go to its
    `checkpoints/` folder.
    """

    def __init__(self, *args: Any, stage: Any = None, dirpath: str | Path | None = None,
                 **kwargs: Any) -> None:
        if dirpath is None and stage is not None:
            dirpath = Path(stage.dir) / "checkpoints"
        super().__init__(*args, dirpath=dirpath, **kwargs)

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
