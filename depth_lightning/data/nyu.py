"""NYU Depth's official labeled files (V1 and V2) as a data source.

The file is opened in ``__init__`` only to validate it; every process opens its own handle on
first access, so the source can be pickled into forked or spawned worker processes. With
``download=True`` a missing file is fetched first (depth_lightning.data.download), and
:meth:`NYULabeled.official_split` reads V2's ``splits.mat`` (fetched too when missing).
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

from depth_lightning.data import download as dl
from depth_lightning.data.nyu_format import (
    DEPTH_UNITS,
    HEIGHT,
    RAW_DEPTH_UNITS,
    VERSIONS,
    WIDTH,
    one_line,
    open_h5,
    read_depth_units,
    sanitise,
    scene_names,
    to_metres,
)
from depth_lightning.data.splits import load_official_split
from depth_lightning.errors import DataError, DepthLightningError

log = logging.getLogger(__name__)

# (path, key, units) already reported, so train/val/test views of one file log once.
_LOGGED_UNITS: set[tuple[str, str, str]] = set()


def _check_version(version: str | None) -> str | None:
    if version is None:
        return None
    version = str(version).lower()
    version = f"v{version}" if version in ("1", "2") else version
    if version not in VERSIONS:
        raise DepthLightningError(f"unknown NYU version {version!r}: expected one of "
                                  f"{', '.join(VERSIONS)}")
    return version


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
        download: bool = False,
        urls: dict[str, Any] | None = None,
        split_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if path is None:
            raise DataError("data.path: needs the path of the NYU labeled .mat file")
        self._path = Path(path).expanduser()
        version = _check_version(version)
        if depth_units is not None and depth_units not in DEPTH_UNITS:
            raise DepthLightningError(f"depth_units must be one of {DEPTH_UNITS}")
        if raw_depth_units is not None and raw_depth_units not in RAW_DEPTH_UNITS:
            raise DepthLightningError(f"raw_depth_units must be one of {RAW_DEPTH_UNITS}")
        self._download = bool(download)
        self._urls = dl.check_urls(urls)
        self._split_file = Path(split_file).expanduser() if split_file else \
            self._path.parent / "splits.mat"
        self._handle: h5py.File | None = None
        self._pid: int | None = None
        self._fetch_or_explain(version)
        with open_h5(self._path) as f:
            self._n = self._validate(f)
            self._has_raw = "rawDepths" in f
            self._version = version or ("v2" if "sceneTypes" in f else "v1")
            self._scenes = self._read_scenes(f)
            self._read_units(f, depth_units, raw_depth_units)

    def _fetch_or_explain(self, version: str | None) -> None:
        """Download a missing file (`download=True`), or say what to do about it."""
        if self._path.is_dir():
            raise DataError(f"data.path: {self._path} is a folder, expected the NYU labeled "
                            ".mat file")
        name = f"nyu_{version or 'v2'}"
        if self._path.is_file():
            return
        if self._download:
            dl.fetch(name, self._path.parent, url=self._urls.get(name), fname=self._path.name)
            return
        raise DataError(f"data.path: {self._path} does not exist (set data.download=true to "
                        f"fetch {dl.REGISTRY[name].fname}, or download it yourself)")

    def _read_units(self, f: h5py.File, depth_units: str | None,
                    raw_depth_units: str | None) -> None:
        try:
            self._depth_units = depth_units or read_depth_units(f, "depths")
            if not self._has_raw:
                self._raw_units = self._depth_units
            else:
                self._raw_units = raw_depth_units or read_depth_units(f, "rawDepths")
        except (OSError, RuntimeError, ValueError) as err:
            raise DataError(
                f"{self._path}: cannot read depth frames ({one_line(err)}); "
                "the file may be corrupt"
            ) from err
        self._log_units("depths", self._depth_units, forced=depth_units is not None)
        if self._has_raw:
            self._log_units("rawDepths", self._raw_units, forced=raw_depth_units is not None)

    # -- the source contract beyond frames ---------------------------------------------------
    @property
    def name(self) -> str:
        """The file's stem: the name of its frame cache."""
        return self._path.stem

    def fingerprint(self) -> dict[str, Any]:
        """The file's identity (path, size, mtime) and the unit settings, for the cache key."""
        st = self._path.stat()
        return {"path": str(self._path.resolve()), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns, "units": [self._depth_units, self._raw_units]}

    def official_split(self) -> tuple[np.ndarray, np.ndarray]:
        """NYU V2's official 795 / 654 split from splits.mat (`data.split.file`, by default
        beside the labeled file; fetched first with `download=True`). V1 has none."""
        if self._version != "v2":
            raise DataError("data.split.kind=official: NYU V1 has no official depth split; use "
                            "data.split.kind=seed (the seed paper's 640 / 160) or scene")
        path = self._split_file
        if not path.is_file() and self._download:
            dl.fetch("splits", path.parent, url=self._urls.get("splits"), fname=path.name)
        return load_official_split(path, self._n)

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
            self._handle = open_h5(self._path)
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
                f"{self._path}: cannot read frame {i} of '{key}' ({one_line(err)}); "
                "the file is corrupt, fetch it again"
            ) from err
        depth, bad = sanitise(np.ascontiguousarray(to_metres(depth_raw, self._depth_units)))
        if raw_raw is None:
            raw = depth.copy()  # callers may mask one in place without touching the other
        else:
            raw, bad_raw = sanitise(np.ascontiguousarray(to_metres(raw_raw, self._raw_units)))
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
