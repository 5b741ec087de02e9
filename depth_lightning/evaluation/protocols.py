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
from depth_lightning.geometry import (
    FRAME_SIZE,
    NETWORK_REGION,
    OUTPUT_SIZE,
    UPSAMPLE_MODES,
    upsample_to_frame,
)

TARGETS = {"depths": "depth", "rawDepths": "raw_depth"}  # config name -> frame key
RESOLUTIONS = {"frame": FRAME_SIZE, "output": OUTPUT_SIZE}
FIELDS = ("name", "target", "resolution", "upsample", "crop", "min_depth", "max_depth")


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
    min_depth / max_depth: the depth caps (max_depth None = no upper cap).
    """

    name: str
    target: str = "depths"
    resolution: str = "frame"
    upsample: str = "nearest"
    crop: str | tuple[int, int, int, int] | None = "network"
    min_depth: float = 1e-3
    max_depth: float | None = None

    def __post_init__(self) -> None:
        def bad(setting: str, what: str) -> DepthLightningError:
            return DepthLightningError(f"eval.{setting}: {what}")

        if self.target not in TARGETS:
            raise bad("target", f"must be one of {tuple(TARGETS)}, got {self.target!r}")
        if self.resolution not in RESOLUTIONS:
            raise bad("resolution", f"must be one of {tuple(RESOLUTIONS)}, got "
                      f"{self.resolution!r}")
        if self.upsample not in UPSAMPLE_MODES:
            raise bad("upsample", f"must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        crop = self.crop
        if not (crop is None or crop == "network"):
            if isinstance(crop, str) or len(crop) != 4:
                raise bad("crop", f"must be network, null or [top, bottom, left, right], got "
                          f"{crop!r}")
            top, bottom, left, right = (int(c) for c in crop)
            h, w = RESOLUTIONS[self.resolution]
            if not (0 <= top < bottom <= h and 0 <= left < right <= w):
                raise bad("crop", f"{list(crop)} is not inside a {h}x{w} frame")
            object.__setattr__(self, "crop", (top, bottom, left, right))
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
        if crop is not None and not isinstance(crop, str):
            crop = tuple(crop)
        try:
            caps = (float(cfg.get("min_depth", 1e-3)),
                    None if cfg.get("max_depth") is None else float(cfg["max_depth"]))
        except (TypeError, ValueError):
            raise DepthLightningError(f"eval.min_depth/max_depth: must be numbers, got "
                                      f"{cfg.get('min_depth')!r} and {cfg.get('max_depth')!r}"
                                      ) from None
        return cls(name=str(cfg.get("name", "custom")), target=cfg.get("target", "depths"),
                   resolution=cfg.get("resolution", "frame"),
                   upsample=cfg.get("upsample", "nearest"), crop=crop, min_depth=caps[0],
                   max_depth=caps[1])

    @property
    def frame_key(self) -> str:
        """The frame key of the ground truth: ``depth`` or ``raw_depth``."""
        return TARGETS[self.target]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) the ground truth is scored at."""
        return RESOLUTIONS[self.resolution]

    @property
    def region(self) -> tuple[int, int, int, int]:
        """The scored rows and columns (top, bottom, left, right) at :attr:`size`."""
        if self.crop == "network" and self.resolution == "frame":
            return NETWORK_REGION
        if self.crop is None or self.crop == "network":  # the 55x74 target is the network's
            return (0, self.size[0], 0, self.size[1])
        return self.crop  # type: ignore[return-value]

    def resample(self, depth: Tensor) -> Tensor:
        """Predicted depth (B,1,55,74) in metres -> (B,H,W) at this protocol's resolution."""
        if self.resolution == "output":
            return depth[:, 0] if depth.ndim == 4 else depth
        return upsample_to_frame(depth, FRAME_SIZE, self.upsample)

    def valid_mask(self, target: Tensor) -> Tensor:
        """Pixels scored in a ground truth (B,H,W) or (B,1,H,W): inside the region, finite, and
        within (min_depth, max_depth), so Kinect holes (0) are never scored."""
        if tuple(target.shape[-2:]) != self.size:
            raise ValueError(f"protocol {self.name}: expected {self.size[0]}x{self.size[1]} "
                             f"ground truth, got {tuple(target.shape)}")
        valid = torch.isfinite(target) & (target > self.min_depth)
        if self.max_depth is not None:
            valid &= target < self.max_depth
        return valid & region_mask(self.size, self.region, target.device)

    def describe(self) -> str:
        """One line for tables and logs."""
        top, bottom, left, right = self.region
        h, w = self.size
        caps = f"{self.min_depth:g}-{self.max_depth:g} m" if self.max_depth is not None else \
            f"> {self.min_depth:g} m, no upper cap"
        how = "scored as predicted" if self.resolution == "output" else \
            f"{self.upsample} upsampling"
        return (f"{self.name}: {self.target}, {how} at {w}x{h}, rows {top}:{bottom} x cols "
                f"{left}:{right}, depth {caps}")


#: The 55x74 training target, as validation during training scores it.
TRAINING_TARGET = EvalProtocol(name="target", resolution="output", crop=None, min_depth=1e-3,
                           max_depth=10.0)
