"""The camera's sensor: auto exposure, white balance, vignetting, gamma and sensor noise."""

from __future__ import annotations

import numpy as np

from .grid import XD, YD


def develop(img: np.ndarray, rng) -> np.ndarray:
    """Linear RGB (H, W, 3) at render resolution -> the gamma-encoded image in [0, 1] (noisy,
    so slightly outside it)."""
    lum = img[::3, ::3].mean(2)
    expo = rng.uniform(0.45, 0.75) / max(float(np.percentile(lum, 85)), 1e-4)
    wb = np.exp(rng.normal(0, 0.06, 3)).astype(np.float32)
    wb[2] *= np.float32(rng.uniform(0.8, 1.05))  # Kinect frames tend to be warm
    r2 = (XD[None, :] ** 2 + YD[:, None] ** 2) / 0.37
    vign = (1 - 0.15 * r2).astype(np.float32)
    img = img * (expo * vign)[..., None] * wb
    img = np.sqrt(np.clip(img, 0, 1))  # gamma 2 (cheaper than 2.2, looks the same)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.006, 0.02))
    return img
