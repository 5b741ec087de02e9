"""Make3D (Saxena et al. 2009) as a data source: `data=make3d data.root=DIR`.

Photos `img-NAME.jpg` (1704x2272, portrait) and laser maps `depth_sph_corr-NAME.mat` (variable
`Position3DGrid`, 55x305x4, depth in metres in the fourth channel) anywhere under `root`; the
400 training and 134 test frames are told apart by their folders (`Test134*` = test), as the
dataset ships them (Train400Img, Train400Depth, Test134, Test134Depth). Each frame is brought to
the standard protocol's 345x460 (photo by area, laser map by nearest neighbour, which copies
measurements and invents none); the map's rows and columns are swapped when its orientation
disagrees with the photo's (the files hold it as MATLAB wrote it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from depth_lightning.errors import DataError
from depth_lightning.geometry import MAKE3D, resize_image, resize_nearest

log = logging.getLogger(__name__)

MAKE3D_VERSION = 1
DEPTH_PREFIX, IMAGE_PREFIX = "depth_sph_corr-", "img-"


def read_laser(path: Path) -> np.ndarray:
    """The depth channel (metres) of a `depth_sph_corr-*.mat` file; DataError when it is not
    one."""
    import scipy.io

    try:
        grid = scipy.io.loadmat(path)["Position3DGrid"]
    except KeyError:
        raise DataError(f"{path}: no Position3DGrid variable (a Make3D laser map has one)") \
            from None
    except Exception as e:  # scipy raises several types for files that are not MATLAB's
        raise DataError(f"{path}: not a readable MATLAB file ({' '.join(str(e).split())})") \
            from None
    if grid.ndim != 3 or grid.shape[2] < 4:
        raise DataError(f"{path}: Position3DGrid is {grid.shape}, expected H x W x 4")
    return np.asarray(grid[..., 3], dtype=np.float32)


def _pairs(root: Path) -> list[tuple[Path, Path]]:
    depths = {p.name[len(DEPTH_PREFIX):-4]: p for p in root.rglob(f"{DEPTH_PREFIX}*.mat")}
    pairs = []
    for img in sorted(root.rglob(f"{IMAGE_PREFIX}*.jpg")):
        depth = depths.get(img.stem[len(IMAGE_PREFIX):])
        if depth is not None:
            pairs.append((img, depth))
    return pairs


class Make3D(Sequence):
    """Make3D frames at 345x460 with their laser depth (see the module docstring).

    Item `i`: `image` uint8 (460,345,3), `depth` and `raw_depth` float32 (460,345) metres,
    `scene` (the frame's name: Make3D frames are separate scenes), `name`, `index`.
    """

    def __init__(self, root: str | os.PathLike[str] | None) -> None:
        if root is None:
            raise DataError("data.root: Make3D needs the folder of its images and laser maps")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"data.root: {self.root} does not exist or is not a folder")
        self.pairs = _pairs(self.root)
        if not self.pairs:
            raise DataError(f"data.root: no Make3D pairs (img-NAME.jpg with "
                            f"depth_sph_corr-NAME.mat) under {self.root}")

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        from PIL import Image

        img, mat = self.pairs[int(index)]
        try:
            with Image.open(img) as im:
                photo = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except OSError as e:
            raise DataError(f"{img}: cannot read it ({' '.join(str(e).split())})") from None
        depth = read_laser(mat)
        if (depth.shape[0] > depth.shape[1]) != (photo.shape[0] > photo.shape[1]):
            depth = np.ascontiguousarray(depth.T)
        size = MAKE3D.frame
        depth = resize_nearest(np.where(np.isfinite(depth) & (depth > 0), depth, 0), size)
        name = img.stem[len(IMAGE_PREFIX):]
        return {"image": resize_image(photo, size), "depth": depth.astype(np.float32),
                "raw_depth": depth.astype(np.float32), "scene": name, "name": name,
                "index": int(index), "bad_values": 0}

    def official_split(self) -> tuple[np.ndarray, np.ndarray]:
        """The 400 / 134 split of the release: frames under a `Test134*` folder are test."""
        test = np.array([any(part.startswith("Test134") for part in img.parts)
                         for img, _ in self.pairs])
        if not test.any() or test.all():
            raise DataError(f"data.split.kind=official: {self.root} needs both the training "
                            "frames and the test frames (under Test134*) for the 400 / 134 "
                            "split")
        return np.flatnonzero(~test), np.flatnonzero(test)

    @property
    def name(self) -> str:
        return "make3d-" + self.root.resolve().name

    def fingerprint(self) -> dict[str, Any]:
        files = [(str(p), p.stat().st_size, p.stat().st_mtime_ns)
                 for pair in self.pairs for p in pair]
        return {"root": str(self.root.resolve()), "files": files,
                "make3d_version": MAKE3D_VERSION}

    def __repr__(self) -> str:
        return f"Make3D({str(self.root)!r}, frames={len(self)})"
