"""The frame geometry chain of Eigen et al. 2014, the one place that defines a size.

    NYU frame 640x480 --(2x2 box mean)--> 320x240 --(304x228 crop)--> network input
                                                                        --> output 74x55

The network's 55x74 output covers the 608x456 region at offset (x 16, y 12) of the 640x480
frame (the centre crop, scaled back up by 2). Functions here move images, depth maps and
predictions between the levels of the chain; numpy for frames, torch for batches. Pure: no
Lightning, no files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used: SynthRooms' render workers need none
    from torch import Tensor

FRAME_SIZE = (480, 640)  # (H, W) of an NYU frame
INPUT_FRAME_SIZE = (240, 320)  # (H, W) the frame is downsampled to (the cache's size)
INPUT_SIZE = (228, 304)  # (H, W) the networks see: a crop of INPUT_FRAME_SIZE
OUTPUT_SIZE = (55, 74)  # (H, W) of the predicted log-depth map
# Centre crop of the network input within the 320x240 frame as (y, x): (6, 8).
CROP_OFFSET = ((INPUT_FRAME_SIZE[0] - INPUT_SIZE[0]) // 2,
               (INPUT_FRAME_SIZE[1] - INPUT_SIZE[1]) // 2)
# The region the network sees at 640x480 as (top, bottom, left, right): rows 12:468, cols 16:624.
NETWORK_REGION = (2 * CROP_OFFSET[0], 2 * (CROP_OFFSET[0] + INPUT_SIZE[0]),
                  2 * CROP_OFFSET[1], 2 * (CROP_OFFSET[1] + INPUT_SIZE[1]))
EIGEN_CROP = (45, 471, 41, 601)  # (top, bottom, left, right): the "Eigen crop" of BTS et al.
# Kinect RGB intrinsics of NYU Depth V2 at 640x480 (fx, fy, cx, cy), in pixels.
NYU_INTRINSICS = (518.86, 519.47, 325.58, 253.74)
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


def to_input_frame(image: np.ndarray, *depths: np.ndarray) -> tuple[np.ndarray, ...]:
    """A frame of any size -> image and depth maps at 320x240, the cache's level of the chain.

    A 640x480 frame takes the exact 2x2 path (box-mean image, subsampled depth); any other size
    is resized to 320x240 (image by area, depth by nearest neighbour).
    """
    if tuple(image.shape[:2]) == FRAME_SIZE:
        return (downsample_image(image), *(downsample_depth(d) for d in depths))
    return (resize_image(image, INPUT_FRAME_SIZE),
            *(resize_nearest(d, INPUT_FRAME_SIZE) for d in depths))


# -- batches (torch) --------------------------------------------------------------------------
def crop_input(image: Tensor) -> Tensor:
    """Centre crop (..., 240, 320) -> (..., 228, 304): what the network sees of a frame."""
    if tuple(image.shape[-2:]) != INPUT_FRAME_SIZE:
        raise ValueError(f"expected a 240x320 frame, got {tuple(image.shape[-2:])}")
    y, x = CROP_OFFSET
    return image[..., y:y + INPUT_SIZE[0], x:x + INPUT_SIZE[1]]


def network_input(image: np.ndarray) -> Tensor:
    """uint8 RGB (H,W,3) of any size -> the uint8 network input (3,228,304), as in training."""
    import torch

    (small,) = to_input_frame(image)
    return crop_input(torch.from_numpy(small).permute(2, 0, 1)).contiguous()


def _frame_grid(frame_hw: tuple[int, int], device: object) -> Tensor:
    """grid_sample grid (1,H,W,2) placing every pixel centre of a frame of size `frame_hw` in the
    normalised coordinates of the network's output (which spans the centre crop)."""
    import torch

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
    take the nearest border value (edge replication). Inside the region this is exactly
    ``F.interpolate(..., align_corners=False)``. Values are resampled as given: pass metres to
    upsample depth, log depth to upsample log depth.
    """
    import torch.nn.functional as F

    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsampling mode must be one of {UPSAMPLE_MODES}, got {mode!r}")
    x = pred if pred.ndim == 4 else pred.unsqueeze(1)
    if x.ndim != 4 or x.shape[1] != 1 or tuple(x.shape[-2:]) != OUTPUT_SIZE:
        raise ValueError(f"expected predictions (B,1,55,74), got {tuple(pred.shape)}")
    grid = _frame_grid(tuple(frame_hw), x.device).expand(x.shape[0], -1, -1, -1)
    out = F.grid_sample(x.float(), grid, mode=mode, padding_mode="border", align_corners=False)
    return out[:, 0]


def scale_intrinsics(intrinsics: tuple[float, float, float, float], size_hw: tuple[int, int],
                     from_hw: tuple[int, int] = FRAME_SIZE) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of a camera at `from_hw`, for the same view resized to `size_hw`."""
    fx, fy, cx, cy = intrinsics
    sx, sy = size_hw[1] / from_hw[1], size_hw[0] / from_hw[0]
    return fx * sx, fy * sy, cx * sx, cy * sy
