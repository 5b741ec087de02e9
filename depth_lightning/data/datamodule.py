"""DepthDataModule: labeled file -> cached frames -> joint transforms -> batches.

Batches are dicts: `image` uint8 (B,3,228,304), `depth` float32 (B,1,55,74) in metres with
0 = invalid (Kinect hole, outside a rotated frame, NaN in the file), `index` (B,) frame indices.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from depth_lightning.data import download as dl
from depth_lightning.data.cache import FrameCache, build_cache, cache_dir_for
from depth_lightning.data.folder import FolderRGBD, same_dataset
from depth_lightning.data.nyu import NYULabeled
from depth_lightning.data.splits import make_split
from depth_lightning.data.transforms import Augment, JointTransform, _grid
from depth_lightning.errors import DataError
from depth_lightning.nets import INPUT_SIZE, OUTPUT_SIZE

log = logging.getLogger(__name__)

SOURCES = ("synthrooms", "nyu_v1", "nyu_v2", "folder")
TARGETS = {"depths": "depth", "rawDepths": "raw_depth"}


class FrameDataset(Dataset):
    """Frames `indices` of a cache, transformed; the cache is memory-mapped lazily per process
    (pickling a memmap would copy the whole array into every worker)."""

    def __init__(self, cache_root: str | Path, indices: np.ndarray, transform: JointTransform,
                 target: str = "depths") -> None:
        self.cache_root = Path(cache_root)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.transform = transform
        self.key = TARGETS[target]
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

    def __getitem__(self, i: int) -> dict[str, Any]:
        idx = int(self.indices[i])
        image, depth = self.transform(self.cache.images[idx], getattr(self.cache, self.key)[idx])
        return {"image": image, "depth": depth, "index": idx}


def _open_labeled(path: str, version: str | None) -> NYULabeled:
    return NYULabeled(path, version=version)


class DepthDataModule(L.LightningDataModule):
    """NYU-layout labeled file (SynthRooms, NYU V1 or V2) or a folder of RGB-D images
    (`source="folder"`, `root`, `depth_scale`) as train / val / test loaders.

    With `download=True`, `prepare_data` fetches a missing NYU file (and V2's splits.mat) from
    its official address, or from `urls[name]` (names: nyu_v2, splits, nyu_v1), into the folder
    of `path` / `split.file` (`data_dir` by default).
    """

    def __init__(
        self,
        source: str = "synthrooms",
        path: str | None = None,
        version: str | None = None,
        synth: dict | None = None,
        target: str = "depths",
        split: dict | None = None,
        augment: dict | None = None,
        batch_size: int = 32,
        eval_batch_size: int | None = None,
        num_workers: int | str = "auto",
        pin_memory: bool | str = "auto",
        data_dir: str = "data",
        cache_dir: str | None = None,
        cache_workers: int = 2,
        download: bool = False,
        urls: dict | None = None,
        root: str | None = None,
        depth_scale: float = 1000.0,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise DataError(f"data.source: unknown source {source!r}; choose one of {SOURCES}")
        if target not in TARGETS:
            raise DataError(f"data.target: must be one of {tuple(TARGETS)}, got {target!r}")
        self.source = source
        self.path = path
        self.version = version or (source[-2:] if source.startswith("nyu_") else None)
        self.synth = {"frames": 2000, "seed": 0, **(synth or {})}
        self.target = target
        self.split_cfg = {"kind": "scene", "val_fraction": 0.2, "seed": 0, **(split or {})}
        aug = dict(augment or {})
        for k in ("scale", "color"):
            if aug.get(k) is not None:
                aug[k] = tuple(aug[k])
        self.augment = Augment(**aug)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.data_dir = Path(data_dir)
        self.cache_root = Path(cache_dir) if cache_dir else self.data_dir / "cache"
        self.cache_workers = cache_workers
        self.download = bool(download)
        self.urls = dl.check_urls(urls)
        self.root = root
        self.depth_scale = depth_scale
        self.cache: FrameCache | None = None
        self.train_idx = self.val_idx = None
        self._stats: dict[str, torch.Tensor] | None = None

    # -- files ------------------------------------------------------------------------------
    def resolve_path(self) -> Path:
        """The labeled file to read, generating SynthRooms on first use."""
        if self.source == "synthrooms" and not self.path:
            from depth_lightning.data.synthrooms import ensure_synthrooms

            return ensure_synthrooms(self.data_dir, self.synth["frames"], self.synth["seed"])
        if self.source == "folder":
            raise DataError("data.path: the folder source reads data.root, not a file")
        if not self.path:
            raise DataError(f"data.path: {self.source} needs the path of the labeled .mat file")
        path = Path(self.path).expanduser()
        if not path.is_file():
            hint = "" if self.download or self.source not in dl.REGISTRY else (
                f" (set data.download=true to fetch {dl.REGISTRY[self.source].fname}, or "
                "download it yourself)")
            raise DataError(f"data.path: {path} does not exist{hint}")
        if not os.access(path, os.R_OK):
            raise DataError(f"data.path: {path} is not readable")
        return path

    def _folder(self, check: bool = False) -> FolderRGBD:
        if not self.root:
            raise DataError("data.root: the folder source needs the folder of RGB-D images")
        return FolderRGBD(self.root, self.depth_scale, check=check)

    def cache_path(self) -> Path:
        """The frame cache of the configured source (built or not)."""
        if self.source == "folder":
            return self._folder().cache_dir(self.cache_root)
        return cache_dir_for(self.resolve_path(), self.cache_root)

    def split_file(self) -> Path | None:
        """The official split's splits.mat: data.split.file, else beside the labeled file."""
        s = self.split_cfg
        if s.get("kind") != "official":
            return None
        if s.get("file"):
            return Path(s["file"]).expanduser()
        return Path(self.path).expanduser().parent / "splits.mat" if self.path else None

    def fetch_missing(self) -> None:
        """Download the configured NYU files that are missing (`download=True`)."""
        if self.source not in ("nyu_v1", "nyu_v2"):
            return
        wanted = []
        if self.path:
            wanted.append((self.source, Path(self.path).expanduser()))
        if self.source == "nyu_v2" and self.split_file() is not None:
            wanted.append(("splits", self.split_file()))
        for name, dest in wanted:
            if not dest.exists():
                dl.fetch(name, dest.parent, url=self.urls.get(name), fname=dest.name)

    def prepare_data(self) -> None:
        if self.download:
            self.fetch_missing()
        if self.source == "folder":
            folder = self._folder()
            dest = folder.cache_dir(self.cache_root)
            if not (dest / "meta.json").is_file():
                folder.check_files()
                build_cache(folder, dest, folder.scenes, factory=partial(same_dataset, folder),
                            workers=self.cache_workers)
            return
        path = self.resolve_path()
        labeled = NYULabeled(path, version=self.version)  # validates keys and shapes
        dest = cache_dir_for(path, self.cache_root)
        build_cache(labeled, dest, labeled.scenes, factory=partial(_open_labeled, str(path),
                                                                   self.version),
                    workers=self.cache_workers)

    def setup(self, stage: str | None = None) -> None:
        if self.cache is not None:
            return
        dest = self.cache_path()
        path = self.root if self.source == "folder" else self.resolve_path()
        if not (dest / "meta.json").is_file():  # prepare_data was skipped (e.g. a test)
            self.prepare_data()
        self.cache = FrameCache.open(dest)
        s = self.split_cfg
        self.train_idx, self.val_idx = make_split(
            s["kind"], len(self.cache), scenes=self.cache.scenes, seed=s.get("seed", 0),
            val_fraction=s.get("val_fraction", 0.2), subset=s.get("subset"),
            file=self.split_file(), train=s.get("train"), val=s.get("val"),
        )
        if len(self.train_idx) == 0 or len(self.val_idx) == 0:
            raise DataError(f"data.split: the {s['kind']} split left no training or no "
                            f"validation frames ({len(self.train_idx)} / {len(self.val_idx)})")
        log.info("data: %s, %d train / %d val frames", path, len(self.train_idx),
                 len(self.val_idx))

    # -- loaders ----------------------------------------------------------------------------
    def _workers(self) -> int:
        if self.num_workers != "auto":
            return int(self.num_workers)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
        # On a GPU the loader must keep up with a fast step; on a CPU it competes with the step
        # for the same cores, and one worker already delivers several times the training rate.
        return min(8, cpus) if torch.cuda.is_available() else 1

    def _loader(self, indices: np.ndarray, train: bool, batch_size: int) -> DataLoader:
        ds = FrameDataset(self.cache.root, indices, JointTransform(train, self.augment),
                          self.target)
        workers = self._workers()
        pin = torch.cuda.is_available() if self.pin_memory == "auto" else bool(self.pin_memory)
        return DataLoader(ds, batch_size=batch_size, shuffle=train, drop_last=False,
                          num_workers=workers, pin_memory=pin,
                          persistent_workers=workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_idx, True, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_idx, False, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    # -- statistics -------------------------------------------------------------------------
    def eval_targets(self, indices: np.ndarray, chunk: int = 256) -> torch.Tensor:
        """Centre-crop targets (N,1,55,74) of frames `indices`, as the validation loader gives."""
        src_hw = self.cache.depth.shape[1:]
        crop = ((src_hw[1] - INPUT_SIZE[1]) / 2, (src_hw[0] - INPUT_SIZE[0]) / 2)
        grid = _grid(OUTPUT_SIZE, src_hw, crop, 1.0, 0.0, False)
        # A map of its own, dropped on return: pages touched here leave this process with it.
        arr = np.load(self.cache.root / f"{TARGETS[self.target]}.npy", mmap_mode="r")
        out = []
        for start in range(0, len(indices), chunk):
            d = torch.from_numpy(np.stack([arr[i] for i in indices[start:start + chunk]]))
            out.append(F.grid_sample(d[:, None], grid.expand(len(d), -1, -1, -1),
                                     mode="nearest", align_corners=False))
        t = torch.cat(out)
        return torch.where(torch.isfinite(t) & (t > 0), t, torch.zeros_like(t))

    def depth_statistics(self) -> dict[str, torch.Tensor]:
        """Per-pixel mean depth and mean log depth (1,55,74) over the training frames' valid
        pixels: the paper's "Mean" baseline and the coarse head's starting point."""
        if self._stats is None:
            t = self.eval_targets(self.train_idx)
            valid = t > 0
            n = valid.sum(0).clamp_min(1)
            mean = torch.where(valid, t, 0).sum(0) / n
            mean_log = torch.where(valid, torch.log(t.clamp_min(1e-6)), 0).sum(0) / n
            empty = valid.sum(0) == 0  # a pixel never valid in training: use the global mean
            mean[empty] = t[valid].mean()
            mean_log[empty] = torch.log(t[valid]).mean()
            self._stats = {"mean_depth": mean, "mean_log_depth": mean_log}
        return self._stats
