"""Users' own RGB-D frames in a folder: pairs of RGB images and 16-bit depth PNGs.

Layouts found under `root` (recursively, so any of them may sit in per-scene subfolders):

- DenseDepth `nyu2_test`:   `NAME_colors.png|jpg`  +  `NAME_depth.png` (same folder)
- BTS `sync` / test:        `rgb_NAME.jpg|png`     +  `sync_depth_NAME.png` (same folder, or
                            `../depth/` when the RGB images are in a folder named `rgb`)
- generic:                  `rgb/NAME.png|jpg`     +  `depth/NAME.png`

Depth is the PNG value divided by `depth_scale` (1000: millimetres, as in both DenseDepth's
nyu2_test and BTS; 0 = no reading). There is no in-painted depth in such folders, so items
carry the same map as `depth` and `raw_depth` (holes stay 0 and are masked either way).

Frames keep their own size: the data module brings any size to the network's input chain
(depth_lightning.geometry: a different aspect ratio is stretched, and a warning says so when
the folder is opened). Each frame's `scene` is its subfolder (the folder above `rgb/`
in the generic layout), or the frame's own name for a flat folder, so `data.split.kind=scene`
keeps per-scene subfolders apart and `all` (the default of `data=folder`) uses every frame for
training and validation.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from depth_lightning.errors import DataError
from depth_lightning.geometry import FRAME_SIZE

log = logging.getLogger(__name__)

HEIGHT, WIDTH = FRAME_SIZE
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
FOLDER_VERSION = 1
LAYOUTS = ("nyu2_test (NAME_colors.png + NAME_depth.png), BTS (rgb_NAME.jpg + "
           "sync_depth_NAME.png) or rgb/NAME.png + depth/NAME.png")


@dataclass(frozen=True)
class Pair:
    """One frame: RGB and depth files (relative to the root), its name and scene."""

    rgb: str
    depth: str
    name: str
    scene: str


def _depth_for(rgb: Path) -> tuple[list[Path], str, Path] | None:
    """(depth candidates, frame key, frame folder) of an RGB image, or None if it is not one."""
    stem, folder = rgb.stem, rgb.parent
    in_rgb_dir = folder.name == "rgb"
    home = folder.parent if in_rgb_dir else folder
    if stem.endswith("_colors"):
        key = stem[: -len("_colors")]
        return [folder / f"{key}_depth.png"], key, home
    if stem.startswith("rgb_"):
        key = stem[len("rgb_"):]
        cands = [folder / f"sync_depth_{key}.png"]
        if in_rgb_dir:
            cands += [folder.parent / "depth" / f"sync_depth_{key}.png",
                      folder.parent / "depth" / f"{stem}.png"]
        return cands, key, home
    if in_rgb_dir:
        return [folder.parent / "depth" / f"{stem}.png"], stem, home
    return None


def discover_pairs(root: str | Path) -> tuple[list[Pair], int]:
    """Sorted RGB-D pairs under `root`, and the number of RGB images without a depth map.
    Hidden folders and frame caches (`*.cache-*`) are skipped."""
    root = Path(root)
    found: list[Pair] = []
    unmatched = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and ".cache-" not in d)
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            if p.suffix.lower() not in IMAGE_EXTS or fn.startswith("."):
                continue
            hit = _depth_for(p)
            if hit is None:
                continue
            cands, key, home = hit
            depth = next((c for c in cands if c.is_file()), None)
            if depth is None:
                unmatched += 1
                continue
            rel_home = home.relative_to(root).as_posix() if home != root else ""
            name = f"{rel_home}/{key}" if rel_home else key
            found.append(Pair(rgb=p.relative_to(root).as_posix(),
                              depth=depth.relative_to(root).as_posix(), name=name,
                              scene=rel_home or key))
    found.sort(key=lambda q: q.name)
    return found, unmatched


class FolderRGBD(Sequence):
    """Frames of a folder of RGB images and depth PNGs, as NYULabeled items.

    Item `i`: `image` uint8 (H, W, 3) RGB, `depth` and `raw_depth` float32 (H, W) metres (PNG
    value / `depth_scale`, 0 = hole), `scene`, `index`, `name`, `bad_values` (0).
    Every file's header is checked when the folder is opened (unless `check=False`: then call
    `check_files` before reading), so a bad file is reported at once rather than in a worker.
    """

    def __init__(self, root: str | os.PathLike[str], depth_scale: float = 1000.0,
                 check: bool = True) -> None:
        if root is None:
            raise DataError("data.root: the folder source needs the folder of RGB-D images "
                            "(data.root=DIR)")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            what = "is not a folder" if self.root.exists() else "does not exist"
            raise DataError(f"data.root: {self.root} {what}")
        if not depth_scale or not np.isfinite(depth_scale) or depth_scale <= 0:
            raise DataError(f"data.depth_scale: must be a positive number, got {depth_scale}")
        self.depth_scale = float(depth_scale)
        self.pairs, unmatched = discover_pairs(self.root)
        if not self.pairs:
            raise DataError(f"data.root: no RGB-D pairs found under {self.root}; expected "
                            f"{LAYOUTS}")
        if unmatched:
            log.warning("%s: %d RGB images without a depth map skipped", self.root, unmatched)
        if check:
            self.check_files()

    def check_files(self) -> None:
        """Open every file's header: unreadable files, non-16-bit depth maps and RGB / depth
        size mismatches are one-line DataErrors."""
        from PIL import Image, UnidentifiedImageError

        resized = 0
        for pair in self.pairs:
            sizes = []
            for rel, kind in ((pair.rgb, "RGB image"), (pair.depth, "depth map")):
                path = self.root / rel
                try:
                    with Image.open(path) as im:
                        sizes.append(im.size)
                        mode = im.mode
                except (OSError, UnidentifiedImageError) as e:
                    raise DataError(f"{path}: cannot read the {kind} ({_one_line(e)})") from None
                if kind == "depth map" and mode == "L":
                    # 0..255 read as millimetres would be depths up to 25 cm: never real
                    raise DataError(f"{path}: depth map is an 8-bit PNG; depth needs a 16-bit "
                                    f"PNG (PNG value / data.depth_scale = metres, now "
                                    f"{self.depth_scale:g})")
                if kind == "depth map" and mode not in DEPTH_MODES:
                    raise DataError(f"{path}: depth map has mode {mode}, expected a "
                                    "single-channel 16-bit PNG")
            if sizes[0] != sizes[1]:
                raise DataError(f"{self.root / pair.rgb}: RGB is {sizes[0][0]}x{sizes[0][1]} "
                                f"but its depth map {pair.depth} is {sizes[1][0]}x{sizes[1][1]}")
            resized += sizes[0] != (WIDTH, HEIGHT)
        if resized:
            log.warning("%s: %d of %d frames are not 640x480; the network sees them resized to "
                        "320x240 (a 4:3 view, other aspect ratios stretched)", self.root,
                        resized, len(self.pairs))
        log.info("%s: %d RGB-D frames, depth = PNG / %g", self.root, len(self.pairs),
                 self.depth_scale)

    # -- Sequence --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("FolderRGBD does not support slicing; index one frame at a time")
        i = int(index)
        if i < 0:
            i += len(self.pairs)
        if not 0 <= i < len(self.pairs):
            raise IndexError(f"frame index {index} out of range for {len(self.pairs)} frames")
        from PIL import Image

        pair = self.pairs[i]
        path = self.root / pair.rgb
        try:
            with Image.open(path) as im:
                image = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
            path = self.root / pair.depth
            with Image.open(path) as im:
                raw = np.asarray(im)
        except OSError as e:
            raise DataError(f"{path}: cannot decode ({_one_line(e)}); the file is corrupt or "
                            "truncated") from None
        if raw.ndim != 2:
            raise DataError(f"{path}: depth map has shape {raw.shape}, expected one channel")
        if raw.shape != image.shape[:2]:
            raise DataError(f"{path}: depth map is {raw.shape[1]}x{raw.shape[0]} but its RGB "
                            f"image is {image.shape[1]}x{image.shape[0]}")
        depth = raw.astype(np.float32) / np.float32(self.depth_scale)
        depth[~(depth > 0)] = 0.0  # 32-bit PNGs may hold negative values
        return {"image": image, "depth": depth, "raw_depth": depth.copy(), "scene": pair.scene,
                "index": i, "name": pair.name, "bad_values": 0}

    @property
    def scenes(self) -> list[str]:
        return [p.scene for p in self.pairs]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.pairs]

    @property
    def name(self) -> str:
        """The folder's name: the name of its frame cache."""
        return self.root.resolve().name

    def fingerprint(self) -> dict[str, Any]:
        """The listing (names, sizes, mtimes of every file) and the settings, for the cache."""
        files = []
        for pair in self.pairs:
            for rel in (pair.rgb, pair.depth):
                st = (self.root / rel).stat()
                files.append((rel, st.st_size, st.st_mtime_ns))
        return {"root": str(self.root.resolve()), "files": files, "scale": self.depth_scale,
                "folder_version": FOLDER_VERSION}

    def __repr__(self) -> str:
        return f"FolderRGBD({str(self.root)!r}, depth_scale={self.depth_scale}, " \
               f"frames={len(self)})"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
