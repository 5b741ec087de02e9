"""Preprocessed frame cache at the network's input scale (320x240).

The official files hold 640x480 frames (2.8 GB for NYU V2) that every epoch would decompress and
downsample again. The cache does it once: RGB uint8 (N,240,320,3), filled and raw depth float32
(N,240,320) in metres with 0 = invalid, as .npy files that DataLoader workers memory-map (the OS
page cache is shared between them, so RAM holds one copy at most). It is written into a temporary
folder and renamed into place, and its name carries a key of the source file's identity and the
preprocessing settings, so a changed file or setting builds a new cache instead of reusing a
stale one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth_lightning.errors import DataError

log = logging.getLogger(__name__)

CACHE_VERSION = 1
CACHE_SIZE = (240, 320)  # (H, W): NYU's 640x480 downsampled by 2, as in Eigen et al.


def downsample_frame(frame: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """640x480 frame -> (image, depth, raw_depth) at 320x240 and the count of bad depth values.

    The image is averaged over 2x2 blocks (anti-aliasing); depths are subsampled instead, since
    averaging across an occlusion edge or a hole would invent depths that exist nowhere.
    NaN, inf and negative depths are counted and set to 0 (invalid).
    """
    img = frame["image"]
    h, w = img.shape[0] // 2 * 2, img.shape[1] // 2 * 2
    blocks = img[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).astype(np.uint16)
    image = ((blocks.sum(axis=(1, 3)) + 2) // 4).astype(np.uint8)
    out, bad = [], int(frame.get("bad_values", 0))
    for key in ("depth", "raw_depth"):
        d = np.asarray(frame[key], dtype=np.float32)[:h:2, :w:2]
        broken = ~np.isfinite(d) | (d < 0)
        bad += int(broken.sum())
        out.append(np.where(broken, np.float32(0), d).astype(np.float32))
    return image, out[0], out[1], bad


@dataclass
class FrameCache:
    """Memory-mapped frames of one source file at 320x240."""

    root: Path
    images: np.ndarray
    depth: np.ndarray
    raw_depth: np.ndarray
    scenes: list[str]
    meta: dict

    def __len__(self) -> int:
        return len(self.scenes)

    @classmethod
    def open(cls, root: str | Path) -> FrameCache:
        root = Path(root)
        meta = json.loads((root / "meta.json").read_text())
        arrays = {k: np.load(root / f"{k}.npy", mmap_mode="c") for k in ("images", "depth",
                                                                             "raw_depth")}
        return cls(root=root, scenes=meta.pop("scenes"), meta=meta, **arrays)


def cache_key(source_path: str | Path, extra: dict | None = None) -> str:
    """Key of a source file's identity (path, size, mtime) and the preprocessing settings."""
    st = Path(source_path).stat()
    ident = {
        "path": str(Path(source_path).resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "version": CACHE_VERSION,
        "size_hw": CACHE_SIZE,
        **(extra or {}),
    }
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def cache_dir_for(source_path: str | Path, cache_root: str | Path | None = None) -> Path:
    """Where the cache of `source_path` lives: next to the data, or under `cache_root` when the
    data's folder is not writable (a read-only dataset mount)."""
    src = Path(source_path)
    name = f"{src.stem}.cache-{cache_key(src)}"
    if cache_root is None or os.access(src.parent, os.W_OK):
        return src.parent / name
    return Path(cache_root) / name


_worker_source = None


def _init_worker(factory) -> None:  # pragma: no cover - runs in pool workers
    global _worker_source
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _worker_source = factory()


def _convert(index: int):  # pragma: no cover - runs in pool workers
    return index, downsample_frame(_worker_source[index])


def _frames(source: Sequence[dict], factory, workers: int) -> Iterator[tuple[int, tuple]]:
    if workers <= 1 or factory is None:
        for i in range(len(source)):
            yield i, downsample_frame(source[i])
        return
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(factory,)) as pool:
        yield from pool.imap_unordered(_convert, range(len(source)), chunksize=8)


def build_cache(
    source: Sequence[dict],
    dest: str | Path,
    scenes: Sequence[str],
    factory=None,
    workers: int = 1,
    progress: bool = True,
) -> FrameCache:
    """Preprocess every frame of `source` into `dest` (atomically) and open it.

    `factory` is a picklable callable returning a fresh source in a worker process (each worker
    opens the HDF5 file itself); without it frames are converted in this process.
    """
    dest = Path(dest)
    if (dest / "meta.json").is_file():
        return FrameCache.open(dest)
    n = len(source)
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise DataError(f"{dest.parent}: cannot write the frame cache ({e.strerror})") from None
    h, w = CACHE_SIZE
    shapes = {"images": ((n, h, w, 3), np.uint8), "depth": ((n, h, w), np.float32),
              "raw_depth": ((n, h, w), np.float32)}
    try:
        # Frames go to the .npy files with plain positioned writes, not through a memory map:
        # mapped pages would count in this process's resident memory and grow with the dataset.
        files, offsets = {}, {}
        bad_values, empty = 0, []
        from rich.progress import Progress

        with contextlib.ExitStack() as stack:
            for key, (shape, dtype) in shapes.items():
                mm = np.lib.format.open_memmap(tmp / f"{key}.npy", "w+", dtype, shape)
                offsets[key] = mm.offset
                del mm
                files[key] = stack.enter_context(open(tmp / f"{key}.npy", "r+b"))
            bar = stack.enter_context(Progress(disable=not progress, transient=True))
            task = bar.add_task(f"caching {n} frames at 320x240", total=n)
            for i, frame in _frames(source, factory, workers):
                for key, arr in zip(shapes, frame[:3]):
                    os.pwrite(files[key].fileno(), np.ascontiguousarray(arr).tobytes(),
                              offsets[key] + i * arr.nbytes)
                bad_values += frame[3]
                if not (frame[2] > 0).any():
                    empty.append(i)
                bar.advance(task)
        meta = {
            "version": CACHE_VERSION,
            "frames": n,
            "bad_depth_values": bad_values,
            "frames_without_valid_raw_depth": empty,
            "scenes": list(scenes),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        if bad_values or empty:
            log.warning(
                "%s: %d NaN/inf/negative depth values masked; %d frames without valid raw depth",
                dest.name, bad_values, len(empty),
            )
        try:
            tmp.rename(dest)
        except OSError:  # another process finished the same cache first: use theirs
            if not (dest / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return FrameCache.open(dest)
