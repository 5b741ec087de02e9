"""Evaluation protocols: how a 55x74 prediction meets the ground truth it is scored against.

Pure torch. A :class:`EvalProtocol` fixes the ground truth, the resolution it is scored at, the
upsampling, the scored region and the depth caps. Three are configured:

* ``target`` (:data:`TRAINING_TARGET`): the 55x74 training target itself, as the validation
  loader gives it (centre crop, nearest-neighbour depth), caps 1e-3 / 10 m. Validation during
  training, the final metrics.json of a run and its depth panels use it.
* ``eigen2014`` (Eigen, Puhrsch & Fergus 2014, the ``eval`` group's default): the filled depth
  (``depths``) at 640x480, the prediction upsampled with nearest neighbour, scored on the
  region the network sees (rows 12:468, columns 16:624), no depth caps (only ``min_depth`` so
  that logs stay finite).
* ``bts`` (BTS / AdaBins / ZoeDepth): the raw Kinect depth (``rawDepths``) with holes masked,
  the "Eigen crop" rows 45:471, columns 41:601, depths capped to [1e-3, 10] m, the prediction
  upsampled bilinearly.
* ``kitti_garg`` and ``kitti_eigen`` (Garg et al. 2016; Eigen et al. 2014, as scored by
  monodepth2, BTS and AdaBins): the sparse LiDAR depth at each frame's own size, the prediction
  upsampled bilinearly and clamped to the caps [1e-3, 80] m, the Garg crop (rows 0.408-0.992,
  columns 0.036-0.964 of the frame) or the Eigen crop (rows 0.332-0.914, same columns).
  ``make3d_c1``: depths below 70 m (Saxena et al.; Liu et al.'s C1 error).

Any protocol can align each prediction to its ground truth before scoring (``align``):
``median`` multiplies it by median(gt) / median(pred) over the scored pixels, as relative-depth
(self-supervised) models are scored; ``lstsq`` fits a scale and a shift by least squares.

At 640x480 the prediction is brought onto the frame by
:func:`depth_lightning.geometry.upsample_to_frame`: exact interpolation inside the network's
region, **edge replication** outside it. That matters for ``bts`` only: the Eigen crop reaches
three rows below the network's region (rows 468:471), and those rows are scored with the
replicated bottom edge rather than dropped, so the whole Eigen crop is scored as in the papers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import NYU, UPSAMPLE_MODES, FrameGeometry, upsample_to_frame

TARGETS = {"depths": "depth", "rawDepths": "raw_depth"}  # config name -> frame key
RESOLUTIONS = ("frame", "output")
FIELDS = ("name", "target", "resolution", "upsample", "crop", "min_depth", "max_depth",
          "align", "clamp")
ALIGNS = ("none", "median", "lstsq")
# Crops given as fractions of the frame (top, bottom, left, right), as the KITTI papers define
# them; the pixel box is int(fraction x size), as their evaluation code computes it.
NAMED_CROPS = {"garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
               "kitti_eigen": (0.3324324, 0.91351351, 0.03594771, 0.96405229)}


def region_mask(frame_hw: tuple[int, int], region: Sequence[int] | None,
                device: torch.device | str = "cpu") -> Tensor:
    """Boolean (H,W) mask of rows top:bottom, columns left:right (all True for None)."""
    mask = torch.zeros(frame_hw, dtype=torch.bool, device=device)
    if region is None:
        mask[:] = True
    else:
        top, bottom, left, right = region
        mask[top:bottom, left:right] = True
    return mask


@dataclass(frozen=True)
class EvalProtocol:
    """One evaluation protocol (see the module docstring); build it with :meth:`from_config`.

    target: ``depths`` (filled) or ``rawDepths`` (holes = 0, masked); resolution: ``frame``
    (640x480: the prediction is upsampled) or ``output`` (55x74: the training target, scored as
    predicted); upsample: ``nearest`` or ``bilinear``; crop: ``network`` (the region the network
    sees), ``(top, bottom, left, right)`` of the 480x640 frame, or None (everything);
    min_depth / max_depth: the depth caps (max_depth None = no upper cap); align: ``none``,
    ``median`` or ``lstsq`` (per image, before scoring); clamp: predictions are clipped to the
    caps (the KITTI protocols).

    A crop may also be ``garg`` or ``kitti_eigen``, or four fractions of the frame's height and
    width; ``frame`` resolution is the chain's frame (640x480 for NYU) or, for sparse ground
    truth scored where it was measured, each frame's own size.
    """

    name: str
    target: str = "depths"
    resolution: str = "frame"
    upsample: str = "nearest"
    crop: str | tuple[int, int, int, int] | tuple[float, ...] | None = "network"
    min_depth: float = 1e-3
    max_depth: float | None = None
    align: str = "none"
    clamp: bool = False

    def __post_init__(self) -> None:
        def bad(setting: str, what: str) -> DepthLightningError:
            return DepthLightningError(f"eval.{setting}: {what}")

        if self.target not in TARGETS:
            raise bad("target", f"must be one of {tuple(TARGETS)}, got {self.target!r}")
        if self.resolution not in RESOLUTIONS:
            raise bad("resolution", f"must be one of {RESOLUTIONS}, got {self.resolution!r}")
        if self.upsample not in UPSAMPLE_MODES:
            raise bad("upsample", f"must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        if self.align not in ALIGNS:
            raise bad("align", f"must be one of {ALIGNS}, got {self.align!r}")
        crop = self.crop
        if isinstance(crop, str) and crop in NAMED_CROPS:
            crop = NAMED_CROPS[crop]
        if not (crop is None or crop == "network"):
            if isinstance(crop, str) or not hasattr(crop, "__len__") or len(crop) != 4:
                raise bad("crop", f"must be network, {', '.join(NAMED_CROPS)}, null or [top, "
                          f"bottom, left, right], got {crop!r}")
            box = _crop_box(crop)
            if box is None:
                raise bad("crop", f"{list(crop)}: give four pixel rows and columns, or four "
                          "fractions top < bottom, left < right between 0 and 1")
            object.__setattr__(self, "crop", box)  # pixel boxes are checked on each frame
        if not self.min_depth > 0 or (self.max_depth is not None
                                      and not self.max_depth > self.min_depth):
            raise bad("min_depth", f"need 0 < min_depth < max_depth, got {self.min_depth} and "
                      f"{self.max_depth}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> EvalProtocol:
        """Build from an ``eval`` config (a dict or DictConfig with the dataclass's fields)."""
        cfg = dict(cfg)
        unknown = sorted(set(cfg) - set(FIELDS))
        if unknown:
            raise DepthLightningError(f"eval: unknown setting(s) {unknown}; expected "
                                      f"{sorted(FIELDS)}")
        crop = cfg.get("crop", "network")
        if crop is not None and not isinstance(crop, str) and hasattr(crop, "__iter__"):
            crop = tuple(crop)
        try:
            caps = (float(cfg.get("min_depth", 1e-3)),
                    None if cfg.get("max_depth") is None else float(cfg["max_depth"]))
        except (TypeError, ValueError):
            raise DepthLightningError(f"eval.min_depth/max_depth: must be numbers, got "
                                      f"{cfg.get('min_depth')!r} and {cfg.get('max_depth')!r}"
                                      ) from None
        clamp = cfg.get("clamp", False)
        if not isinstance(clamp, bool):
            raise DepthLightningError(f"eval.clamp: must be true or false, got {clamp!r}")
        return cls(name=str(cfg.get("name", "custom")), target=cfg.get("target", "depths"),
                   resolution=cfg.get("resolution", "frame"),
                   upsample=cfg.get("upsample", "nearest"), crop=crop, min_depth=caps[0],
                   max_depth=caps[1], align=str(cfg.get("align", "none")), clamp=clamp)

    @property
    def frame_key(self) -> str:
        """The frame key of the ground truth: ``depth`` or ``raw_depth``."""
        return TARGETS[self.target]

    def size_for(self, geometry: FrameGeometry = NYU) -> tuple[int, int]:
        """(H, W) the ground truth is scored at, for frames of `geometry`'s chain."""
        return geometry.frame if self.resolution == "frame" else geometry.output

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) the ground truth is scored at, for NYU's chain."""
        return self.size_for(NYU)

    def region_for(self, frame_hw: tuple[int, int], geometry: FrameGeometry = NYU
                   ) -> tuple[int, int, int, int]:
        """The scored rows and columns (top, bottom, left, right) of a ground truth of
        `frame_hw`."""
        h, w = frame_hw
        crop = self.crop
        if crop == "network" and self.resolution == "frame":
            return geometry.network_region((h, w))
        if crop is None or crop == "network":  # the output-size target is the network's
            return (0, h, 0, w)
        if all(isinstance(c, int) for c in crop):
            return self._region_inside(crop, (h, w))
        top, bottom, left, right = crop
        return (int(top * h), int(bottom * h), int(left * w), int(right * w))

    @property
    def region(self) -> tuple[int, int, int, int]:
        """The scored rows and columns at :attr:`size` (NYU's chain)."""
        return self.region_for(self.size)

    def _region_inside(self, box: Sequence[int], frame_hw: tuple[int, int]
                       ) -> tuple[int, int, int, int]:
        top, bottom, left, right = box
        h, w = frame_hw
        if not (0 <= top < bottom <= h and 0 <= left < right <= w):
            raise DepthLightningError(f"eval.crop: {list(box)} is not inside a {h}x{w} frame")
        return top, bottom, left, right

    def resample(self, depth: Tensor, frame_hw: tuple[int, int] | None = None,
                 geometry: FrameGeometry = NYU) -> Tensor:
        """Predicted depth (B,1,h,w) in metres at the chain's output -> (B,H,W) at this
        protocol's resolution (a frame of `frame_hw`, default the chain's)."""
        if self.resolution == "output":
            return depth[:, 0] if depth.ndim == 4 else depth
        return upsample_to_frame(depth, frame_hw or geometry.frame, self.upsample, geometry)

    def valid_mask(self, target: Tensor, geometry: FrameGeometry = NYU) -> Tensor:
        """Pixels scored in a ground truth (B,H,W) or (B,1,H,W): inside the region, finite, and
        within (min_depth, max_depth), so Kinect holes and LiDAR gaps (0) are never scored."""
        hw = tuple(target.shape[-2:])
        if self.resolution == "output" and hw != geometry.output:
            h, w = geometry.output
            raise ValueError(f"protocol {self.name}: expected {h}x{w} ground truth, got "
                             f"{tuple(target.shape)}")
        valid = torch.isfinite(target) & (target > self.min_depth)
        if self.max_depth is not None:
            valid &= target < self.max_depth
        return valid & region_mask(hw, self.region_for(hw, geometry), target.device)

    def finish(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """A resampled prediction (B,H,W) as it is scored: aligned to `target` per image on the
        pixels of `mask` (:attr:`align`), then clamped to the caps (:attr:`clamp`; always after
        a least-squares shift, which can reach 0 or below)."""
        if self.align != "none":
            pred = self.aligned(pred, target.reshape(pred.shape), mask.reshape(pred.shape))
        if self.clamp or self.align == "lstsq":
            pred = pred.clamp(self.min_depth, self.max_depth)
        return pred

    def aligned(self, pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """`pred` (B,H,W) aligned to `target` per image on the pixels of `mask` (:attr:`align`);
        unchanged for ``none``."""
        if self.align == "none":
            return pred
        out = []
        for p, t, m in zip(pred, target, mask):
            pv, tv = p[m].double(), t[m].double()
            if pv.numel() == 0:
                out.append(p)
            elif self.align == "median":
                out.append(p * (tv.median() / pv.median().clamp_min(1e-12)).to(p.dtype))
            else:  # least squares scale and shift, min |s p + c - t|^2, in closed form (a
                # constant prediction has no scale: it gets the mean depth)
                var = pv.var(unbiased=False)
                s = ((pv - pv.mean()) * (tv - tv.mean())).mean() / var if var > 1e-12 \
                    else torch.zeros((), dtype=torch.float64)
                c = tv.mean() - s * pv.mean()
                out.append((p.double() * s + c).to(p.dtype))
        return torch.stack(out)

    def describe(self, geometry: FrameGeometry = NYU) -> str:
        """One line for tables and logs (pixel boxes at `geometry`'s frame size)."""
        caps = f"{self.min_depth:g}-{self.max_depth:g} m" if self.max_depth is not None else \
            f"> {self.min_depth:g} m, no upper cap"
        how = "scored as predicted" if self.resolution == "output" else \
            f"{self.upsample} upsampling"
        if self.crop is None or isinstance(self.crop, str) or \
                all(isinstance(c, int) for c in self.crop):
            h, w = self.size_for(geometry)
            top, bottom, left, right = self.region_for((h, w), geometry)
            where = f"at {w}x{h}, rows {top}:{bottom} x cols {left}:{right}"
        else:
            top, bottom, left, right = self.crop
            where = (f"at each frame's size, rows {top:.3f}-{bottom:.3f} x cols "
                     f"{left:.3f}-{right:.3f} of it")
        extra = (", predictions clamped to the caps" if self.clamp else "") + \
            (f", {self.align}-aligned per image" if self.align != "none" else "")
        return f"{self.name}: {self.target}, {how} {where}, depth {caps}{extra}"


def _crop_box(crop: Sequence) -> tuple | None:
    """Four pixel indices, or four fractions in [0, 1], each pair increasing; else None."""
    try:
        values = [float(c) for c in crop]
    except (TypeError, ValueError):
        return None
    top, bottom, left, right = values
    if not (top < bottom and left < right and min(values) >= 0):
        return None
    if all(v.is_integer() for v in values) and max(values) > 1:
        return tuple(int(v) for v in values)
    if max(values) <= 1:
        return tuple(values)
    return None


#: The 55x74 training target, as validation during training scores it.
TRAINING_TARGET = EvalProtocol(name="target", resolution="output", crop=None, min_depth=1e-3,
                           max_depth=10.0)
