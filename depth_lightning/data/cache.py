"""Preprocessed frame cache at the network's input scale (320x240), for any data source.

Sources hold frames of any size (NYU's are 640x480: 2.8 GB for V2) that every epoch would
decode and downsample again. The cache does it once: RGB uint8 (N,240,320,3), filled and raw
depth float32 (N,240,320) in metres with 0 = invalid, as .npy files that DataLoader workers
memory-map (the OS page cache is shared between them, so RAM holds one copy at most), and each
frame's scene in meta.json. It is written into a temporary folder and renamed into place; its
name carries a key of the source's `fingerprint()` and the preprocessing settings, so a
changed file or setting builds a new cache instead of reusing a stale one. A source without a
fingerprint gets a cache of its own for the run (a temporary folder, removed at exit).
Another frame chain (KITTI's 621x188) caches at its own input size; sparse depth (LiDAR) is
reduced without dropping or inventing measurements (depth_lightning.geometry.sparse_resize).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import sys
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from depth_lightning.core.files import remove_leftovers, tmp_name, write_json
from depth_lightning.core.plugins import check_frame
from depth_lightning.errors import DataError
from depth_lightning.geometry import NYU, FrameGeometry, to_input_frame

log = logging.getLogger(__name__)

CACHE_VERSION = 2
ARRAYS = ("images", "depth", "raw_depth")


class CorruptCache(Exception):
    """A cache folder whose files are missing or do not match its meta.json."""


def input_frame(frame: dict, geometry: FrameGeometry = NYU, sparse: bool = False
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """A source's frame -> (image, depth, raw_depth) at the chain's input frame (320x240 for
    NYU) and the count of bad depths.

    The chain's first step (depth_lightning.geometry.to_input_frame); NaN, inf and negative
    depths are counted and set to 0 (invalid). A frame without `raw_depth` uses `depth`.
    """
    depth = np.asarray(frame["depth"], dtype=np.float32)
    raw = np.asarray(frame.get("raw_depth", depth), dtype=np.float32)
    # NaN would pass through a sparse reduction as "a measurement": mark it 0 first
    if sparse:
        depth, raw = (np.where(np.isfinite(d) & (d > 0), d, np.float32(0)) for d in (depth, raw))
    image, *depths = to_input_frame(np.asarray(frame["image"]), depth, raw, geometry=geometry,
                                    sparse=sparse)
    out, bad = [], int(frame.get("bad_values", 0))
    for d in depths:
        broken = ~np.isfinite(d) | (d < 0)
        bad += int(broken.sum())
        out.append(np.where(broken, np.float32(0), d).astype(np.float32))
    return image, out[0], out[1], bad


@dataclass
class FrameCache:
    """Memory-mapped frames of one source at its chain's input frame."""

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
        """Open a cache folder; CorruptCache when a file is missing, truncated or of the
        wrong shape."""
        root = Path(root)
        try:
            meta = json.loads((root / "meta.json").read_text())
            arrays = {k: np.load(root / f"{k}.npy", mmap_mode="c") for k in ARRAYS}
        except (OSError, ValueError, EOFError) as e:
            raise CorruptCache(f"{root}: {' '.join(str(e).split())}") from None
        n = meta.get("frames")
        if any(len(a) != n for a in arrays.values()) or len(meta.get("scenes", [])) != n:
            raise CorruptCache(f"{root}: arrays do not hold the {n} frames of meta.json")
        return cls(root=root, scenes=meta.pop("scenes"), meta=meta, **arrays)


def cache_dir_for(source: Sequence[dict], cache_root: str | Path,
                  geometry: FrameGeometry = NYU, sparse: bool = False) -> Path | None:
    """Where the cache of `source` lives under `cache_root`: `NAME.cache-KEY`, or None for a
    source without a `fingerprint()` (its cache is built for the run only)."""
    fingerprint = getattr(source, "fingerprint", None)
    if fingerprint is None:
        return None
    ident = {"source": fingerprint(), "kind": type(source).__qualname__,
             "version": CACHE_VERSION, "size_hw": geometry.input_frame}
    if sparse:  # (a dense source's key is unchanged: its caches stay valid)
        ident["sparse"] = True
    key = hashlib.sha1(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()
    name = getattr(source, "name", None) or type(source).__name__
    return Path(cache_root) / f"{name}.cache-{key[:12]}"


_worker_source = None
_worker_chain: tuple[FrameGeometry, bool] = (NYU, False)


def _scene(frame: dict, index: int) -> str:
    """A frame's scene; a source that names none makes each frame a scene of its own."""
    scene = frame.get("scene")
    return str(scene) if scene else f"frame_{index:06d}"


def _init_worker(source: Sequence[dict], chain: tuple[FrameGeometry, bool]
                 ) -> None:  # pragma: no cover - runs in pool workers
    global _worker_source, _worker_chain
    _worker_chain = chain
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch = sys.modules.get("torch")
    if torch is not None:  # a forked child must not reuse the parent's OpenMP pool (it hangs)
        torch.set_num_threads(1)
    _worker_source = source


def _convert(index: int) -> tuple[int, tuple, str]:  # pragma: no cover - runs in pool workers
    frame = _worker_source[index]
    check_frame(frame, "data.source", index)
    return index, input_frame(frame, *_worker_chain), _scene(frame, index)


def _frames(source: Sequence[dict], workers: int, chain: tuple[FrameGeometry, bool]
            ) -> Iterator[tuple[int, tuple, str]]:
    if workers <= 1 or mp.current_process().daemon:
        for i in range(len(source)):
            frame = source[i]
            check_frame(frame, "data.source", i)
            yield i, input_frame(frame, *chain), _scene(frame, i)
        return
    check_frame(source[0], "data.source", 0)
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(source, chain)) as pool:
        yield from pool.imap_unordered(_convert, range(len(source)), chunksize=8)


@contextlib.contextmanager
def _array_files(tmp: Path, n: int, size_hw: tuple[int, int]
                 ) -> Iterator[dict[str, tuple[Any, int]]]:
    """The cache's .npy files, each with its header written, open for positioned writes."""
    h, w = size_hw
    shapes = {"images": ((n, h, w, 3), np.uint8), "depth": ((n, h, w), np.float32),
              "raw_depth": ((n, h, w), np.float32)}
    with contextlib.ExitStack() as stack:
        files = {}
        for key, (shape, dtype) in shapes.items():
            mm = np.lib.format.open_memmap(tmp / f"{key}.npy", "w+", dtype, shape)
            offset = mm.offset
            del mm
            files[key] = (stack.enter_context(open(tmp / f"{key}.npy", "r+b")), offset)
        yield files


def _write_frames(source: Sequence[dict], tmp: Path, workers: int, progress: bool,
                  chain: tuple[FrameGeometry, bool]) -> dict:
    """Convert every frame into the .npy files in `tmp`; return the cache's meta."""
    from rich.progress import Progress

    n = len(source)
    scenes, bad_values, empty = [""] * n, 0, []
    # Frames go to the .npy files with plain positioned writes, not through a memory map:
    # mapped pages would count in this process's resident memory and grow with the dataset.
    h, w = chain[0].input_frame
    with _array_files(tmp, n, (h, w)) as files, \
            Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"caching {n} frames at {w}x{h}", total=n)
        for i, frame, scene in _frames(source, workers, chain):
            for key, arr in zip(ARRAYS, frame[:3]):
                f, offset = files[key]
                os.pwrite(f.fileno(), np.ascontiguousarray(arr).tobytes(), offset + i * arr.nbytes)
            bad_values += frame[3]
            scenes[i] = scene
            if not (frame[2] > 0).any():
                empty.append(i)
            bar.advance(task)
    return {"version": CACHE_VERSION, "frames": n, "bad_depth_values": bad_values,
            "frames_without_valid_raw_depth": empty, "scenes": scenes}


def build_cache(source: Sequence[dict], dest: str | Path, workers: int = 1,
                progress: bool = True, geometry: FrameGeometry = NYU,
                sparse: bool = False) -> FrameCache:
    """Preprocess every frame of `source` into `dest` (atomically) and open it.

    With `workers` > 1 frames are converted in a process pool; the source is handed to each
    worker (NYULabeled opens the HDF5 file itself in each process).
    """
    dest = Path(dest)
    if dest.exists():  # complete, or CorruptCache (a missing meta.json included)
        return FrameCache.open(dest)
    if len(source) == 0:
        raise DataError("data.source: the source holds no frames")
    remove_leftovers(dest.parent, f".{dest.name}")
    tmp = tmp_name(dest)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise DataError(f"{dest.parent}: cannot write the frame cache ({e.strerror})") from None
    try:
        meta = _write_frames(source, tmp, workers, progress, (geometry, sparse))
        write_json(tmp / "meta.json", meta)
        if meta["bad_depth_values"] or meta["frames_without_valid_raw_depth"]:
            log.warning("%s: %d NaN/inf/negative depth values masked; %d frames without valid "
                        "raw depth", dest.name, meta["bad_depth_values"],
                        len(meta["frames_without_valid_raw_depth"]))
        try:
            tmp.rename(dest)
        except OSError:  # another process finished the same cache first: use theirs
            if not (dest / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return FrameCache.open(dest)


def run_cache(source: Sequence[dict], cache_root: str | Path, workers: int = 1,
              geometry: FrameGeometry = NYU, sparse: bool = False) -> FrameCache:
    """The cache of a source without a fingerprint: built for this process, removed at exit.

    Each call builds a new one (nothing tells two such sources apart): a caller that needs the
    same frames again keeps the FrameCache it got.
    """
    name = f"{type(source).__name__}.run-cache"
    dest = tmp_name(Path(cache_root) / f"{name}-{uuid.uuid4().hex[:8]}")
    for pattern in (f".{name}-*", f"..{name}-*"):  # killed runs' caches and their builds
        remove_leftovers(dest.parent, pattern)
    atexit.register(shutil.rmtree, dest, True)
    Path(cache_root).mkdir(parents=True, exist_ok=True)
    return build_cache(source, dest, workers=workers, geometry=geometry, sparse=sparse)
