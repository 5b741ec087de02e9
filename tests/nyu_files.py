"""Build small NYU Depth labeled files in the official HDF5 layout, for tests.

``write_nyu_v2`` / ``write_nyu_v1`` write what h5py sees in the real files: MATLAB arrays
transposed (``images`` (N, 3, 640, 480) uint8, depth maps (N, 640, 480)), cell arrays of strings
as (1, N) object references into ``#refs#`` holding uint16 char arrays shaped (len, 1), MATLAB_class
attributes and the 512-byte "MATLAB 7.3 MAT-file" user block in front of the HDF5 data.

``real_v1_frames`` / ``real_v2_raw_frames`` load the real NYU frames kept in ../shared/data
(never copied into the repository); ``require_shared_data`` skips a test when they are absent.
Import as ``from nyu_files import ...`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

HEIGHT, WIDTH = 480, 640
KINECT_PARAM1 = 351.3
KINECT_PARAM2 = 1092.5
KINECT_INVALID = 2047


# -- writing -------------------------------------------------------------------------------
def _matlab_class(obj: h5py.HLObject, name: str) -> None:
    obj.attrs["MATLAB_class"] = np.bytes_(name)


class _Refs:
    """Allocates MATLAB-style objects in ``#refs#`` and returns references to them."""

    def __init__(self, f: h5py.File) -> None:
        self.group = f.require_group("#refs#")
        self.count = 0

    def char(self, text: str) -> h5py.Reference:
        name = f"r{self.count}"
        self.count += 1
        if text == "":
            # MATLAB writes '' as its dims (uint64 [0, 0]) flagged MATLAB_empty.
            dset = self.group.create_dataset(name, data=np.zeros(2, np.uint64))
            dset.attrs["MATLAB_empty"] = np.uint8(1)
        else:
            units = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
            dset = self.group.create_dataset(name, data=units.reshape(-1, 1))
            dset.attrs["MATLAB_int_decode"] = np.int32(2)
        _matlab_class(dset, "char")
        return dset.ref


def _write_cell(f: h5py.File, refs: _Refs, key: str, strings: Sequence[str]) -> None:
    data = np.empty((1, len(strings)), dtype=h5py.ref_dtype)
    for i, text in enumerate(strings):
        data[0, i] = refs.char(text)
    dset = f.create_dataset(key, data=data)
    _matlab_class(dset, "cell")


def _check_frames(images: Sequence[np.ndarray], depths: Sequence[np.ndarray]) -> int:
    if len(images) != len(depths) or not images:
        raise ValueError(f"need as many depths as images (got {len(images)} / {len(depths)})")
    for img in images:
        if img.shape != (HEIGHT, WIDTH, 3) or img.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (480, 640, 3), got {img.dtype} {img.shape}")
    for d in depths:
        if d.shape != (HEIGHT, WIDTH):
            raise ValueError(f"depth maps must be (480, 640), got {d.shape}")
    return len(images)


def _write_array(
    f: h5py.File, key: str, stack: np.ndarray, matlab: str, compression: str | None
) -> None:
    # One chunk per frame when compressed, so a corrupt chunk hits exactly one frame.
    chunks = (1, *stack.shape[1:]) if compression else None
    dset = f.create_dataset(key, data=stack, chunks=chunks, compression=compression)
    _matlab_class(dset, matlab)


def _depth_stack(depths: Sequence[np.ndarray], dtype: str) -> tuple[np.ndarray, str]:
    first = np.asarray(depths[0])
    if first.dtype.kind in "iu":  # already integer (mm or raw Kinect): keep values as given
        return np.stack([np.asarray(d).T for d in depths]).astype(first.dtype), first.dtype.name
    if dtype == "uint16":
        mm = [np.round(np.asarray(d, np.float64) * 1000.0).clip(0, 65535).T for d in depths]
        return np.stack(mm).astype(np.uint16), "uint16"
    if dtype == "float32":
        return np.stack([np.asarray(d, np.float32).T for d in depths]), "single"
    raise ValueError(f"depth dtype must be 'float32' or 'uint16', got {dtype!r}")


def _finish_mat(path: Path) -> None:
    # MATLAB v7.3 files carry a text header in a 512-byte HDF5 user block.
    text = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by: nyu_files.py HDF5 schema 1.00 ."
    header = text.encode("ascii").ljust(116, b" ") + bytes(8) + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header)


def _write_common(
    path: str | Path,
    images: Sequence[np.ndarray],
    depths: Sequence[np.ndarray],
    raw_depths: Sequence[np.ndarray] | None,
    scenes: Sequence[str] | None,
    depth_dtype: str,
    compression: str | None,
    extra: dict[str, np.ndarray],
    cells: dict[str, Sequence[str]],
) -> Path:
    n = _check_frames(images, depths)
    if raw_depths is not None and len(raw_depths) != n:
        raise ValueError("need one raw depth map per image")
    scenes = list(scenes) if scenes is not None else [f"scene_{i:04d}" for i in range(n)]
    if len(scenes) != n:
        raise ValueError("need one scene name per image")
    path = Path(path)
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = _Refs(f)
        stack = np.stack([np.transpose(img, (2, 1, 0)) for img in images])
        _write_array(f, "images", stack, "uint8", compression)
        arr, matlab = _depth_stack(depths, depth_dtype)
        _write_array(f, "depths", arr, matlab, compression)
        if raw_depths is not None:
            arr, matlab = _depth_stack(raw_depths, depth_dtype)
            _write_array(f, "rawDepths", arr, matlab, compression)
        # Segmentation arrays are all zeros here: compress them so files stay small.
        f.create_dataset(
            "labels",
            data=np.zeros((n, WIDTH, HEIGHT), np.uint16),
            chunks=(1, WIDTH, HEIGHT),
            compression="gzip",
            compression_opts=1,
        )
        for key, value in extra.items():
            f.create_dataset(key, data=value)
        f.create_dataset("accelData", data=np.zeros((4, n), np.float32))
        _write_cell(f, refs, "scenes", scenes)
        for key, strings in cells.items():
            _write_cell(f, refs, key, strings)
    _finish_mat(path)
    return path


def write_nyu_v2(
    path: str | Path,
    images: Sequence[np.ndarray],
    depths: Sequence[np.ndarray],
    raw_depths: Sequence[np.ndarray] | None,
    scenes: Sequence[str] | None,
    scene_types: Sequence[str] | None = None,
    *,
    compression: str | None = None,
) -> Path:
    """Write an ``nyu_depth_v2_labeled.mat``-layout file.

    ``images``: uint8 (480, 640, 3) RGB; ``depths`` / ``raw_depths``: (480, 640) metres, stored
    float32 (``raw_depths=None`` leaves ``rawDepths`` out). ``scene_types`` defaults to each
    scene name without its ``_NNNN`` suffix, as in NYU. ``compression="gzip"`` stores one chunk
    per frame.
    """
    n = len(images)
    scenes = list(scenes) if scenes is not None else [f"scene_{i:04d}" for i in range(n)]
    if scene_types is None:
        scene_types = [s.rsplit("_", 1)[0] for s in scenes]
    extra = {"instances": np.zeros((n, WIDTH, HEIGHT), np.uint8)}
    cells = {"sceneTypes": list(scene_types), "names": ["wall", "floor"]}
    return _write_common(
        path, images, depths, raw_depths, scenes, "float32", compression, extra, cells
    )


def write_nyu_v1(
    path: str | Path,
    images: Sequence[np.ndarray],
    depths: Sequence[np.ndarray],
    raw_depths: Sequence[np.ndarray] | None = None,
    scenes: Sequence[str] | None = None,
    *,
    depth_dtype: str = "float32",
    compression: str | None = None,
) -> Path:
    """Write an ``nyu_depth_data_labeled.mat``-layout file (no ``sceneTypes``).

    Float ``depths`` (metres) are stored as float32 metres or, with ``depth_dtype="uint16"``,
    as uint16 millimetres; float ``raw_depths`` likewise. Integer ``raw_depths`` (for example
    raw Kinect disparity from ``kinect_raw_from_metres``) are stored unchanged.
    """
    # containers.Map is a MATLAB object: a placeholder with its class is enough for readers.
    extra = {"namesToIds": np.zeros((1, 6), np.uint32)}
    cells = {"names": ["wall", "floor"]}
    return _write_common(
        path, images, depths, raw_depths, scenes, depth_dtype, compression, extra, cells
    )


def kinect_raw_from_metres(depth: np.ndarray) -> np.ndarray:
    """Inverse of the NYU toolbox conversion: uint16 raw disparity, 2047 where depth <= 0."""
    d = np.asarray(depth, np.float64)
    with np.errstate(divide="ignore"):
        raw = np.round(KINECT_PARAM2 - KINECT_PARAM1 / np.where(d > 0, d, 1.0))
    return np.where(d > 0, raw, KINECT_INVALID).astype(np.uint16)


def kinect_metres(raw: np.ndarray) -> np.ndarray:
    """Reference conversion of raw Kinect values to metres (toolbox formula, holes as NaN)."""
    r = np.asarray(raw, np.float64)
    with np.errstate(divide="ignore"):
        d = KINECT_PARAM1 / (KINECT_PARAM2 - r)
    return np.where((r < KINECT_INVALID) & (d > 0), d, np.nan)


def fill_holes_nearest(depth: np.ndarray) -> np.ndarray:
    """Fill depth == 0 with the nearest valid pixel's value (a stand-in for NYU's in-painting)."""
    from scipy.ndimage import distance_transform_edt

    holes = ~(depth > 0)
    if not holes.any() or holes.all():
        return depth.copy()
    idx = distance_transform_edt(holes, return_distances=False, return_indices=True)
    return depth[tuple(idx)].astype(depth.dtype)


# -- real frames in ../shared/data ---------------------------------------------------------
def shared_data_dir() -> Path | None:
    """The shared real-data folder (/work/shared/data beside the checkout), or None."""
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


def require_shared_data() -> Path:
    """The shared data folder; skips the calling test when it is absent."""
    path = shared_data_dir()
    if path is None:
        import pytest

        pytest.skip(
            "real NYU sample frames not found: expected "
            f"{Path(__file__).resolve().parents[2] / 'shared' / 'data'}"
        )
    return path


def _load_pair(rgb_path: Path, depth_path: Path) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    with Image.open(rgb_path) as im:
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    with Image.open(depth_path) as im:
        mm = np.asarray(im).astype(np.uint16)
    if rgb.shape != (HEIGHT, WIDTH, 3) or mm.shape != (HEIGHT, WIDTH):
        raise ValueError(f"{rgb_path}: expected 640x480 frames, got {rgb.shape} / {mm.shape}")
    # Same float32 division as the reader's millimetre conversion.
    depth = mm.astype(np.float32) / np.float32(1000.0)
    rgb.setflags(write=False)
    depth.setflags(write=False)
    return rgb, depth


def _require_dir() -> Path:
    path = shared_data_dir()
    if path is None:
        raise FileNotFoundError("shared data folder ../shared/data not found")
    return path


@functools.lru_cache(maxsize=1)
def _v1() -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    root = _require_dir() / "nyu_v1_samples"
    out = []
    for rgb_path in sorted((root / "rgb").glob("*.png")):
        out.append((rgb_path.stem, *_load_pair(rgb_path, root / "depth" / rgb_path.name)))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _v2_raw() -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    root = _require_dir() / "nyu_v2_raw_samples"
    out = []
    for rgb_path in sorted((root / "rgb").glob("rgb_*.jpg")):
        number = rgb_path.stem.removeprefix("rgb_")
        depth_path = root / "depth" / f"sync_depth_{number}.png"
        out.append((number, *_load_pair(rgb_path, depth_path)))
    return tuple(out)


def real_v1_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """The 17 NYU V1 labeled frames: (rgb uint8 480x640x3, depth float32 metres, filled)."""
    return [(rgb.copy(), depth.copy()) for _, rgb, depth in _v1()]


def real_v1_names() -> list[str]:
    """Frame numbers of ``real_v1_frames`` (file stems such as ``00040``), same order."""
    return [name for name, _, _ in _v1()]


def real_v2_raw_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """The 3 NYU V2 raw frames: (rgb uint8 480x640x3, depth float32 metres, holes = 0)."""
    return [(rgb.copy(), depth.copy()) for _, rgb, depth in _v2_raw()]


def real_v2_raw_names() -> list[str]:
    """Frame numbers of ``real_v2_raw_frames`` (``00000``, ``00050``, ``00100``), same order."""
    return [name for name, _, _ in _v2_raw()]
