"""The render grid: NYU's 640x480 frame and Kinect intrinsics, rendered at 1/SCALE resolution.

Rendering happens at 320x240 and is upsampled to 640x480 afterwards; the intrinsics come from
`depth_lightning.geometry`, the one place that defines them.
"""

from __future__ import annotations

import numpy as np

from depth_lightning.geometry import FRAME_SIZE, NYU_INTRINSICS

FX, FY, CX, CY = NYU_INTRINSICS  # Kinect RGB intrinsics of NYU Depth V2 at 640x480
HEIGHT, WIDTH = FRAME_SIZE

SCALE = 2  # render at 1/SCALE resolution, then upsample
RENDER_H, RENDER_W = HEIGHT // SCALE, WIDTH // SCALE
# Ray of each render pixel through the centre of its SCALE x SCALE block of 640x480 pixels, as
# camera coordinates with z = 1, so the ray parameter t of a hit IS its z-depth (what NYU stores).
XD = ((np.arange(RENDER_W, dtype=np.float64) * SCALE + (SCALE - 1) / 2 - CX) / FX).astype(
    np.float32)
YD = ((np.arange(RENDER_H, dtype=np.float64) * SCALE + (SCALE - 1) / 2 - CY) / FY).astype(
    np.float32)


def to_render_pixel(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, ...]:
    """Camera coordinates (right, down, forward) -> (column, row) on the render grid."""
    u = (FX * x / z + CX - (SCALE - 1) / 2) / SCALE
    v = (FY * y / z + CY - (SCALE - 1) / 2) / SCALE
    return u, v
