"""KITTI's files: the raw-data layout, the depth benchmark's maps, calibration and split lists.

    <raw>/<day>/<day>_drive_<NNNN>_sync/image_0{2,3}/data/<frame>.png   colour frames
    <raw>/<day>/calib_cam_to_cam.txt                                    P_rect_02, P_rect_03
    <depth>/{train,val}/<drive>/proj_depth/{groundtruth,velodyne_raw}/image_0{2,3}/<frame>.png

Depth maps are uint16 PNGs, metres = value / 256, 0 = no measurement (Uhrig et al. 2017). Frames
without a depth map (the first and last five of a drive have no annotation) are not frames of
the source. Split lists use monodepth2's line format, `<day>/<drive> <frame> l|r`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from depth_lightning.errors import DataError

CAMERAS = {"image_02": "l", "image_03": "r"}
DEPTH_KINDS = ("auto", "groundtruth", "velodyne_raw")
DAY = re.compile(r"^\d{4}_\d{2}_\d{2}$")
EIGEN_TEST_LIST = Path(__file__).with_name("lists") / "kitti_eigen_test.txt"


@dataclass(frozen=True)
class KittiFrame:
    """One frame of one camera: its files and where its depth map came from."""

    day: str
    drive: str
    camera: str  # image_02 | image_03
    frame: str  # 10 digits
    rgb: Path
    depth: Path
    part: str  # the depth benchmark's train | val

    @property
    def key(self) -> str:
        """The frame's name in split lists: `<day>/<drive> <frame> l|r`."""
        return f"{self.day}/{self.drive} {self.frame} {CAMERAS[self.camera]}"


def read_calib(path: Path) -> dict[str, np.ndarray]:
    """A KITTI calibration file (`KEY: numbers` lines) as arrays; DataError when it is missing
    or holds no such line."""
    if not path.is_file():
        raise DataError(f"{path}: calibration file not found (KITTI's raw data has "
                        "calib_cam_to_cam.txt in each day's folder)")
    values: dict[str, np.ndarray] = {}
    for line in path.read_text(errors="replace").splitlines():
        key, _, rest = line.partition(":")
        try:
            values[key.strip()] = np.array([float(v) for v in rest.split()])
        except ValueError:
            continue  # calib_time and other text lines
    return values


def intrinsics_of(calib: dict[str, np.ndarray], camera: str, path: Path
                  ) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of `camera` (image_02 / image_03) from its rectified projection P_rect."""
    key = f"P_rect_{camera[-2:]}"
    p = calib.get(key)
    if p is None or p.size != 12:
        raise DataError(f"{path}: no {key} (12 numbers) for camera {camera}")
    return float(p[0]), float(p[5]), float(p[2]), float(p[6])


def raw_root(root: Path) -> Path:
    """The folder holding the day folders: `root` itself or `root/raw`."""
    for cand in (root, root / "raw"):
        if cand.is_dir() and any(DAY.match(p.name) for p in cand.iterdir() if p.is_dir()):
            return cand
    raise DataError(f"data.root: no KITTI raw data under {root} (expected <day>/<drive>/"
                    "image_02/data/*.png, e.g. 2011_09_26/2011_09_26_drive_0001_sync)")


def depth_roots(root: Path, depth_root: Path | None) -> list[Path]:
    """Folders with the depth benchmark's train/ and val/: `depth_root`, else `root` and its
    usual subfolders."""
    cands = [depth_root] if depth_root else [root, root / "depth", root / "data_depth_annotated",
                                             root / "data_depth_velodyne"]
    found = [c for c in cands if c and any((c / part).is_dir() for part in ("train", "val"))]
    if not found:
        where = depth_root or f"{root} (or its depth/, data_depth_annotated/)"
        raise DataError(f"data.depth_root: no depth benchmark maps under {where} (expected "
                        "train|val/<drive>/proj_depth/groundtruth|velodyne_raw/image_02/*.png)")
    return found


def _depth_index(roots: list[Path], kind: str) -> dict[tuple[str, str, str], tuple[Path, str]]:
    """(drive, camera, frame) -> (depth map, train|val); `groundtruth` before `velodyne_raw`
    for kind `auto`."""
    kinds = ("groundtruth", "velodyne_raw") if kind == "auto" else (kind,)
    index: dict[tuple[str, str, str], tuple[Path, str]] = {}
    for k in reversed(kinds):  # the preferred kind is written last
        for root in roots:
            for part in ("train", "val"):
                for png in sorted((root / part).glob(f"*/proj_depth/{k}/image_0[23]/*.png")):
                    drive, camera = png.parents[3].name, png.parent.name
                    index[(drive, camera, png.stem)] = (png, part)
    return index


def discover(root: Path, depth_root: Path | None, cameras: tuple[str, ...], kind: str
             ) -> tuple[list[KittiFrame], int]:
    """The frames with a depth map, sorted by day, drive, camera and frame; and the number of
    colour frames without one."""
    raw = raw_root(root)
    index = _depth_index(depth_roots(root, depth_root), kind)
    frames, without = [], 0
    for day in sorted(p for p in raw.iterdir() if p.is_dir() and DAY.match(p.name)):
        for drive in sorted(p for p in day.iterdir() if p.is_dir()):
            for camera in cameras:
                for rgb in sorted((drive / camera / "data").glob("*.png")):
                    hit = index.get((drive.name, camera, rgb.stem))
                    if hit is None:
                        without += 1
                        continue
                    frames.append(KittiFrame(day.name, drive.name, camera, rgb.stem, rgb,
                                             hit[0], hit[1]))
    return frames, without


def read_list(path: Path, setting: str) -> list[str]:
    """Frame keys of a split list (`<day>/<drive> <frame> l|r` lines; blank lines skipped)."""
    if not path.is_file():
        raise DataError(f"{setting}: {path} does not exist")
    keys = []
    for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in ("l", "r") or not parts[1].isdigit():
            raise DataError(f"{path}: line {n} is not '<day>/<drive> <frame> l|r': {line!r}")
        keys.append(f"{parts[0]} {int(parts[1]):010d} {parts[2]}")
    if not keys:
        raise DataError(f"{path}: the split list names no frames")
    return keys
