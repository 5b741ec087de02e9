"""DepthDataModule: any data source -> split -> frame cache -> joint transforms -> batches.

The source (`data.source`, a Hydra `_target_`) is a sequence of frames (depth_lightning.core.plugins
.check_frame); the module splits, caches, transforms and loads, whatever the source is.
Batches are dicts: `image` uint8 (B,3,228,304), `depth` float32 (B,1,55,74) in metres with
0 = invalid (Kinect hole, LiDAR gap, outside a rotated frame, NaN in the file), `index` (B,)
frame indices; the sizes are those of the frame chain `data.geometry` (NYU's here; KITTI's
input is 576x172, its target 142x27). A source whose `sparse_depth` is true (LiDAR) has its
depth reduced without dropping or inventing measurements, and frames without one valid depth
are left out of both splits, with a warning.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from depth_lightning.core.files import file_lock
from depth_lightning.core.plugins import build
from depth_lightning.core.settings import mapping, number, whole_number
from depth_lightning.data.cache import (
    CorruptCache,
    FrameCache,
    build_cache,
    cache_dir_for,
    run_cache,
)
from depth_lightning.data.sampling import EpochSampler, frame_generator
from depth_lightning.data.splits import make_split
from depth_lightning.data.transforms import Augment, JointTransform, sampling_grid
from depth_lightning.errors import DataError, DepthLightningError
from depth_lightning.geometry import FrameGeometry, geometry_of, sparse_resize

log = logging.getLogger(__name__)

TARGETS = {"depths": "depth", "rawDepths": "raw_depth"}


class ResumableLoader(DataLoader):
    """The training loader. Its position is restored by
    depth_lightning.training.resume.ResumeState (the sampler continues where a checkpoint
    stopped); these two methods tell Lightning that the loader is resumable, so it does not
    warn that it is not."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state_dict: dict) -> None:
        pass


class FrameDataset(Dataset):
    """Frames `indices` of a cache, transformed; the cache is memory-mapped lazily per process
    (pickling a memmap would copy the whole array into every worker). Item keys are positions,
    or ``(position, epoch)`` from the training sampler: then the augmentation is drawn from
    (seed, epoch, frame) alone."""

    def __init__(self, cache_root: str | Path, indices: np.ndarray, transform: JointTransform,
                 target: str = "depths", seed: int = 0) -> None:
        self.cache_root = Path(cache_root)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self.key = TARGETS[target]
        self.seed = seed
        self._cache: FrameCache | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": None}

    @property
    def cache(self) -> FrameCache:
        if self._cache is None:
            self._cache = FrameCache.open(self.cache_root)
        return self._cache

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        i, epoch = key if isinstance(key, tuple) else (key, None)
        idx = int(self.indices[i])
        generator = None if epoch is None else frame_generator(self.seed, epoch, idx)
        image, depth = self.transform(self.cache.images[idx], getattr(self.cache, self.key)[idx],
                                      generator)
        return {"image": image, "depth": depth, "index": idx}


PATH_SETTINGS = ("path", "root", "data_dir", "cache_dir", "split_file", "file")


def absolute_paths(settings: Any) -> Any:
    """`settings` with every relative file setting (`path`, `root`, ...) made absolute."""
    if isinstance(settings, dict):
        return {k: os.path.abspath(v) if k in PATH_SETTINGS and isinstance(v, str) and v
                else absolute_paths(v) for k, v in settings.items()}
    if isinstance(settings, list):
        return [absolute_paths(v) for v in settings]
    return settings


def augment_settings(aug: dict) -> Augment:
    """The `data.augment` settings, checked: flip a bool, rotate a number of degrees, scale and
    colour null or [min, max]."""
    for key in ("scale", "color"):
        if aug.get(key) is not None:
            pair = aug[key]
            if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
                raise DepthLightningError(f"data.augment.{key}: must be null or [min, max], "
                                          f"got {pair!r}")
            lo, hi = (number(x, f"data.augment.{key}", minimum=0.0) for x in pair)
            if lo > hi:
                raise DepthLightningError(f"data.augment.{key}: min {lo:g} is above max {hi:g}")
            aug[key] = (lo, hi)
    aug["rotate"] = number(aug.get("rotate", 0.0), "data.augment.rotate", minimum=0.0)
    if not isinstance(aug.get("flip", False), bool):
        raise DepthLightningError(f"data.augment.flip: must be true or false, got "
                                  f"{aug['flip']!r}")
    try:
        return Augment(**aug)
    except TypeError as e:
        raise DepthLightningError(f"data.augment: {e}") from None


class DepthDataModule(L.LightningDataModule):
    """A data source as train / val loaders.

    Args:
        source: config of the data source (a Hydra `_target_`), built on first use.
        target: ``depths`` (filled ground truth) or ``rawDepths`` (holes masked).
        split: `kind` and its settings (depth_lightning.data.splits.make_split).
        augment: joint augmentation (depth_lightning.data.transforms.Augment).
        batch_size, eval_batch_size: frames per training / validation batch.
        num_workers: loader processes, or ``auto``; pin_memory: bool or ``auto``.
        cache_dir: where frame caches live; cache_workers: processes that build one.
        seed: seed of the training order and augmentation (None: one is drawn and kept).
        geometry: the frame chain (depth_lightning.geometry: ``nyu``, ``kitti``, ``make3d`` or
            its sizes); the networks are built for it.
        source_settings: the data config's user-facing settings that `source` interpolates
            (`data.path`, `data.root`, ...); the module itself does not use them.
    """

    def __init__(self, source: dict, target: str, split: dict, augment: dict, batch_size: int,
                 eval_batch_size: int | None, num_workers: int | str, pin_memory: bool | str,
                 cache_dir: str, cache_workers: int, seed: int | None = None,
                 geometry: str | dict | None = None, **source_settings: Any) -> None:
        super().__init__()
        # what rebuilds this module (saved in checkpoints: evaluate scores the data trained on,
        # from whichever folder it is started: file settings are kept absolute)
        self.settings = absolute_paths(
            {"_target_": f"{type(self).__module__}.{type(self).__qualname__}",
             "_recursive_": False, "_convert_": "all", "source": source, "target": target,
             "split": split, "augment": augment, "batch_size": batch_size,
             "eval_batch_size": eval_batch_size, "num_workers": num_workers,
             "pin_memory": pin_memory, "cache_dir": cache_dir, "cache_workers": cache_workers,
             "seed": seed, **source_settings})
        if geometry is not None:  # (kept out when unset: older checkpoints read the same)
            self.settings["geometry"] = geometry
        self.geometry: FrameGeometry = geometry_of(geometry)
        if target not in TARGETS:
            raise DataError(f"data.target: must be one of {tuple(TARGETS)}, got {target!r}")
        self.source_cfg = mapping(source, "data.source", "data.source._target_=my.Frames")
        self.target = target
        self.split_cfg = mapping(split, "data.split", f"data.split.kind={split}")
        self.augment = augment_settings(mapping(augment, "data.augment",
                                                "data.augment.rotate=5"))
        self.batch_size = whole_number(batch_size, "data.batch_size")
        self.eval_batch_size = whole_number(batch_size if eval_batch_size is None else
                                            eval_batch_size, "data.eval_batch_size")
        self.num_workers = num_workers if num_workers == "auto" else \
            whole_number(num_workers, "data.num_workers", minimum=0)
        self.pin_memory = pin_memory
        self.cache_root = Path(cache_dir)
        self.cache_workers = int(cache_workers)
        self.seed = secrets.randbelow(2**31) if seed is None else \
            whole_number(seed, "seed", minimum=0)
        self._resume: tuple[int, int] | None = None  # (epoch, batches done) to continue at
        self._train_sampler: EpochSampler | None = None  # of the current fit
        self._source: Sequence[dict] | None = None
        self.cache: FrameCache | None = None
        self._run_cache: FrameCache | None = None
        self.train_idx = self.val_idx = None
        self._stats: dict[str, torch.Tensor] | None = None

    # -- source and cache ---------------------------------------------------------------------
    @property
    def source(self) -> Sequence[dict]:
        """The data source, built (and so generated or downloaded) on first use."""
        if self._source is None:
            self._source = build(self.source_cfg, "data.source")
            if not hasattr(self._source, "__len__") or not hasattr(self._source, "__getitem__"):
                raise DepthLightningError(f"data.source: {type(self._source).__name__} is not a "
                                          "sequence of frames (needs __len__ and __getitem__)")
        return self._source

    def prepare_data(self) -> None:
        self._open_cache()

    @property
    def sparse(self) -> bool:
        """Whether the source's depth is sparse (LiDAR: most pixels without a measurement)."""
        return bool(getattr(self.source, "sparse_depth", False))

    def _open_cache(self) -> FrameCache:
        chain = {"geometry": self.geometry, "sparse": self.sparse}
        dest = cache_dir_for(self.source, self.cache_root, **chain)
        if dest is None:  # built once per module: prepare_data and setup share it
            if self._run_cache is None:
                self._run_cache = run_cache(self.source, self.cache_root, self.cache_workers,
                                            **chain)
            return self._run_cache
        with file_lock(dest.with_name(dest.name + ".lock")):
            try:
                return build_cache(self.source, dest, workers=self.cache_workers, **chain)
            except CorruptCache as e:
                log.warning("rebuilding a corrupt frame cache (%s)", e)
                shutil.rmtree(dest, ignore_errors=True)
                return build_cache(self.source, dest, workers=self.cache_workers, **chain)

    def setup(self, stage: str | None = None) -> None:
        self._resume, self._train_sampler = None, None  # a new fit: no position of an old one
        if self.cache is not None:
            return
        self.cache = self._open_cache()
        s = self.split_cfg
        named = dict(getattr(self.source, "named_splits", None) or {})
        if s["kind"] in named:  # a split of the source's own (KITTI's eigen, say)
            self.train_idx, self.val_idx = (np.sort(np.asarray(x, np.int64))
                                            for x in named[s["kind"]](dict(s)))
        else:
            self.train_idx, self.val_idx = make_split(
                s["kind"], len(self.cache), scenes=self.cache.scenes, seed=s.get("seed", 0),
                val_fraction=s.get("val_fraction", 0.2), subset=s.get("subset"),
                official=getattr(self.source, "official_split", None), train=s.get("train"),
                val=s.get("val"), more_kinds=tuple(named))
        if self.sparse:
            self._drop_empty_frames()
        if len(self.train_idx) == 0 or len(self.val_idx) == 0:
            raise DataError(f"data.split: the {s['kind']} split left no training or no "
                            f"validation frames ({len(self.train_idx)} / {len(self.val_idx)})")
        log.info("data: %s, %d train / %d val frames", self.describe(), len(self.train_idx),
                 len(self.val_idx))

    def _drop_empty_frames(self) -> None:
        """Leave frames without a single valid depth out of both splits, and say so."""
        empty = set(self.cache.meta.get("frames_without_valid_raw_depth", []))
        if not empty:
            return
        names = ", ".join(f"frame {i}" for i in sorted(empty)[:5])
        log.warning("data: %d frames without a valid depth left out (%s%s)", len(empty), names,
                    ", ..." if len(empty) > 5 else "")
        self.train_idx = np.array([i for i in self.train_idx if int(i) not in empty], np.int64)
        self.val_idx = np.array([i for i in self.val_idx if int(i) not in empty], np.int64)

    def describe(self) -> str:
        """The source in a few words, for logs and tables."""
        return str(getattr(self.source, "path", None) or getattr(self.source, "root", None)
                   or repr(self.source))

    # -- loaders ----------------------------------------------------------------------------
    def _workers(self) -> int:
        if self.num_workers != "auto":
            return int(self.num_workers)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
        # On a GPU the loader must keep up with a fast step; on a CPU it competes with the step
        # for the same cores, and one worker already delivers several times the training rate.
        return min(8, cpus) if torch.cuda.is_available() else 1

    def _loader(self, indices: np.ndarray, train: bool, batch_size: int) -> DataLoader:
        transform = JointTransform(train, self.augment, self.geometry, self.sparse)
        ds = FrameDataset(self.cache.root, indices, transform, self.target, self.seed)
        sampler = None
        if train:
            sampler = self._train_sampler = EpochSampler(len(indices), self.seed)
            if self._resume is not None:
                epoch, batches = self._resume
                sampler.resume_at(epoch, batches * batch_size)
                self._resume = None
        workers = self._workers()
        pin = torch.cuda.is_available() if self.pin_memory == "auto" else bool(self.pin_memory)
        # Its own generator: creating an iterator never draws from the global random state,
        # which a resumed run must find as the checkpoint left it.
        return (ResumableLoader if train else DataLoader)(
            ds, batch_size=batch_size, sampler=sampler, drop_last=False,
            num_workers=workers, pin_memory=pin, persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(self.seed))

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_idx, True, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_idx, False, self.eval_batch_size)

    def resume_at(self, epoch: int, batches: int) -> None:
        """The next training loader continues at `epoch` after its first `batches` batches,
        where a checkpoint stopped (depth_lightning.training.callbacks.ResumeState)."""
        per_epoch = -(-len(self.train_idx) // self.batch_size)
        epoch, batches = (epoch + 1, 0) if batches >= per_epoch else (epoch, batches)
        if self._train_sampler is not None:  # this fit's loader exists: it continues there
            self._train_sampler.resume_at(epoch, batches * self.batch_size)
        else:
            self._resume = (epoch, batches)

    # -- statistics -------------------------------------------------------------------------
    def eval_targets(self, indices: np.ndarray, chunk: int = 256) -> torch.Tensor:
        """Centre-crop targets (N,1,55,74) of frames `indices`, as the validation loader gives."""
        src_hw = self.cache.depth.shape[1:]
        size, out_size = self.geometry.input, self.geometry.output
        crop = ((src_hw[1] - size[1]) // 2, (src_hw[0] - size[0]) // 2)  # whole pixels
        grid = sampling_grid(size if self.sparse else out_size, src_hw, crop, 1.0, 0.0, False,
                             size)
        # A map of its own, dropped on return: pages touched here leave this process with it.
        arr = np.load(self.cache.root / f"{TARGETS[self.target]}.npy", mmap_mode="r")
        out = []
        for start in range(0, len(indices), chunk):
            d = torch.from_numpy(np.stack([arr[i] for i in indices[start:start + chunk]]))
            t = F.grid_sample(d[:, None], grid.expand(len(d), -1, -1, -1), mode="nearest",
                              align_corners=False)
            out.append(sparse_resize(t, out_size) if self.sparse else t)
        t = torch.cat(out)
        return torch.where(torch.isfinite(t) & (t > 0), t, torch.zeros_like(t))

    def depth_statistics(self) -> dict[str, torch.Tensor]:
        """Per-pixel mean depth and mean log depth (1,55,74) over the training frames' valid
        pixels: the paper's "Mean" baseline and the coarse head's starting point."""
        if self._stats is None:
            t = self.eval_targets(self.train_idx)
            valid = t > 0
            if not bool(valid.any()):
                raise DataError(f"data: the {len(self.train_idx)} training frames of "
                                f"{self.describe()} hold no valid depth (all 0, NaN, inf or "
                                f"negative in {self.target})")
            n = valid.sum(0).clamp_min(1)
            mean = torch.where(valid, t, 0).sum(0) / n
            mean_log = torch.where(valid, torch.log(t.clamp_min(1e-6)), 0).sum(0) / n
            empty = valid.sum(0) == 0  # a pixel never valid in training: use the global mean
            mean[empty] = t[valid].mean()
            mean_log[empty] = torch.log(t[valid]).mean()
            self._stats = {"mean_depth": mean, "mean_log_depth": mean_log}
        return self._stats
