"""The `camera` feature: what a cheap RGB sensor does to a frame beyond the base `sensor` model.

NYU's Kinect frames vary a lot in exposure and white balance (auto exposure hunting, mixed
fluorescent and daylight), are soft (a cheap lens, JPEG, motion), vignetted and noisy in the
shadows, with colour noise. Works on the gamma-encoded image at render resolution.
"""

from __future__ import annotations

import numpy as np

from .grid import XD, YD
from .noise import smooth_field


def _blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lens softness (a 3x3 blur mixed in) and sometimes a short horizontal motion smear."""
    k = np.float32(rng.uniform(0.15, 0.7))
    p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")  # a 3x3 box blur of all channels
    v = p[:-2] + p[1:-1]
    v += p[2:]
    out = v[:, :-2] + v[:, 1:-1]
    out += v[:, 2:]
    out *= k / 9
    out += img * (1 - k)
    if rng.random() < 0.15:
        p = np.pad(out, ((0, 0), (1, 1), (0, 0)), mode="edge")
        out = (p[:, :-2] + p[:, 1:-1] + p[:, 2:]) * np.float32(1 / 3)
    return out


def _tone(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exposure, white balance, contrast and vignetting spread (in place)."""
    expo = np.float32(np.exp(rng.normal(0.0, 0.2)))
    wb = np.exp(rng.normal(0, 0.07, 3)).astype(np.float32)
    if rng.random() < 0.4:  # fluorescent green-yellow cast, common in offices and labs
        wb *= np.float32([1.0, 1.06, 0.88])
    r2 = (XD[None, :] ** 2 + YD[:, None] ** 2) / 0.37
    vign = (1 - np.float32(rng.uniform(0.05, 0.35)) * r2).astype(np.float32) * expo
    img *= vign[..., None]
    img *= wb
    np.clip(img, 0, 1.2, out=img)
    c = np.float32(rng.uniform(-0.25, 0.25))  # contrast: a cheap S (or inverse S) curve
    s = 1 - img
    s *= img
    s *= img - 0.5
    s *= 4 * c
    img += s
    return img


def apply(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gamma-encoded (H, W, 3) image -> the same through a cheaper camera."""
    img = _tone(_blur(img, rng), rng)
    h, w = img.shape[:2]
    # shot noise (stronger in the dark after gain) and colour noise in blotches
    lvl = np.float32(rng.uniform(0.008, 0.03))
    sd = lvl * (0.6 + 0.8 * np.sqrt(np.clip(1 - img.mean(2), 0, 1)))
    noise = rng.standard_normal(img.shape, dtype=np.float32)
    noise *= sd[..., None]
    img += noise
    amp = np.float32(rng.uniform(0.0, 0.05))
    for ch in range(3):
        img[..., ch] += (smooth_field(rng, (h // 4, w // 4), (h, w)) - 0.5) * amp
    return img
