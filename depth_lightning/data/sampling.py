"""The training order, reproducible and resumable: which frames, in which order, with which
augmentation draw, depend only on (seed, epoch, frame), never on a process's random state.

So a run resumed from a checkpoint, mid-epoch or at an epoch's end, sees exactly the batches
the uninterrupted run would have seen (DataLoader workers, their number and their restarts do
not matter), and under DDP each process takes its own share of the same permutation.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


def frame_generator(seed: int, epoch: int, frame: int) -> torch.Generator:
    """The random generator of one frame's augmentation in one epoch."""
    state = np.random.SeedSequence([seed, epoch, frame]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


class EpochSampler(DistributedSampler):
    """A permutation of `n` positions per (seed, epoch) (DistributedSampler's own), this
    process's share of it under DDP; yields ``(position, epoch)``. :meth:`resume_at` leaves out
    the first samples of an epoch already trained before a checkpoint.

    Example:
        >>> s = EpochSampler(5, seed=0)
        >>> first = list(s)
        >>> s.set_epoch(1)
        >>> [e for _, e in s] == [1] * 5 and sorted(i for i, _ in s) == [0, 1, 2, 3, 4]
        True
        >>> s.resume_at(0, 2)
        >>> list(s) == first[2:]
        True
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True) -> None:
        ddp = dist.is_available() and dist.is_initialized()
        super().__init__(range(n), num_replicas=dist.get_world_size() if ddp else 1,
                         rank=dist.get_rank() if ddp else 0, shuffle=shuffle, seed=seed,
                         drop_last=False)
        self._skip = (-1, 0)  # (epoch, samples of this process to leave out)

    def resume_at(self, epoch: int, samples: int) -> None:
        """Continue at `epoch`, after its first `samples` samples of this process."""
        self.set_epoch(epoch)
        self._skip = (epoch, samples)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        skip = self._skip[1] if self._skip[0] == self.epoch else 0
        for k, i in enumerate(super().__iter__()):
            if k >= skip:
                yield int(i), self.epoch
