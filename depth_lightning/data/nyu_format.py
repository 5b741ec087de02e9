"""The file format of NYU Depth's labeled files (MATLAB v7.3 = HDF5): opening, MATLAB strings,
depth units.

Layouts (h5py view, transposed relative to MATLAB):

- V2 ``nyu_depth_v2_labeled.mat``: ``images`` (N, 3, 640, 480) uint8, ``depths`` and
  ``rawDepths`` (N, 640, 480) float32 metres, ``scenes`` / ``sceneTypes`` (1, N) object
  references to uint16 char arrays.
- V1 ``nyu_depth_data_labeled.mat``: the same arrays without ``sceneTypes``; ``depths`` may be
  float metres or uint16 millimetres and ``rawDepths`` may hold raw Kinect disparity, so units are
  detected from dtype and range (and can be forced).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from depth_lightning.errors import DataError
from depth_lightning.geometry import FRAME_SIZE

HEIGHT, WIDTH = FRAME_SIZE
VERSIONS = ("v1", "v2")
DEPTH_UNITS = ("m", "mm")
RAW_DEPTH_UNITS = ("m", "mm", "kinect")

# NYU toolbox camera_params.m: depth = 351.3 / (1092.5 - raw); 2047 marks "no reading".
KINECT_PARAM1 = 351.3
KINECT_PARAM2 = 1092.5
KINECT_INVALID = 2047
KINECT_MAX_DEPTH = 10.0  # metres: past the Kinect's range; marked invalid rather than clipped

# A float depth map whose maximum exceeds this cannot be metres indoors: it is millimetres.
_MM_THRESHOLD = 100.0

def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def open_h5(path: Path) -> h5py.File:
    """Open read-only, turning every h5py failure into a one-line DataError naming the file."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected an NYU labeled .mat file")
    try:
        # Default locking on purpose: HDF5 refuses a second open of the same file in one process
        # with different locking flags. On NFS/Lustre set HDF5_USE_FILE_LOCKING=FALSE.
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"{path}: {_describe_open_error(path, err)}") from err


def _describe_open_error(path: Path, err: OSError) -> str:
    reason = one_line(err)
    try:
        with open(path, "rb") as fh:
            head = fh.read(128)
    except OSError:
        head = b""
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return (
            "is a MATLAB v5 .mat file, not MATLAB v7.3 (HDF5); expected the official NYU labeled "
            "file (nyu_depth_v2_labeled.mat or nyu_depth_data_labeled.mat)"
        )
    if "truncated" in reason:
        return f"truncated HDF5 file ({reason}); the download is incomplete, fetch it again"
    if "signature not found" in reason:
        return (
            f"not an HDF5 file ({reason}); expected the official NYU labeled .mat "
            "(MATLAB v7.3 format)"
        )
    return f"cannot open as HDF5, corrupt or unreadable ({reason})"


def _decode_matlab_string(obj: h5py.Dataset) -> str:
    # MATLAB v7.3 writes '' as a uint64 dims array flagged MATLAB_empty.
    if np.asarray(obj.attrs.get("MATLAB_empty", 0)).any():
        return ""
    data = obj[()]
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    if isinstance(data, str):
        return data
    arr = np.asarray(data)
    if arr.dtype.kind in "SO":
        return "".join(x.decode() if isinstance(x, bytes) else str(x) for x in arr.ravel())
    if arr.dtype.kind == "U":
        return "".join(arr.ravel().tolist())
    # MATLAB chars are UTF-16 code units stored as uint16, one column per character.
    units = arr.ravel().astype("<u2")
    return units.tobytes().decode("utf-16-le", errors="replace")


def scene_names(h5file: h5py.File, key: str = "scenes") -> list[str]:
    """Decode a MATLAB cell array of strings (``scenes``, ``sceneTypes``, ``names``).

    The dataset holds object references (shape (1, N) or (N, 1)); each points at a char array.
    Raises ``DataError`` when the key is missing or a reference cannot be resolved.
    """
    name = getattr(h5file, "filename", "<hdf5>")
    if key not in h5file:
        raise DataError(f"{name}: missing dataset '{key}'")
    dset = h5file[key]
    if not isinstance(dset, h5py.Dataset) or dset.dtype != h5py.ref_dtype:
        raise DataError(f"{name}: '{key}' is not a MATLAB cell array of object references")
    out = []
    for i, ref in enumerate(np.asarray(dset[()]).ravel()):
        try:
            out.append(_decode_matlab_string(h5file[ref]))
        except (ValueError, KeyError, OSError, RuntimeError, TypeError) as err:
            raise DataError(f"{name}: cannot decode '{key}' entry {i} ({one_line(err)})") from err
    return out


def _finite_max(arr: np.ndarray) -> float | None:
    values = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
    return float(values.max()) if values.size else None


def read_depth_units(h5file: h5py.File, key: str = "depths") -> str:
    """Detect the units of ``depths`` or ``rawDepths`` from dtype and range of a few frames.

    Returns ``"m"``, ``"mm"`` (integer dtype, or float with max > 100) or, for ``rawDepths``
    only, ``"kinect"``: raw disparity, i.e. integers with max <= 2047, or whole-number floats
    whose max is exactly 2047 (the hole marker; a room does not top out at exactly 2047 mm).
    Reads at most 3 frames.
    """
    dset = h5file[key]
    n = dset.shape[0]
    peak: float | None = None
    integral = True
    for i in sorted({0, n // 2, n - 1}):
        frame = np.asarray(dset[i])
        m = _finite_max(frame)
        if m is not None:
            peak = m if peak is None else max(peak, m)
        if frame.dtype.kind == "f":
            finite = frame[np.isfinite(frame)]
            integral = integral and bool(np.all(finite == np.round(finite)))
    if dset.dtype.kind in "iu":
        if key == "rawDepths" and peak is not None and peak <= KINECT_INVALID:
            return "kinect"
        return "mm"
    if key == "rawDepths" and integral and peak == KINECT_INVALID:
        return "kinect"
    return "mm" if peak is not None and peak > _MM_THRESHOLD else "m"


def to_metres(arr: np.ndarray, units: str) -> np.ndarray:
    """Convert a depth map in ``units`` to float32 metres (raw Kinect: holes become 0)."""
    if units == "m":
        return arr.astype(np.float32, copy=False)
    if units == "mm":
        # Divide in float32 (correctly rounded) rather than multiply by an inexact 0.001.
        return arr.astype(np.float32) / np.float32(1000.0)
    if units == "kinect":
        raw = arr.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            depth = KINECT_PARAM1 / (KINECT_PARAM2 - raw)
        valid = (
            (raw >= 0)
            & (raw < KINECT_INVALID)
            & np.isfinite(depth)
            & (depth > 0)
            & (depth <= KINECT_MAX_DEPTH)
        )
        return np.where(valid, depth, 0.0).astype(np.float32)
    raise ValueError(f"unknown depth units {units!r}")


def sanitise(depth: np.ndarray) -> tuple[np.ndarray, int]:
    # 0 is the project's "no reading" value; NaN, inf and negative depths are never usable.
    bad = ~np.isfinite(depth) | (depth < 0)
    count = int(bad.sum())
    if count:
        depth = depth.copy()
        depth[bad] = 0.0
    return depth, count
