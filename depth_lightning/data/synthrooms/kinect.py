"""The Kinect hole model: which pixels of ``rawDepths`` are invalid (0).

Projector shadows left of occluding edges, thin dropouts along depth edges, blobs on dark,
specular or glass surfaces (and sparse random ones, more at long range), grazing angles, far
range, and the invalid border that Kinect/RGB registration leaves.
"""

from __future__ import annotations

import numpy as np

from .grid import FX, SCALE
from .noise import dilate, smooth_field

MAX_DEPTH = 10.0  # Kinect range; filled depth is clamped here, raw depth beyond it is a hole


def _projector_shadow(z: np.ndarray) -> np.ndarray:
    """The IR projector sits to the right of the camera (7.5 cm baseline), so background just
    left of a foreground edge is not lit by the pattern."""
    k = FX / SCALE * 0.075
    up = np.arange(z.shape[1], dtype=np.float32)[None, :] - k / z
    run_min = np.minimum.accumulate(up[:, ::-1], axis=1)[:, ::-1]
    shadow = np.zeros_like(z, bool)
    shadow[:, :-1] = up[:, :-1] > run_min[:, 1:] + 0.3
    return shadow


def _edge_dropouts(z: np.ndarray, rng) -> np.ndarray:
    """Thin dropouts along depth discontinuities (mixed pixels), 1-2 px at 640x480."""
    lz = np.log(z)
    edge = np.zeros_like(z, bool)
    gx = np.abs(np.diff(lz, axis=1)) > 0.06
    gy = np.abs(np.diff(lz, axis=0)) > 0.06
    edge[:, 1:] |= gx
    edge[:, :-1] |= gx
    edge[1:] |= gy
    edge[:-1] |= gy
    edge &= rng.random(z.shape, dtype=np.float32) < 0.8
    return dilate(edge, 1) & (smooth_field(rng, (30, 40), z.shape) < 0.6) | edge


def _blobs(z: np.ndarray, hole_prop: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Blobs on dark / specular / glass surfaces, plus sparse random ones, more at long range;
    also returns the smooth field f1 the random blobs come from."""
    f1 = smooth_field(rng, (6, 8), z.shape) * 0.75 + smooth_field(rng, (30, 40), z.shape) * 0.25
    f2 = smooth_field(rng, (40, 54), z.shape)
    # f1 is bell-shaped around 0.5: threshold at a quantile to get a chosen random-blob area
    base = np.quantile(f1[::4, ::4], rng.uniform(0.0, 0.06))
    far = np.clip((z - 4.5) / 5.0, 0, 1) * 0.4
    return (f1 < base) | (f2 < hole_prop * 0.7 + far), f1


def _grazing(normal, D, f1: np.ndarray) -> np.ndarray:
    """Grazing angles: the projected pattern smears out."""
    naxis, nsign = normal
    dn = np.where(naxis == 0, D[0], np.where(naxis == 1, D[1], D[2]))
    cos = np.abs(dn) / np.sqrt(D[0] ** 2 + D[1] ** 2 + D[2] ** 2)
    return (cos < 0.08) & (f1 < 0.6)


def holes(depth, hole_prop, normal, D, rng) -> np.ndarray:
    """Invalid-pixel mask of the raw Kinect depth at render resolution."""
    z = depth
    shadow = _projector_shadow(z)
    edge = _edge_dropouts(z, rng)
    blobs, f1 = _blobs(z, hole_prop, rng)
    graze = _grazing(normal, D, f1)
    return shadow | edge | blobs | graze | (z >= MAX_DEPTH)


def registration_border(raw: np.ndarray, rng) -> None:
    """Kinect/RGB registration leaves an invalid band on the left (and a thin one on top);
    `raw` is in the stored (x, y) layout."""
    raw[: int(rng.integers(8, 28))] = 0
    raw[:, : int(rng.integers(0, 6))] = 0
