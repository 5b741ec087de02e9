"""Writing a SynthRooms dataset: one HDF5 file in the NYU Depth V2 labeled layout.

Frames are rendered and their chunks compressed in worker processes; the parent writes the
compressed chunks as they are, so it never becomes the bottleneck. The file appears under its
final name only when complete (`depth_lightning.core.files.atomic_path`).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import time
import types
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from depth_lightning.core.files import atomic_path, file_lock, remove_leftovers
from depth_lightning.geometry import FRAME_SIZE, NYU_INTRINSICS

from .features import DEFAULT_FEATURES, canonical, tag
from .frames import GENERATOR_VERSION, frame_plan, render_stored

_IMG_SHAPE = (3, FRAME_SIZE[1], FRAME_SIZE[0])  # stored transposed (MATLAB v7.3)
_DEPTH_SHAPE = (FRAME_SIZE[1], FRAME_SIZE[0])

# Worker processes: one BLAS/OpenMP thread each (more only contend on few cores), and glibc malloc
# told to keep freed memory, so per-frame temporaries don't page-fault afresh every frame.
_WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


# -- chunks (in the workers) ------------------------------------------------------------------
def _deflate(a: np.ndarray, level: int, shuffle: bool) -> bytes:
    """One chunk through HDF5's shuffle + deflate pipeline, done here instead of in the writer."""
    a = np.ascontiguousarray(a)
    buf = a.view(np.uint8).reshape(-1, a.dtype.itemsize).T.tobytes() if shuffle else a.tobytes()
    return zlib.compress(buf, level)


def _frame_task(args: tuple) -> tuple:
    i, seed, view, scene_index, level, features = args
    fr = render_stored(seed, view, scene_index, features)
    return (i, _deflate(fr["image"], level, False), _deflate(fr["depth"], level, True),
            _deflate(fr["raw_depth"], level, True), fr["scene"], fr["scene_type"])


# -- worker pool ------------------------------------------------------------------------------
def _worker_count(workers: int | None, n_frames: int) -> int:
    """Rendering processes: by default the usable CPU cores, never more than frames, and 1
    inside a daemon process (e.g. a DataLoader worker), which may not have children."""
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    workers = max(1, min(int(workers), n_frames))
    if mp.current_process().daemon:
        workers = 1
    return workers


@contextlib.contextmanager
def _clean_spawn_env() -> Iterator[None]:
    """Start spawn workers with one BLAS/OpenMP thread each and without re-importing the caller's
    __main__ (a training script would drag torch into every worker)."""
    saved_env = {k: os.environ.get(k) for k in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_tasks(tasks: list, workers: int) -> Iterator[tuple]:
    """Results of `_frame_task` for each task, in completion order."""
    if workers == 1:
        for t in tasks:
            yield _frame_task(t)
        return
    ctx = mp.get_context("spawn")  # no inherited torch/OpenMP state, env applies to numpy
    with _clean_spawn_env():
        pool = ctx.Pool(workers)
    with pool:
        yield from pool.imap_unordered(_frame_task, tasks, chunksize=2)


@contextlib.contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("SynthRooms"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn()) as bar:
        tid = bar.add_task("render", total=total)
        yield lambda: bar.advance(tid)


# -- the HDF5 file ----------------------------------------------------------------------------
def _write_refs(f, name: str, values: list[str]) -> None:
    """A (1, N) cell array of strings the way MATLAB v7.3 stores it: object references to uint16
    char arrays in ``#refs#`` (one referent per distinct string)."""
    import h5py

    refs_grp = f.require_group("#refs#")
    cache: dict[str, object] = {}
    refs = np.empty((1, len(values)), dtype=h5py.ref_dtype)
    for i, v in enumerate(values):
        if v not in cache:
            ds = refs_grp.create_dataset(f"{name}_{len(cache)}",
                                         data=np.array([[ord(c)] for c in v], np.uint16))
            ds.attrs["MATLAB_class"] = np.bytes_("char")
            ds.attrs["MATLAB_int_decode"] = np.int32(2)
            cache[v] = ds.ref
        refs[0, i] = cache[v]
    d = f.create_dataset(name, data=refs)
    d.attrs["MATLAB_class"] = np.bytes_("cell")


def _create_datasets(f, n_frames: int, seed: int, level: int, features: tuple) -> list:
    """The file attributes and the empty ``images``, ``depths``, ``rawDepths`` datasets, one
    chunk per frame."""
    f.attrs["generator"] = "depth_lightning.data.synthrooms"
    f.attrs["generator_version"] = GENERATOR_VERSION
    f.attrs["seed"] = seed
    f.attrs["n_frames"] = n_frames
    if features:  # v1 files (no features) keep exactly their v1 attributes
        f.attrs["features"] = ",".join(features)
    f.attrs["intrinsics_fx_fy_cx_cy"] = np.array(NYU_INTRINSICS)
    kw = dict(compression="gzip", compression_opts=level)
    images = f.create_dataset("images", (n_frames, *_IMG_SHAPE), np.uint8,
                              chunks=(1, *_IMG_SHAPE), **kw)
    return [images] + [f.create_dataset(k, (n_frames, *_DEPTH_SHAPE), np.float32,
                                        chunks=(1, *_DEPTH_SHAPE), shuffle=True, **kw)
                       for k in ("depths", "rawDepths")]


def _write_frames(dsets: list, tasks: list, workers: int,
                  progress: bool) -> tuple[list[str], list[str]]:
    """Render every task and write its compressed chunks as they arrive; returns the scene name
    and scene type of each frame."""
    scenes = [""] * len(tasks)
    types_ = [""] * len(tasks)
    with _progress(progress, len(tasks)) as advance:
        for i, *chunks, scene, stype in _run_tasks(tasks, workers):
            for ds, c in zip(dsets, chunks, strict=True):
                ds.id.write_direct_chunk((i,) + (0,) * (ds.ndim - 1), c)
            scenes[i], types_[i] = scene, stype
            advance()
    return scenes, types_


def generate(path: str | Path, n_frames: int = 2000, seed: int = 0, workers: int | None = None,
             progress: bool = True, level: int = 1,
             features: tuple[str, ...] | list[str] | None = DEFAULT_FEATURES) -> Path:
    """Render ``n_frames`` frames into one NYU-V2-layout HDF5 file at ``path``.

    Deterministic in (n_frames, seed, features): the worker count does not change a byte of the
    arrays. Frame i is ``render_frame(*frame_plan(n_frames, seed)[i], features)``: rooms get
    seeds derived from ``seed``, and 1-3 consecutive frames are views of the same room (one
    NYU-style scene). The file is written to a temporary name and renamed into place only when
    complete, so an interrupted run never leaves a file that looks finished.

    Args:
        path: output file (conventionally ``.mat``, as NYU's).
        n_frames: number of frames.
        seed: dataset seed.
        workers: rendering processes (default: usable CPU cores). 1 renders in this process.
        progress: show a progress bar and print the throughput at the end.
        level: gzip level of the per-frame chunks.
        features: generator features (`features.FEATURES`; None: all); () is the v1 generator.

    Returns:
        The path written.
    """
    import h5py

    path = Path(path)
    features = canonical(features, "features")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    workers = _worker_count(workers, n_frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    tasks = [(i, s, v, si, level, features)
             for i, (s, v, si) in enumerate(frame_plan(n_frames, seed))]
    t0 = time.perf_counter()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        dsets = _create_datasets(f, n_frames, seed, level, features)
        scenes, types_ = _write_frames(dsets, tasks, workers, progress)
        _write_refs(f, "scenes", scenes)
        _write_refs(f, "sceneTypes", types_)
    dt = time.perf_counter() - t0
    if progress:
        print(f"SynthRooms: {n_frames} frames in {dt:.1f} s ({n_frames / dt:.1f} frames/s, "
              f"{workers} workers), {path.stat().st_size / 1e6:.0f} MB -> {path}")
    return path


# -- the cache --------------------------------------------------------------------------------
def synthrooms_path(cache_dir: str | Path, n_frames: int = 2000, seed: int = 0,
                    features: tuple[str, ...] | list[str] | None = DEFAULT_FEATURES) -> Path:
    """Cache file name of a SynthRooms dataset: changes with the generator version and the
    feature set (none: the v1 name, synthrooms_v1_n{N}_s{S}.mat)."""
    ftag = tag(canonical(features, "features"))
    return Path(cache_dir) / f"synthrooms_v{GENERATOR_VERSION}{ftag}_n{n_frames}_s{seed}.mat"


def ensure_synthrooms(cache_dir: str | Path, n_frames: int = 2000, seed: int = 0,
                      features: tuple[str, ...] | list[str] | None = DEFAULT_FEATURES) -> Path:
    """Path of the SynthRooms file in ``cache_dir``, generating it only if it is missing.

    Two processes racing are harmless: the second waits on a lock file and then finds the file
    (and the file only ever appears complete, by atomic rename).
    """
    path = synthrooms_path(cache_dir, n_frames, seed, features)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(path.with_name(path.name + ".lock")):
        if not path.exists():
            remove_leftovers(path.parent, f".{path.name}")  # a killed generation's file
            generate(path, n_frames=n_frames, seed=seed, features=features)
    return path
