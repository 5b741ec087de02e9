"""KITTI as a data source: `data=kitti data.root=DIR` (layout: depth_lightning.data.kitti_layout).

Each frame of each chosen camera that has a depth map is one item: the colour image, its LiDAR
depth in metres (PNG / 256, 0 = no measurement; `groundtruth` maps where present, else
`velodyne_raw`), the drive as its scene, and the camera's intrinsics from the day's
calibration. The depth is sparse (4-15 % of pixels), so the data module resamples it without
interpolating (`sparse_depth`). Splits: `eigen` (Eigen et al. 2014: the 697 test frames by name;
training on the drives none of them comes from, or a list of one's own), `benchmark` (the depth
benchmark's train / val, also `official`), `auto` (eigen where the test list's frames are
present, else a seeded random split of the frames, with a warning), and the generic kinds
(scene = drive).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from depth_lightning.data.kitti_layout import (
    CAMERAS,
    DEPTH_KINDS,
    EIGEN_TEST_LIST,
    discover,
    intrinsics_of,
    read_calib,
    read_list,
)
from depth_lightning.errors import DataError

log = logging.getLogger(__name__)

KITTI_VERSION = 1


class KITTI(Sequence):
    """KITTI frames with sparse LiDAR depth, as frame dicts.

    Item `i`: `image` uint8 (H,W,3), `depth` and `raw_depth` float32 (H,W) metres (0 = none),
    `scene` (the drive), `name` (`<day>/<drive> <frame> l|r`), `intrinsics` (fx, fy, cx, cy),
    `index`, `bad_values` (0). Every file's header and every calibration file is checked when
    the source is opened, so a bad file is reported at once.

    Args:
        root: the raw data (day folders), with the depth benchmark's train/ and val/ in it, in
            `root/depth`, or in `depth_root`.
        cameras: image_02 (left), image_03 (right) or both.
        depth: groundtruth | velodyne_raw | auto (groundtruth where present).
        test_file: a test list of one's own for the `eigen` split (default: the 697 frames of
            Eigen's test list).
        train_file: a training list of one's own for the `eigen` split (default: every frame
            of the drives the test list does not come from).
    """

    sparse_depth = True

    def __init__(self, root: str | os.PathLike[str] | None, depth_root: str | None = None,
                 cameras: Sequence[str] = ("image_02", "image_03"), depth: str = "auto",
                 test_file: str | None = None, train_file: str | None = None) -> None:
        if root is None:
            raise DataError("data.root: KITTI needs the folder of its raw data (data.root=DIR)")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"data.root: {self.root} does not exist or is not a folder")
        cameras = tuple([cameras] if isinstance(cameras, str) else cameras)
        if not cameras or any(c not in CAMERAS for c in cameras):
            raise DataError(f"data.cameras: must be a list of {tuple(CAMERAS)}, got {cameras}")
        if depth not in DEPTH_KINDS:
            raise DataError(f"data.depth: must be one of {DEPTH_KINDS}, got {depth!r}")
        self.depth_kind, self.cameras = depth, cameras
        self.test_file, self.train_file = test_file, train_file
        self.frames, without = discover(self.root, Path(depth_root) if depth_root else None,
                                        cameras, depth)
        if not self.frames:
            raise DataError(f"data.root: no KITTI frame under {self.root} has a depth map")
        if without:
            log.info("%s: %d colour frames without a depth map skipped (KITTI leaves the first "
                     "and last frames of a drive unannotated)", self.root, without)
        self.intrinsics = self._calibration()
        self.check_files()

    def _calibration(self) -> dict[tuple[str, str], tuple[float, float, float, float]]:
        out = {}
        for day in sorted({f.day for f in self.frames}):
            path = self.frames[0].rgb.parents[4] / day / "calib_cam_to_cam.txt"
            calib = read_calib(path)
            for camera in self.cameras:
                out[(day, camera)] = intrinsics_of(calib, camera, path)
        return out

    def check_files(self) -> None:
        """Open every file's header: an unreadable file, a depth map that is not a 16-bit PNG,
        or one of another size than its colour frame is a one-line DataError."""
        from PIL import Image, UnidentifiedImageError

        for f in self.frames:
            sizes = []
            for path in (f.rgb, f.depth):
                try:
                    with Image.open(path) as im:
                        sizes.append(im.size)
                        mode = im.mode
                except (OSError, UnidentifiedImageError) as e:
                    raise DataError(f"{path}: cannot read it ({' '.join(str(e).split())})") \
                        from None
            if mode not in ("I;16", "I;16B", "I;16L", "I"):
                raise DataError(f"{f.depth}: depth map has mode {mode}; KITTI depth maps are "
                                "16-bit PNGs (metres x 256)")
            if sizes[0] != sizes[1]:
                raise DataError(f"{f.depth}: depth map is {sizes[1][0]}x{sizes[1][1]} but its "
                                f"colour frame {f.rgb.name} is {sizes[0][0]}x{sizes[0][1]}")

    # -- Sequence ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        from PIL import Image

        i = int(index)
        if not -len(self) <= i < len(self):
            raise IndexError(f"frame index {index} out of range for {len(self)} frames")
        f = self.frames[i]
        try:
            with Image.open(f.rgb) as im:
                image = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
            with Image.open(f.depth) as im:
                raw = np.asarray(im)
        except OSError as e:
            raise DataError(f"{f.rgb.parent}: cannot decode frame {f.frame} "
                            f"({' '.join(str(e).split())})") from None
        depth = raw.astype(np.float32) / np.float32(256.0)
        return {"image": image, "depth": depth, "raw_depth": depth.copy(), "scene": f.drive,
                "name": f.key, "intrinsics": self.intrinsics[(f.day, f.camera)],
                "index": i % len(self), "bad_values": 0}

    @property
    def scenes(self) -> list[str]:
        return [f.drive for f in self.frames]

    @property
    def names(self) -> list[str]:
        return [f.key for f in self.frames]

    @property
    def name(self) -> str:
        return "kitti-" + self.root.resolve().name

    def fingerprint(self) -> dict[str, Any]:
        """Every file's path, size and time, and the settings: the frame cache's key."""
        files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns)
                 for f in self.frames for p in (f.rgb, f.depth)]
        return {"root": str(self.root.resolve()), "files": files, "depth": self.depth_kind,
                "kitti_version": KITTI_VERSION}

    # -- splits -----------------------------------------------------------------------------
    @property
    def named_splits(self) -> dict[str, Any]:
        """Split kinds of this source (`data.split.kind`), each called with the split's
        settings: auto, eigen, benchmark (= official)."""
        return {"auto": self.auto_split, "eigen": lambda s: self.eigen_split(),
                "benchmark": lambda s: self.benchmark_split(),
                "official": lambda s: self.benchmark_split()}

    def auto_split(self, settings: dict) -> tuple[np.ndarray, np.ndarray]:
        """`eigen` when a frame of the test list is here, else a seeded random split
        (`val_fraction`, `seed`), said in a warning: of whole drives when there are several
        (no near-duplicate frames on both sides), else of time-steps (both cameras of a
        moment on one side; neighbouring moments still look alike)."""
        keys = set(self.names)
        if self.test_file or any(k in keys for k in read_list(EIGEN_TEST_LIST, "eigen")):
            return self.eigen_split()
        drives = sorted({f.drive for f in self.frames})
        groups = [f.drive for f in self.frames] if len(drives) > 1 else \
            [f"{f.drive}/{f.frame}" for f in self.frames]
        unique = sorted(set(groups))
        order = np.random.default_rng(int(settings.get("seed", 0))).permutation(len(unique))
        n_val = max(1, int(round(float(settings.get("val_fraction", 0.2)) * len(unique))))
        held = {unique[j] for j in order[:n_val]}
        is_val = np.array([g in held for g in groups])
        log.warning("data.split.kind=auto: none of Eigen's 697 test frames is under %s; "
                    "using a random split of its %s: %d / %d frames", self.root,
                    "drives" if len(drives) > 1 else "time-steps", int((~is_val).sum()),
                    int(is_val.sum()))
        return np.flatnonzero(~is_val), np.flatnonzero(is_val)

    def official_split(self) -> tuple[np.ndarray, np.ndarray]:
        return self.benchmark_split()

    def benchmark_split(self) -> tuple[np.ndarray, np.ndarray]:
        """The depth benchmark's own train / val (which folder each depth map came from)."""
        parts = np.array([f.part for f in self.frames])
        return np.flatnonzero(parts == "train"), np.flatnonzero(parts == "val")

    def eigen_split(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigen et al. 2014: the test list's frames; training on the drives none of them
        comes from (or on `train_file`'s frames). A list of one's own must name frames that
        are here; of the built-in list, the frames present are used (with a note)."""
        keys = {k: i for i, k in enumerate(self.names)}
        test_path = Path(self.test_file or EIGEN_TEST_LIST)
        listed = read_list(test_path, "data.split.test_file")  # read once: test and drives
        test = self._present(listed, test_path, "data.split.test_file", keys,
                             strict=self.test_file is not None)
        if self.train_file:
            path = Path(self.train_file)
            train = self._present(read_list(path, "data.split.train_file"), path,
                                  "data.split.train_file", keys, strict=True)
        else:
            drives = {k.split()[0].split("/")[-1] for k in listed}
            train = np.array([i for i, f in enumerate(self.frames) if f.drive not in drives],
                             np.int64)
        return train, test

    def _present(self, listed: list[str], path: Path, setting: str, keys: dict[str, int],
                 strict: bool) -> np.ndarray:
        """Indices of the `listed` frames that are here; missing ones refused when `strict`,
        else (unless all are missing) said in a warning."""
        missing = [k for k in listed if k not in keys]
        if missing and (strict or len(missing) == len(listed)):
            raise DataError(f"{setting}: {len(missing)} of the {len(listed)} frames of {path} "
                            f"are not under {self.root} (first: {missing[0]})")
        if missing:
            log.warning("%s: %d of its %d frames are not under %s; scoring the other %d", path,
                        len(missing), len(listed), self.root, len(listed) - len(missing))
        return np.array(sorted(keys[k] for k in listed if k in keys), np.int64)

    def __repr__(self) -> str:
        return (f"KITTI({str(self.root)!r}, cameras={list(self.cameras)}, "
                f"depth={self.depth_kind}, frames={len(self)})")
