"""Reader for the official NYU Depth labeled files (V1 and V2, MATLAB v7.3 = HDF5).

Layouts (h5py view, transposed relative to MATLAB):

- V2 ``nyu_depth_v2_labeled.mat``: ``images`` (N, 3, 640, 480) uint8, ``depths`` and
  ``rawDepths`` (N, 640, 480) float32 metres, ``scenes`` / ``sceneTypes`` (1, N) object
  references to uint16 char arrays.
- V1 ``nyu_depth_data_labeled.mat``: the same arrays without ``sceneTypes``; ``depths`` may be
  float metres or uint16 millimetres and ``rawDepths`` may hold raw Kinect disparity, so units are
  detected from dtype and range (and can be forced).

The file is opened in ``__init__`` only to validate it; every process opens its own handle on
first access, so the dataset can be pickled into forked or spawned DataLoader workers.
"""

from __future__ import annotations

import logging
import operator
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from depth_lightning.errors import DataError, DepthLightningError

log = logging.getLogger(__name__)

HEIGHT, WIDTH = 480, 640
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

# (path, key, units) already reported, so train/val/test views of one file log once.
_LOGGED_UNITS: set[tuple[str, str, str]] = set()


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _open_h5(path: Path) -> h5py.File:
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
    reason = _one_line(err)
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
            raise DataError(f"{name}: cannot decode '{key}' entry {i} ({_one_line(err)})") from err
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


def _sanitise(depth: np.ndarray) -> tuple[np.ndarray, int]:
    # 0 is the project's "no reading" value; NaN, inf and negative depths are never usable.
    bad = ~np.isfinite(depth) | (depth < 0)
    count = int(bad.sum())
    if count:
        depth = depth.copy()
        depth[bad] = 0.0
    return depth, count


class NYULabeled(Sequence):
    """Frames of an official NYU Depth labeled file, read one at a time.

    Item ``i`` is a dict: ``image`` uint8 (480, 640, 3) RGB, ``depth`` float32 (480, 640) metres
    (in-painted), ``raw_depth`` float32 (480, 640) metres with 0 where the Kinect had no reading
    (``depth`` when the file has no ``rawDepths``), ``scene`` str, ``index`` int.

    ``version`` is detected from the keys (``sceneTypes`` present -> "v2", else "v1") unless
    given. ``depth_units`` / ``raw_depth_units`` override the detected units ("m", "mm", and
    "kinect" for raw disparity).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        version: str | None = None,
        *,
        depth_units: str | None = None,
        raw_depth_units: str | None = None,
    ) -> None:
        self._path = Path(path).expanduser()
        if version is not None:
            version = str(version).lower()
            version = f"v{version}" if version in ("1", "2") else version
            if version not in VERSIONS:
                raise DepthLightningError(
                    f"unknown NYU version {version!r}: expected one of {', '.join(VERSIONS)}"
                )
        if depth_units is not None and depth_units not in DEPTH_UNITS:
            raise DepthLightningError(f"depth_units must be one of {DEPTH_UNITS}")
        if raw_depth_units is not None and raw_depth_units not in RAW_DEPTH_UNITS:
            raise DepthLightningError(f"raw_depth_units must be one of {RAW_DEPTH_UNITS}")

        self._handle: h5py.File | None = None
        self._pid: int | None = None
        with _open_h5(self._path) as f:
            self._n = self._validate(f)
            self._has_raw = "rawDepths" in f
            self._version = version or ("v2" if "sceneTypes" in f else "v1")
            self._scenes = self._read_scenes(f)
            try:
                self._depth_units = depth_units or read_depth_units(f, "depths")
                if not self._has_raw:
                    self._raw_units = self._depth_units
                else:
                    self._raw_units = raw_depth_units or read_depth_units(f, "rawDepths")
            except (OSError, RuntimeError, ValueError) as err:
                raise DataError(
                    f"{self._path}: cannot read depth frames ({_one_line(err)}); "
                    "the file may be corrupt"
                ) from err
        self._log_units("depths", self._depth_units, forced=depth_units is not None)
        if self._has_raw:
            self._log_units("rawDepths", self._raw_units, forced=raw_depth_units is not None)

    # -- validation ------------------------------------------------------------------------
    def _validate(self, f: h5py.File) -> int:
        for key in ("images", "depths"):
            if not isinstance(f.get(key), h5py.Dataset):
                found = ", ".join(sorted(k for k in f.keys() if not k.startswith("#"))) or "none"
                raise DataError(
                    f"{self._path}: missing dataset '{key}' (found: {found}); not an NYU "
                    "labeled file"
                )
        images = f["images"]
        n = images.shape[0] if images.ndim == 4 else -1
        expected = (max(n, 0), 3, WIDTH, HEIGHT)
        if images.ndim != 4 or images.shape[1:] != expected[1:]:
            raise DataError(self._shape_message("images", images.shape, "N, 3, 640, 480"))
        if images.dtype != np.uint8:
            raise DataError(
                f"{self._path}: dataset 'images' has dtype {images.dtype}, expected uint8"
            )
        if n == 0:
            raise DataError(f"{self._path}: dataset 'images' holds no frames")
        for key in ("depths", "rawDepths"):
            if key not in f:
                continue
            dset = f[key]
            if not isinstance(dset, h5py.Dataset) or dset.shape != (n, WIDTH, HEIGHT):
                shape = getattr(dset, "shape", "a group")
                raise DataError(self._shape_message(key, shape, f"{n}, 640, 480"))
            if dset.dtype.kind not in "fiu":
                raise DataError(
                    f"{self._path}: dataset '{key}' has dtype {dset.dtype}, "
                    "expected float or integer depth"
                )
        return n

    def _shape_message(self, key: str, shape: Any, expected: str) -> str:
        hint = ""
        if isinstance(shape, tuple) and len(shape) >= 2 and shape[-2:] == (HEIGHT, WIDTH):
            hint = " (looks transposed: the official h5py layout is width before height)"
        return (
            f"{self._path}: dataset '{key}' has shape {shape}, expected ({expected}) as in the "
            f"official NYU labeled file{hint}"
        )

    def _read_scenes(self, f: h5py.File) -> list[str]:
        if "scenes" not in f:
            log.warning("%s: no 'scenes' dataset; scene names will be empty", self._path)
            return [""] * self._n
        names = scene_names(f, "scenes")
        if len(names) != self._n:
            raise DataError(f"{self._path}: 'scenes' has {len(names)} entries for {self._n} frames")
        return names

    def _log_units(self, key: str, units: str, forced: bool) -> None:
        marker = (str(self._path.resolve()), key, units)
        if marker in _LOGGED_UNITS:
            return
        _LOGGED_UNITS.add(marker)
        how = "given" if forced else "detected"
        meaning = {
            "m": "metres",
            "mm": "millimetres (/1000)",
            "kinect": "raw Kinect disparity (351.3 / (1092.5 - raw), 2047 = hole)",
        }[units]
        log.info("%s: '%s' in %s (%s, NYU %s)", self._path, key, meaning, how, self._version)

    # -- per-process handle -----------------------------------------------------------------
    def _file(self) -> h5py.File:
        pid = os.getpid()
        if self._handle is not None and self._pid != pid:
            # Inherited through fork: HDF5 state is not fork-safe, so never read through it.
            # Closing here only affects this process's copy of the descriptor.
            try:
                self._handle.close()
            except Exception:  # a stale handle may fail to close; it is dropped either way
                pass
            self._handle = None
        if self._handle is None:
            self._handle = _open_h5(self._path)
            self._pid = pid
        return self._handle

    def close(self) -> None:
        """Close this process's handle; the next access reopens the file."""
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None
        self._pid = None

    def __enter__(self) -> NYULabeled:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None  # h5py handles cannot be pickled; workers open their own
        state["_pid"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # -- Sequence --------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("NYULabeled does not support slicing; index one frame at a time")
        i = operator.index(index)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"frame index {index} out of range for {self._n} frames")
        f = self._file()
        key = "images"
        try:
            # h5py stores MATLAB arrays transposed: (3, W, H) -> (H, W, 3).
            image = np.ascontiguousarray(f["images"][i].T)
            key = "depths"
            depth_raw = f["depths"][i].T
            key = "rawDepths"
            raw_raw = f["rawDepths"][i].T if self._has_raw else None
        except Exception as err:
            raise DataError(
                f"{self._path}: cannot read frame {i} of '{key}' ({_one_line(err)}); "
                "the file is corrupt, fetch it again"
            ) from err
        depth, bad = _sanitise(np.ascontiguousarray(to_metres(depth_raw, self._depth_units)))
        if raw_raw is None:
            raw = depth.copy()  # callers may mask one in place without touching the other
        else:
            raw, bad_raw = _sanitise(np.ascontiguousarray(to_metres(raw_raw, self._raw_units)))
            bad += bad_raw
        return {
            "image": image,
            "depth": depth,
            "raw_depth": raw,
            "scene": self._scenes[i],
            "index": i,
            "bad_values": bad,  # NaN, inf and negative depths set to 0 (counted for the log)
        }

    # -- properties ------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._version

    @property
    def path(self) -> Path:
        return self._path

    @property
    def scenes(self) -> list[str]:
        return list(self._scenes)

    @property
    def depth_units(self) -> str:
        return self._depth_units

    @property
    def raw_depth_units(self) -> str:
        return self._raw_units

    @property
    def has_raw_depth(self) -> bool:
        return self._has_raw

    def __repr__(self) -> str:
        return f"NYULabeled({str(self._path)!r}, version={self._version!r}, frames={self._n})"
