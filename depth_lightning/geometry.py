"""Frame geometry chains, the one place that defines a size.

Each data source names a chain (`data.geometry`): how a full frame reaches the network and
where the network's output lies in it. NYU's is Eigen et al. 2014's:

    NYU frame 640x480 --(2x2 box mean)--> 320x240 --(304x228 crop)--> network input
                                                                        --> output 74x55

The network's 55x74 output covers the 608x456 region at offset (x 16, y 12) of the 640x480
frame (the centre crop, scaled back up by 2). KITTI's follows the paper's KITTI network
(frames halved to 621x188, a 576x172 crop, output 142x27). Functions here move images, depth
maps and predictions between the levels of a chain; numpy for frames, torch for batches. Pure:
no Lightning, no files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: SynthRooms' render workers need none
    from torch import Tensor

Size = tuple[int, int]  # (H, W)


@dataclass(frozen=True)
class FrameGeometry:
    """A frame chain: full frame -> input frame (the cache's level) -> centre crop the network
    sees -> predicted map. All sizes are (H, W); `intrinsics` (fx, fy, cx, cy) at `frame` size
    are the camera assumed when a frame brings none (point clouds)."""

    name: str
    frame: Size
    input_frame: Size
    input: Size
    output: Size
    intrinsics: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        for key in ("frame", "input_frame", "input", "output"):
            size = tuple(int(v) for v in getattr(self, key))
            if len(size) != 2 or min(size) <= 0:
                raise ValueError(f"geometry {self.name}: {key} must be [height, width], got "
                                 f"{getattr(self, key)!r}")
            object.__setattr__(self, key, size)
        if self.intrinsics is not None and len(self.intrinsics) != 4:
            raise ValueError(f"geometry {self.name}: intrinsics must be [fx, fy, cx, cy], got "
                             f"{list(self.intrinsics)}")
        if self.input[0] > self.input_frame[0] or self.input[1] > self.input_frame[1]:
            raise ValueError(f"geometry {self.name}: the {self.input} input crop does not fit in "
                             f"the {self.input_frame} input frame")

    @property
    def crop_offset(self) -> Size:
        """(y, x) of the centre crop within the input frame."""
        return ((self.input_frame[0] - self.input[0]) // 2,
                (self.input_frame[1] - self.input[1]) // 2)

    def network_region(self, frame_hw: Size | None = None) -> tuple[int, int, int, int]:
        """(top, bottom, left, right) of a frame of `frame_hw` (default: the chain's frame)
        that the network sees, rounded to whole pixels."""
        h, w = frame_hw or self.frame
        (y, x), (ih, iw) = self.crop_offset, self.input
        sy, sx = h / self.input_frame[0], w / self.input_frame[1]
        return (round(y * sy), round((y + ih) * sy), round(x * sx), round((x + iw) * sx))

    def settings(self) -> dict[str, Any]:
        """Primitive settings that rebuild this chain (for checkpoints)."""
        return {"name": self.name, "frame": list(self.frame),
                "input_frame": list(self.input_frame), "input": list(self.input),
                "output": list(self.output),
                "intrinsics": None if self.intrinsics is None else list(self.intrinsics)}


# Kinect RGB intrinsics of NYU Depth V2 at 640x480 (fx, fy, cx, cy), in pixels.
NYU_INTRINSICS = (518.86, 519.47, 325.58, 253.74)
NYU = FrameGeometry("nyu", frame=(480, 640), input_frame=(240, 320), input=(228, 304),
                    output=(55, 74), intrinsics=NYU_INTRINSICS)
# Eigen et al. 2014's KITTI network: frames (1242x375 on most days) halved, a 576x172 crop,
# log depth at 142x27. Intrinsics: P_rect_02 of 2011_09_26 (each frame brings its own).
KITTI = FrameGeometry("kitti", frame=(375, 1242), input_frame=(188, 621), input=(172, 576),
                      output=(27, 142), intrinsics=(721.5377, 721.5377, 609.5593, 172.854))
# Make3D photos (1704x2272, portrait) at the 345x460 of the standard protocol, halved and
# cropped like NYU's: the network's arithmetic gives 41x55.
MAKE3D = FrameGeometry("make3d", frame=(460, 345), input_frame=(240, 180), input=(228, 172),
                       output=(55, 41))
GEOMETRIES = {g.name: g for g in (NYU, KITTI, MAKE3D)}


def geometry_of(value: str | Mapping | FrameGeometry | None,
                setting: str = "data.geometry") -> FrameGeometry:
    """A chain from its name (nyu | kitti | make3d), its settings (a mapping with frame,
    input_frame, input, output as [height, width]) or itself; None means NYU's."""
    from depth_lightning.errors import DepthLightningError

    if value is None:
        return NYU
    if isinstance(value, FrameGeometry):
        return value
    if isinstance(value, str):
        if value not in GEOMETRIES:
            raise DepthLightningError(f"{setting}: {value!r} is not one of {tuple(GEOMETRIES)} "
                                      "(or give frame, input_frame, input and output sizes)")
        return GEOMETRIES[value]
    try:
        fields = dict(value)
        intr = fields.pop("intrinsics", None)
        return FrameGeometry(name=str(fields.pop("name", "custom")),
                             intrinsics=None if intr is None else tuple(float(v) for v in intr),
                             **{k: tuple(fields.pop(k)) for k in ("frame", "input_frame",
                                                                   "input", "output")},
                             **fields)
    except (TypeError, ValueError, KeyError) as e:
        raise DepthLightningError(f"{setting}: not a frame chain ({e}); give a name "
                                  f"{tuple(GEOMETRIES)} or frame, input_frame, input and "
                                  "output as [height, width]") from None


# NYU's chain as constants, for code and tests written against it.
FRAME_SIZE = NYU.frame  # (H, W) of an NYU frame
INPUT_FRAME_SIZE = NYU.input_frame  # (H, W) the frame is downsampled to (the cache's size)
INPUT_SIZE = NYU.input  # (H, W) the networks see: a crop of INPUT_FRAME_SIZE
OUTPUT_SIZE = NYU.output  # (H, W) of the predicted log-depth map
CROP_OFFSET = NYU.crop_offset  # (y, x) = (6, 8)
# The region the network sees at 640x480 as (top, bottom, left, right): rows 12:468, cols 16:624.
NETWORK_REGION = NYU.network_region()
EIGEN_CROP = (45, 471, 41, 601)  # (top, bottom, left, right): the "Eigen crop" of BTS et al.
UPSAMPLE_MODES = ("nearest", "bilinear")


# -- frames (numpy) ---------------------------------------------------------------------------
def downsample_image(image: np.ndarray) -> np.ndarray:
    """uint8 (H,W,3) -> (H/2,W/2,3): the mean of each 2x2 block, rounded half up (anti-aliased,
    and exactly what `resize_image` gives for a 640x480 photo)."""
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    blocks = image[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).astype(np.uint16)
    return ((blocks.sum(axis=(1, 3)) + 2) // 4).astype(np.uint8)


def downsample_depth(depth: np.ndarray) -> np.ndarray:
    """(H,W) -> (H/2,W/2) by taking every second pixel: averaging across an occlusion edge or a
    hole would invent depths that exist nowhere."""
    h, w = depth.shape[0] // 2 * 2, depth.shape[1] // 2 * 2
    return np.ascontiguousarray(depth[:h:2, :w:2])


def resize_nearest(a: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D (or HxWxC) array: each output pixel centre takes the
    input pixel it falls in, so no depth is invented across an edge."""
    h, w = size_hw
    rows = np.minimum(((np.arange(h) + 0.5) * a.shape[0] / h).astype(np.int64), a.shape[0] - 1)
    cols = np.minimum(((np.arange(w) + 0.5) * a.shape[1] / w).astype(np.int64), a.shape[1] - 1)
    return a[np.ix_(rows, cols)]


def resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """uint8 RGB (H,W,3) of any size -> (h,w,3): area averaging when shrinking (for a 640x480
    image to 320x240 exactly `downsample_image`), antialiased bilinear otherwise; rounded half
    up. Another aspect ratio is squashed or stretched, not cropped."""
    import torch
    import torch.nn.functional as F

    h, w = size_hw
    x = torch.tensor(image).permute(2, 0, 1)[None].float()  # a copy: frames may be read-only
    if image.shape[0] >= h and image.shape[1] >= w:
        small = F.interpolate(x, size=(h, w), mode="area")
    else:
        small = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False,
                              antialias=True)
    return torch.floor(small[0] + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def sparse_resize(depth: Tensor, size_hw: tuple[int, int]) -> Tensor:
    """Depth (..., H, W) with 0 = no measurement -> (..., h, w) without inventing a depth.

    Each output pixel takes the measurement nearest its centre among those in its footprint
    (the source pixels that fall in it; ties: the first in row-major order), or 0 when the
    footprint holds none. Every output value is a measured value moved by less than one output
    pixel: what sparse ground truth (LiDAR: 4-15 % of pixels) needs, where nearest-neighbour
    subsampling would drop most measurements and any averaging would invent depths. Enlarging
    falls back to nearest neighbour (each value copied, none invented).
    """
    import torch

    h, w = size_hw
    H, W = depth.shape[-2:]
    lead = depth.shape[:-2]
    if h >= H and w >= W:
        return torch.from_numpy(resize_nearest(depth.reshape(-1, H, W).permute(1, 2, 0)
                                               .numpy(), size_hw)).permute(2, 0, 1) \
            .reshape(*lead, h, w)
    d = depth.reshape(-1, H * W).float()
    rows = torch.arange(H, dtype=torch.float64)
    cols = torch.arange(W, dtype=torch.float64)
    cell_r = torch.clamp((rows * h / H).floor().long(), max=h - 1)
    cell_c = torch.clamp((cols * w / W).floor().long(), max=w - 1)
    dr = (rows + 0.5) - (cell_r + 0.5) * H / h
    dc = (cols + 0.5) - (cell_c + 0.5) * W / w
    dist = (dr[:, None] ** 2 + dc[None, :] ** 2).reshape(-1)
    cell = (cell_r[:, None] * w + cell_c[None, :]).reshape(-1)
    valid = torch.isfinite(d) & (d > 0)
    n = d.shape[0]
    key = torch.where(valid, dist.expand(n, -1), torch.inf)
    best = torch.full((n, h * w), torch.inf, dtype=torch.float64)
    best.scatter_reduce_(1, cell.expand(n, -1), key, "amin")
    chosen = valid & (key == best.gather(1, cell.expand(n, -1)))
    index = torch.arange(H * W).expand(n, -1)
    first = torch.full((n, h * w), H * W, dtype=torch.long)
    first.scatter_reduce_(1, cell.expand(n, -1), torch.where(chosen, index, H * W), "amin")
    out = torch.gather(torch.cat([d, torch.zeros(n, 1)], 1), 1, first)
    return out.to(depth.dtype).reshape(*lead, h, w)


def to_input_frame(image: np.ndarray, *depths: np.ndarray, geometry: FrameGeometry = NYU,
                   sparse: bool = False) -> tuple[np.ndarray, ...]:
    """A frame of any size -> image and depth maps at the chain's input frame (the cache's
    level; 320x240 for NYU).

    A frame exactly twice the input frame takes the exact 2x2 path (box-mean image, subsampled
    depth); any other size is resized (image by area, depth by nearest neighbour). `sparse`
    depth (LiDAR) is resized by :func:`sparse_resize` instead, which keeps measurements that
    subsampling would drop.
    """
    import torch

    size = geometry.input_frame
    if sparse:
        small = resize_image(image, size)
        return (small, *(sparse_resize(torch.from_numpy(np.ascontiguousarray(d, np.float32)),
                                       size).numpy() for d in depths))
    if tuple(image.shape[:2]) == (2 * size[0], 2 * size[1]):
        return (downsample_image(image), *(downsample_depth(d) for d in depths))
    return (resize_image(image, size), *(resize_nearest(d, size) for d in depths))


# -- batches (torch) --------------------------------------------------------------------------
def crop_input(image: Tensor, geometry: FrameGeometry = NYU) -> Tensor:
    """Centre crop of an input frame (..., 240, 320) -> (..., 228, 304) for NYU: what the
    network sees of a frame."""
    if tuple(image.shape[-2:]) != geometry.input_frame:
        raise ValueError(f"expected a {geometry.input_frame[0]}x{geometry.input_frame[1]} "
                         f"frame, got {tuple(image.shape[-2:])}")
    y, x = geometry.crop_offset
    return image[..., y:y + geometry.input[0], x:x + geometry.input[1]]


def network_input(image: np.ndarray, geometry: FrameGeometry = NYU) -> Tensor:
    """uint8 RGB (H,W,3) of any size -> the uint8 network input (3,228,304 for NYU), as in
    training."""
    import torch

    (small,) = to_input_frame(image, geometry=geometry)
    return crop_input(torch.from_numpy(small).permute(2, 0, 1), geometry).contiguous()


def _frame_grid(frame_hw: tuple[int, int], device: object, geometry: FrameGeometry) -> Tensor:
    """grid_sample grid (1,H,W,2) placing every pixel centre of a frame of size `frame_hw` in the
    normalised coordinates of the network's output (which spans the centre crop)."""
    import torch

    h, w = frame_hw
    (fh, fw), (y0, x0), (ih, iw) = geometry.input_frame, geometry.crop_offset, geometry.input
    # Pixel centre -> position in the input frame -> position in the crop -> [-1, 1].
    u = (torch.arange(w, dtype=torch.float64) + 0.5) * (fw / w) - x0
    v = (torch.arange(h, dtype=torch.float64) + 0.5) * (fh / h) - y0
    gx = 2 * u / iw - 1
    gy = 2 * v / ih - 1
    grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)
    return grid.unsqueeze(0).to(device=device, dtype=torch.float32)


def upsample_to_frame(pred: Tensor, frame_hw: tuple[int, int] | None = None,
                      mode: str = "nearest", geometry: FrameGeometry = NYU) -> Tensor:
    """Bring network outputs (B,1,55,74) or (B,55,74) onto a full frame (B,H,W) of `frame_hw`
    (default: the chain's frame size).

    Each frame pixel takes the output value at its centre (``nearest``) or the bilinear blend of
    the four nearest output pixels (``bilinear``); pixels outside the region the network saw
    take the nearest border value (edge replication). Inside the region this is exactly
    ``F.interpolate(..., align_corners=False)``. Values are resampled as given: pass metres to
    upsample depth, log depth to upsample log depth.
    """
    import torch.nn.functional as F

    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsampling mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    x = pred if pred.ndim == 4 else pred.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] != 1 or tuple(x.shape[-2:]) != geometry.output:
        oh, ow = geometry.output
        raise ValueError(f"expected predictions (B,1,{oh},{ow}), got {tuple(pred.shape)}")
    frame_hw = tuple(frame_hw or geometry.frame)
    grid = _frame_grid(frame_hw, x.device, geometry).expand(x.shape[0], -1, -1, -1)
    out = F.grid_sample(x.float(), grid, mode=mode, padding_mode="border", align_corners=False)
    return out[:, 0]


def scale_intrinsics(intrinsics: tuple[float, float, float, float], size_hw: tuple[int, int],
                     from_hw: tuple[int, int] = FRAME_SIZE) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of a camera at `from_hw`, for the same view resized to `size_hw`."""
    fx, fy, cx, cy = intrinsics
    sx, sy = size_hw[1] / from_hw[1], size_hw[0] / from_hw[0]
    return fx * sx, fy * sy, cx * sx, cy * sy
