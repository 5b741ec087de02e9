"""Ray casting against the room box (from inside) and the furniture boxes (slab test)."""

from __future__ import annotations

import math

import numpy as np

from .grid import to_render_pixel


def slab(lo_b, hi_b, origin, inv) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit ray parameters (tn, tf) of one box; `origin` holds 3 scalars or arrays,
    `inv` the 3 reciprocal direction arrays. The box is hit where tn <= tf."""
    tn = tf = None
    for a in range(3):
        t1 = (lo_b[a] - origin[a]) * inv[a]
        t2 = (hi_b[a] - origin[a]) * inv[a]
        mn, mx = np.minimum(t1, t2), np.maximum(t1, t2)
        tn = mn if tn is None else np.maximum(tn, mn)
        tf = mx if tf is None else np.minimum(tf, mx)
    return tn, tf


def _cast_room(o, inv, D, size) -> tuple[np.ndarray, np.ndarray]:
    """Inside of the room box: the exit distance along each axis, nearest wins."""
    t = None
    for a in range(3):
        ta = np.where(D[a] > 0, (size[a] - o[a]) * inv[a], -o[a] * inv[a])
        face = np.where(D[a] > 0, 2 * a + 1, 2 * a).astype(np.int16)
        if t is None:
            t, obj = ta, face
        else:
            m = ta < t
            t = np.where(m, ta, t)
            obj = np.where(m, face, obj)
    return t, obj


def cast(o, D, size, lo, hi, basis=None):
    """Nearest hit of each ray: z-depth t and object id (0-5 room faces, 6+ furniture boxes).

    With the camera `basis`, each box is tested only over the screen rectangle it can cover."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = [np.float32(1) / D[k] for k in range(3)]
        t, obj = _cast_room(o, inv, D, size)
        if len(lo) == 0:
            return t, obj
        rects = screen_rects(o, lo, hi, basis, D[0].shape) if basis is not None else None
        for b in range(len(lo)):
            if rects is None:
                sl = (slice(None), slice(None))
            else:
                if rects[b] is None:
                    continue
                sl = rects[b]
            tn, tf = slab(lo[b], hi[b], o, [inv[a][sl] for a in range(3)])
            ts = t[sl]
            hit = (tn <= tf) & (tn > 1e-4) & (tn < ts)
            if hit.any():
                ts[hit] = tn[hit]
                obj[sl][hit] = 6 + b
    return t, obj


def screen_rects(o, lo, hi, basis, shape):
    """Render-pixel rectangle that each box can cover (None: off screen), to skip ray tests."""
    f, r, d = basis
    corners = np.stack([np.stack([np.where(c & 1, hi[:, 0], lo[:, 0]),
                                  np.where(c & 2, hi[:, 1], lo[:, 1]),
                                  np.where(c & 4, hi[:, 2], lo[:, 2])], -1) for c in range(8)], 1)
    rel = corners - o
    z, x, y = rel @ f, rel @ r, rel @ d
    out = []
    h, w = shape
    for b in range(len(lo)):
        if z[b].max() <= 1e-3:
            out.append(None)  # entirely behind the camera
            continue
        if z[b].min() <= 1e-2:
            out.append((slice(None), slice(None)))  # straddles the camera plane: test all
            continue
        u, v = to_render_pixel(x[b], y[b], z[b])
        j0, j1 = max(int(math.floor(u.min())), 0), min(int(math.ceil(u.max())) + 1, w)
        i0, i1 = max(int(math.floor(v.min())), 0), min(int(math.ceil(v.max())) + 1, h)
        out.append((slice(i0, i1), slice(j0, j1)) if (j0 < j1 and i0 < i1) else None)
    return out


def occluded(lo, hi, casters, origin, towards) -> np.ndarray:
    """Whether the segment from each point `origin` to `origin + towards` (3 arrays each) passes
    through one of the boxes `casters` (shadow rays: t in (0, 1))."""
    out = np.zeros(origin[0].shape, bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = [np.float32(1) / towards[k] for k in range(3)]
        for b in casters:
            tn, tf = slab(lo[b], hi[b], origin, inv)
            out |= (tn < tf) & (tf > 2e-3) & (tn < 1.0)
    return out
