"""The `kinect` feature: the raw Kinect depth's own error, on ``rawDepths`` only.

The Kinect measures disparity in 1/8 pixel steps against a 7.5 cm baseline, so raw depth comes
in steps that grow with the square of the distance (~5 cm at 4 m), plus noise of a fraction of
a step that is correlated over a few pixels (the correlation window of the pattern matcher).
``depths`` stays the clean ray-cast depth, as NYU's filled maps are smooth.
"""

from __future__ import annotations

import numpy as np

from .grid import FX
from .noise import smooth_field

_FB = FX * 0.075  # focal length (640x480 pixels) times the projector baseline, in pixel metres
_SUBPIXEL = 8  # disparity steps per pixel


def noisy_raw(depth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Raw depth at render resolution: clean depth (H, W) with disparity noise and steps."""
    disp = _FB * _SUBPIXEL / depth  # in 1/8 pixel units
    h, w = depth.shape
    # white noise per 640x480 pixel pair and a blotchy part over the matcher's ~9 px window
    sigma = np.float32(rng.uniform(0.25, 0.45))
    blotch = (smooth_field(rng, (h // 5, w // 5), depth.shape) - 0.5) * np.float32(1.6)
    disp = disp + (rng.standard_normal(depth.shape, dtype=np.float32) * 0.6 + blotch) * sigma
    disp = np.maximum(np.round(disp), 1)
    # stored on the 1/4096 m grid of `depths` (far finer than a step): compresses 3x better
    z = (_FB * _SUBPIXEL / disp).astype(np.float32)
    return np.round(z * 4096) * np.float32(1 / 4096)
