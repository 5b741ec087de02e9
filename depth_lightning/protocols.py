"""Evaluation protocols: how a 55x74 prediction is scored against a full-resolution frame.

Pure torch. A :class:`Protocol` comes from the ``eval`` config group (``eigen2014`` or ``bts``)
and fixes the ground truth, the upsampling, the scored region and the depth caps:

* ``eigen2014`` (Eigen, Puhrsch & Fergus 2014): the filled depth (``depths``), the prediction
  upsampled to 640x480 with nearest neighbour, scored on the region the network sees (the
  304x228 centre crop of the 320x240 input, i.e. rows 12:468, columns 16:624 at 640x480), no
  depth caps (only ``min_depth`` so that logs stay finite).
* ``bts`` (BTS / AdaBins / ZoeDepth): the raw Kinect depth (``rawDepths``) with holes masked,
  the "Eigen crop" rows 45:471, columns 41:601, depths capped to [1e-3, 10] m, the prediction
  upsampled bilinearly.

Geometry. The network sees the 640x480 frame downsampled by 2 (320x240) and centre-cropped to
304x228, so its 55x74 output covers the 608x456 region at offset (x 16, y 12) of the frame.
:func:`upsample_to_frame` samples the output at every pixel centre of a frame of any size, with
the sampling coordinate clamped to the output's border: inside the region this is exactly
``F.interpolate(..., size=(456, 608), align_corners=False)``; outside it, it is that region
padded by **edge replication**. The padding matters for ``bts`` only: the Eigen crop reaches
three rows below the network's region (rows 468:471), and those rows are scored with the
replicated bottom edge rather than dropped, so the whole Eigen crop is scored as in the papers.
The same mapping brings a prediction back onto a photo of any size in ``predict``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics import MetricCollection

from depth_lightning.errors import DepthLightningError
from depth_lightning.metrics import depth_metrics
from depth_lightning.nets import INPUT_SIZE, OUTPUT_SIZE

FRAME_SIZE = (480, 640)  # (H, W) of an NYU frame
INPUT_FRAME_SIZE = (240, 320)  # (H, W) the frame is downsampled to before cropping
# Centre crop of the network input within the 320x240 frame as (y, x): (6, 8).
CROP_OFFSET = ((INPUT_FRAME_SIZE[0] - INPUT_SIZE[0]) // 2,
               (INPUT_FRAME_SIZE[1] - INPUT_SIZE[1]) // 2)
# The region the network sees at 640x480 as (top, bottom, left, right): rows 12:468, cols 16:624.
NETWORK_REGION = (2 * CROP_OFFSET[0], 2 * (CROP_OFFSET[0] + INPUT_SIZE[0]),
                  2 * CROP_OFFSET[1], 2 * (CROP_OFFSET[1] + INPUT_SIZE[1]))
EIGEN_CROP = (45, 471, 41, 601)  # (top, bottom, left, right) of the 480x640 frame
TARGETS = {"depths": "depth", "rawDepths": "raw_depth"}  # config name -> NYULabeled frame key
MODES = ("nearest", "bilinear")


def crop_input(image: Tensor) -> Tensor:
    """Centre crop (..., 240, 320) -> (..., 228, 304): what the network sees of a frame."""
    if tuple(image.shape[-2:]) != INPUT_FRAME_SIZE:
        raise ValueError(f"expected a 240x320 frame, got {tuple(image.shape[-2:])}")
    y, x = CROP_OFFSET
    return image[..., y:y + INPUT_SIZE[0], x:x + INPUT_SIZE[1]]


def _frame_grid(frame_hw: tuple[int, int], device: torch.device) -> Tensor:
    """grid_sample grid (1,H,W,2) placing every pixel centre of a frame of size `frame_hw` in the
    normalised coordinates of the network's output (which spans the centre crop)."""
    h, w = frame_hw
    # Pixel centre -> position in the 320x240 frame -> position in the 304x228 crop -> [-1, 1].
    u = (torch.arange(w, dtype=torch.float64) + 0.5) * (INPUT_FRAME_SIZE[1] / w) - CROP_OFFSET[1]
    v = (torch.arange(h, dtype=torch.float64) + 0.5) * (INPUT_FRAME_SIZE[0] / h) - CROP_OFFSET[0]
    gx = 2 * u / INPUT_SIZE[1] - 1
    gy = 2 * v / INPUT_SIZE[0] - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)
    return grid.unsqueeze(0).to(device=device, dtype=torch.float32)


def upsample_to_frame(pred: Tensor, frame_hw: tuple[int, int] = FRAME_SIZE,
                      mode: str = "nearest") -> Tensor:
    """Bring network outputs (B,1,55,74) or (B,55,74) onto a full frame (B,H,W).

    Each frame pixel takes the output value at its centre (``nearest``) or the bilinear blend of
    the four nearest output pixels (``bilinear``); pixels outside the region the network saw
    take the nearest border value (edge replication). Depths are resampled as given: pass
    metres to upsample depth (as the protocols do), log depth to upsample log depth.
    """
    if mode not in MODES:
        raise ValueError(f"upsampling mode must be one of {MODES}, got {mode!r}")
    x = pred if pred.ndim == 4 else pred.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] != 1 or tuple(x.shape[-2:]) != OUTPUT_SIZE:
        raise ValueError(f"expected predictions (B,1,55,74), got {tuple(pred.shape)}")
    grid = _frame_grid(tuple(frame_hw), x.device).expand(x.shape[0], -1, -1, -1)
    out = F.grid_sample(x.float(), grid, mode=mode, padding_mode="border", align_corners=False)
    return out[:, 0]


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
class Protocol:
    """One evaluation protocol (see the module docstring); build it with :meth:`from_config`.

    target: ``depths`` (filled) or ``rawDepths`` (holes = 0, masked); upsample: ``nearest`` or
    ``bilinear``; crop: ``network`` (the region the network sees), ``(top, bottom, left,
    right)`` rows and columns of the 480x640 frame, or None (the whole frame); min_depth /
    max_depth: the depth caps (max_depth None = no upper cap).
    """

    name: str
    target: str = "depths"
    upsample: str = "nearest"
    crop: str | tuple[int, int, int, int] | None = "network"
    min_depth: float = 1e-3
    max_depth: float | None = None

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise DepthLightningError(f"eval.target: must be one of {tuple(TARGETS)}, got "
                                      f"{self.target!r}")
        if self.upsample not in MODES:
            raise DepthLightningError(f"eval.upsample: must be one of {MODES}, got "
                                      f"{self.upsample!r}")
        crop = self.crop
        if not (crop is None or crop == "network"):
            if isinstance(crop, str) or len(crop) != 4:
                raise DepthLightningError("eval.crop: must be network, null or [top, bottom, "
                                          f"left, right], got {crop!r}")
            top, bottom, left, right = (int(c) for c in crop)
            if not (0 <= top < bottom <= FRAME_SIZE[0] and 0 <= left < right <= FRAME_SIZE[1]):
                raise DepthLightningError(f"eval.crop: {list(crop)} is not inside a 480x640 "
                                          "frame")
            object.__setattr__(self, "crop", (top, bottom, left, right))
        if not self.min_depth > 0 or (self.max_depth is not None
                                      and not self.max_depth > self.min_depth):
            raise DepthLightningError(f"eval: need 0 < min_depth < max_depth, got "
                                      f"{self.min_depth} and {self.max_depth}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Protocol:
        """Build from an ``eval`` config (a dict or DictConfig with the dataclass's fields)."""
        known = {"name", "target", "upsample", "crop", "min_depth", "max_depth"}
        cfg = dict(cfg)
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise DepthLightningError(f"eval: unknown setting(s) {unknown}; expected "
                                      f"{sorted(known)}")
        crop = cfg.get("crop", "network")
        if crop is not None and not isinstance(crop, str):
            crop = tuple(crop)
        max_depth = cfg.get("max_depth")
        return cls(name=str(cfg.get("name", "custom")), target=cfg.get("target", "depths"),
                   upsample=cfg.get("upsample", "nearest"), crop=crop,
                   min_depth=float(cfg.get("min_depth", 1e-3)),
                   max_depth=None if max_depth is None else float(max_depth))

    @property
    def frame_key(self) -> str:
        """The NYULabeled frame key of the ground truth: ``depth`` or ``raw_depth``."""
        return TARGETS[self.target]

    @property
    def region(self) -> tuple[int, int, int, int]:
        """The scored rows and columns (top, bottom, left, right) of the 480x640 frame."""
        if self.crop == "network":
            return NETWORK_REGION
        if self.crop is None:
            return (0, FRAME_SIZE[0], 0, FRAME_SIZE[1])
        return self.crop  # type: ignore[return-value]

    def upsample_depth(self, depth: Tensor) -> Tensor:
        """Predicted depth (B,1,55,74) in metres -> (B,480,640) with this protocol's mode."""
        return upsample_to_frame(depth, FRAME_SIZE, self.upsample)

    def valid_mask(self, target: Tensor) -> Tensor:
        """Pixels scored in ground truth (B,480,640): inside the region, finite, and within
        (min_depth, max_depth), so Kinect holes (0) are never scored."""
        if tuple(target.shape[-2:]) != FRAME_SIZE:
            raise ValueError(f"expected 480x640 ground truth, got {tuple(target.shape)}")
        valid = torch.isfinite(target) & (target > self.min_depth)
        if self.max_depth is not None:
            valid &= target < self.max_depth
        return valid & region_mask(FRAME_SIZE, self.region, target.device)

    def metrics(self) -> MetricCollection:
        """The nine metrics with this protocol's depth caps."""
        return depth_metrics(min_depth=self.min_depth, max_depth=self.max_depth)

    def describe(self) -> str:
        """One line for tables and logs."""
        top, bottom, left, right = self.region
        caps = f"{self.min_depth:g}-{self.max_depth:g} m" if self.max_depth is not None else \
            f"> {self.min_depth:g} m, no upper cap"
        return (f"{self.name}: {self.target}, {self.upsample} upsampling to 640x480, rows "
                f"{top}:{bottom} x cols {left}:{right}, depth {caps}")
