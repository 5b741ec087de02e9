"""Small numeric helpers: lattice hashing, value noise, smooth random fields, binary dilation,
box blur and 2x upsampling. numpy only (no scipy in the workers)."""

from __future__ import annotations

import functools

import numpy as np


def hash01(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
    """Deterministic pseudo-random float32 in [0, 1) per integer lattice point (i, j)."""
    h = i.astype(np.int64).astype(np.uint32) * np.uint32(0x9E3779B1)
    h ^= j.astype(np.int64).astype(np.uint32) * np.uint32(0x85EBCA77)
    h ^= np.uint32(salt & 0xFFFFFFFF)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def value_noise(x: np.ndarray, y: np.ndarray, salt: int) -> np.ndarray:
    """Smooth 2-D value noise in [0, 1) with unit lattice spacing (world-space textures)."""
    xf, yf = np.floor(x), np.floor(y)
    xi, yi = xf.astype(np.int32), yf.astype(np.int32)
    fx, fy = x - xf, y - yf
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    a = hash01(xi, yi, salt)
    b = hash01(xi + 1, yi, salt)
    c = hash01(xi, yi + 1, salt)
    d = hash01(xi + 1, yi + 1, salt)
    top = a + (b - a) * fx
    return top + (c + (d - c) * fx - top) * fy


@functools.lru_cache(maxsize=16)
def _lerp_index(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights to stretch n_in samples linearly over n_out."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.clip(np.floor(pos).astype(np.intp), 0, n_in - 2)
    return lo, (pos - lo).astype(np.float32)


def smooth_field(rng: np.random.Generator, cells: tuple[int, int],
                 shape: tuple[int, int]) -> np.ndarray:
    """Smooth random field in [0, 1] of `shape`, from a coarse grid of random values
    (gathers, not BLAS: a matmul here is slow when BLAS threads contend)."""
    g = rng.random(cells, dtype=np.float32)
    iy, wy = _lerp_index(shape[0], cells[0])
    ix, wx = _lerp_index(shape[1], cells[1])
    rows = g[iy] * (1 - wy)[:, None] + g[iy + 1] * wy[:, None]
    return rows[:, ix] * (1 - wx) + rows[:, ix + 1] * wx


def dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
    """Binary dilation with a (2r+1)^2 square, by shifted ORs (no scipy in the workers)."""
    out = mask.copy()
    for _ in range(r):
        m = out.copy()
        m[1:] |= out[:-1]
        m[:-1] |= out[1:]
        m2 = m.copy()
        m2[:, 1:] |= m[:, :-1]
        m2[:, :-1] |= m[:, 1:]
        out = m2
    return out


def blur3(a: np.ndarray) -> np.ndarray:
    """3x3 box blur with edge clamping."""
    p = np.pad(a, 1, mode="edge")
    v = p[:-2] + p[1:-1] + p[2:]
    return (v[:, :-2] + v[:, 1:-1] + v[:, 2:]) * np.float32(1 / 9)


def up2_nearest(a: np.ndarray) -> np.ndarray:
    """Nearest upsampling by 2 of the last two axes."""
    *lead, h, w = a.shape
    return np.broadcast_to(a[..., :, None, :, None], (*lead, h, 2, w, 2)).reshape(
        *lead, 2 * h, 2 * w
    )


def up2_linear(a: np.ndarray) -> np.ndarray:
    """Linear upsampling by 2 of a 2-D array at pixel centres (edges clamped)."""
    out = np.empty((2 * a.shape[0], a.shape[1]), a.dtype)
    p = np.concatenate([a[:1], a, a[-1:]])
    out[0::2] = 0.75 * a + 0.25 * p[:-2]
    out[1::2] = 0.75 * a + 0.25 * p[2:]
    res = np.empty((out.shape[0], 2 * a.shape[1]), a.dtype)
    p = np.concatenate([out[:, :1], out, out[:, -1:]], 1)
    res[:, 0::2] = 0.75 * out + 0.25 * p[:, :-2]
    res[:, 1::2] = 0.75 * out + 0.25 * p[:, 2:]
    return res
