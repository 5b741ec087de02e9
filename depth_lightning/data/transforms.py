"""Joint image / depth transforms: crop to the network input and the paper's augmentations.

A frame at 320x240 becomes an input image of 304x228 (uint8, kept small for the loader) and a
target depth of 74x55 in metres (0 = invalid). Scale, rotation, crop and flip are composed into
one affine map from output pixels to source pixels, so the image is resampled once (bilinear)
and the target once (nearest: no depth is invented across an edge); target pixels that the map
takes outside the frame come back as 0, i.e. invalid. Sparse depth (LiDAR) is resampled with
nearest neighbour at the input's size and then reduced by `sparse_resize`, which keeps every
measurement it can instead of the few that a nearest-neighbour target grid would hit. Sizes
come from the frame chain (`geometry`, NYU's by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from depth_lightning.geometry import NYU, FrameGeometry, sparse_resize


@dataclass
class Augment:
    """Augmentation settings (Eigen et al. 2014 section 3.3; the seed used flip and rotate).

    flip: horizontal flip with p = 0.5; rotate: max angle in degrees (0 = off);
    scale: (min, max) zoom s with depth divided by s, or None; color: (min, max) per-channel
    multiplier, or None.
    """

    flip: bool = False
    rotate: float = 0.0
    scale: tuple[float, float] | None = None
    color: tuple[float, float] | None = None


def sampling_grid(
    out_hw: tuple[int, int],
    src_hw: tuple[int, int],
    crop_xy: tuple[float, float],
    scale: float,
    angle_deg: float,
    flip: bool,
    crop_hw: tuple[int, int] = NYU.input,
) -> Tensor:
    """Sampling grid (1,h,w,2) for grid_sample(align_corners=False) mapping output pixels of a
    crop of `crop_hw` (resampled to `out_hw`) into the source frame of size `src_hw`."""
    h, w = out_hw
    H, W = src_hw
    ch, cw = crop_hw
    # Continuous coordinates of output pixel centres, in crop pixels.
    u = (torch.arange(w, dtype=torch.float64) + 0.5) * (cw / w)
    v = (torch.arange(h, dtype=torch.float64) + 0.5) * (ch / h)
    if flip:
        u = cw - u
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    # Into the scaled frame, then undo the rotation about its centre, then undo the scale.
    x = crop_xy[0] + uu - W * scale / 2
    y = crop_xy[1] + vv - H * scale / 2
    a = math.radians(angle_deg)
    xr = math.cos(a) * x + math.sin(a) * y
    yr = -math.sin(a) * x + math.cos(a) * y
    xs = (xr + W * scale / 2) / scale
    ys = (yr + H * scale / 2) / scale
    grid = torch.stack([2 * xs / W - 1, 2 * ys / H - 1], dim=-1)
    return grid.unsqueeze(0).float()


class JointTransform:
    """Frame (image uint8 HxWx3, depth float32 HxW metres) -> (image (3,228,304) uint8,
    depth (1,55,74) float32 with 0 = invalid, for NYU's chain); random when `train`, centre
    crop otherwise. `sparse`: the depth is sparse (see the module's docstring)."""

    def __init__(self, train: bool, augment: Augment | None = None,
                 geometry: FrameGeometry = NYU, sparse: bool = False) -> None:
        self.train = train
        self.augment = augment or Augment()
        self.geometry = geometry
        self.sparse = sparse

    def params(self, src_hw: tuple[int, int], generator: torch.Generator | None = None) -> dict:
        """Draw one set of random parameters from `generator` (the training sampler gives each
        frame of each epoch its own, so the draw depends on neither worker nor resume)."""
        H, W = src_hw
        ch, cw = self.geometry.input
        aug = self.augment
        if not self.train:
            # whole pixels, as geometry.crop_offset: the centre crop copies pixels exactly
            return {"scale": 1.0, "angle": 0.0, "flip": False,
                    "crop": ((W - cw) // 2, (H - ch) // 2), "color": None}
        r = torch.rand(6, generator=generator).tolist()
        s = 1.0 if aug.scale is None else aug.scale[0] + r[0] * (aug.scale[1] - aug.scale[0])
        angle = (2 * r[1] - 1) * aug.rotate if aug.rotate else 0.0
        # Integer crop offsets, so an unaugmented training crop copies pixels exactly.
        crop = (math.floor(r[2] * (W * s - cw + 1)), math.floor(r[3] * (H * s - ch + 1)))
        flip = aug.flip and r[4] < 0.5
        color = None
        if aug.color is not None:
            lo, hi = aug.color
            color = (lo + torch.rand(3, generator=generator) * (hi - lo)).tolist()
        return {"scale": s, "angle": angle, "flip": flip, "crop": crop, "color": color}

    def __call__(self, image: np.ndarray, depth: np.ndarray,
                 generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        src_hw = depth.shape[:2]
        p = self.params(src_hw, generator)
        img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        dep = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None, None]
        identity = p["scale"] == 1.0 and p["angle"] == 0.0 and float(p["crop"][0]).is_integer() \
            and float(p["crop"][1]).is_integer()
        size, out_size = self.geometry.input, self.geometry.output
        if identity:
            x0, y0 = int(p["crop"][0]), int(p["crop"][1])
            out = img[:, y0:y0 + size[0], x0:x0 + size[1]]
            if p["flip"]:
                out = out.flip(-1)
        else:
            g = sampling_grid(size, src_hw, p["crop"], p["scale"], p["angle"], p["flip"], size)
            out = F.grid_sample(img[None].float(), g, mode="bilinear", padding_mode="zeros",
                                align_corners=False)[0]
        if p["color"] is not None:
            out = out.float() * torch.tensor(p["color"]).view(3, 1, 1)
        if out.dtype != torch.uint8:
            out = out.round().clamp(0, 255).to(torch.uint8)
        g = sampling_grid(size if self.sparse else out_size, src_hw, p["crop"], p["scale"],
                          p["angle"], p["flip"], size)
        target = F.grid_sample(dep, g, mode="nearest", padding_mode="zeros",
                               align_corners=False)[0]
        target = torch.nan_to_num(target, nan=0.0, posinf=0.0, neginf=0.0).clamp_min(0)
        if self.sparse:
            target = sparse_resize(target, out_size)
        return out.contiguous(), target / p["scale"]
