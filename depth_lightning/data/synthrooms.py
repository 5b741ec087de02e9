"""SynthRooms: procedurally ray-cast indoor rooms, written in the NYU Depth V2 labeled layout.

The embedded default dataset, so the pipeline trains and tests with no download. Each frame is a
box-shaped room (floor, four walls, ceiling) with furniture boxes, seen through NYU's Kinect
intrinsics from a hand-held camera pose. The distribution is made to resemble NYU's on purpose:
Eigen's coarse network learns depth from global layout cues (a floor receding to a far wall,
furniture standing on the floor, light falling off), and those only exist when the camera is held
and aimed the way people aim a Kinect into a room. Textures live in world coordinates, so they are
foreshortened by perspective like real ones.

Rendering is vectorised numpy ray casting at 320x240 (all pixels against the room box, then each
furniture box over the screen rectangle it can cover), upsampled to 640x480: image bilinear,
depth nearest. ``rawDepths`` gets Kinect-like holes (projector shadows left of occluding edges,
thin edge dropouts, dark or specular blobs, far range, an invalid left border); ``depths`` has none.

The file is one HDF5 file laid out like ``nyu_depth_v2_labeled.mat`` as h5py sees it: ``images``
(N, 3, 640, 480) uint8, ``depths`` / ``rawDepths`` (N, 640, 480) float32 metres, ``scenes`` and
``sceneTypes`` (1, N) object references to uint16 char arrays in ``#refs#``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import sys
import time
import types
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GENERATOR_VERSION = "1"  # bump when rendering changes: it is part of the cache file name

# Kinect RGB intrinsics of NYU Depth V2 at 640x480.
FX, FY, CX, CY = 518.86, 519.47, 325.58, 253.74
HEIGHT, WIDTH = 480, 640
MAX_DEPTH = 10.0  # Kinect range; filled depth is clamped here, raw depth beyond it is a hole

_S = 2  # render at 1/_S resolution, then upsample
_RH, _RW = HEIGHT // _S, WIDTH // _S
# Ray of each render pixel through the centre of its _S x _S block of 640x480 pixels, as camera
# coordinates with z = 1, so the ray parameter t of a hit IS its z-depth (what NYU stores).
_XD = ((np.arange(_RW, dtype=np.float64) * _S + (_S - 1) / 2 - CX) / FX).astype(np.float32)
_YD = ((np.arange(_RH, dtype=np.float64) * _S + (_S - 1) / 2 - CY) / FY).astype(np.float32)

SCENE_TYPES = ("bedroom", "living_room", "office", "kitchen", "dining_room")
_SCENE_WEIGHTS = (0.3, 0.25, 0.2, 0.12, 0.13)

# Room faces: 2 * axis + (1 if the face is at the high end of the axis). Walls are 0-3.
_FLOOR, _CEILING = 4, 5
_N_FACES = 6

# Furniture surface kinds (how a box face is textured).
_PLAIN, _WOOD, _FABRIC, _BOOKS, _PANELS, _SCREEN = range(6)

# Worker processes: one BLAS/OpenMP thread each (more only contend on few cores), and glibc malloc
# told to keep freed memory, so per-frame temporaries don't page-fault afresh every frame.
_WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


# --------------------------------------------------------------------------------------------
# small numeric helpers


def _hash01(i: np.ndarray, j: np.ndarray, salt: int) -> np.ndarray:
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


def _value_noise(x: np.ndarray, y: np.ndarray, salt: int) -> np.ndarray:
    """Smooth 2-D value noise in [0, 1) with unit lattice spacing (world-space textures)."""
    xf, yf = np.floor(x), np.floor(y)
    xi, yi = xf.astype(np.int32), yf.astype(np.int32)
    fx, fy = x - xf, y - yf
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    a = _hash01(xi, yi, salt)
    b = _hash01(xi + 1, yi, salt)
    c = _hash01(xi, yi + 1, salt)
    d = _hash01(xi + 1, yi + 1, salt)
    top = a + (b - a) * fx
    return top + (c + (d - c) * fx - top) * fy


@functools.lru_cache(maxsize=16)
def _lerp_index(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights to stretch n_in samples linearly over n_out."""
    pos = np.linspace(0, n_in - 1, n_out)
    lo = np.clip(np.floor(pos).astype(np.intp), 0, n_in - 2)
    return lo, (pos - lo).astype(np.float32)


def _smooth_field(rng: np.random.Generator, cells: tuple[int, int]) -> np.ndarray:
    """Smooth random field in [0, 1] at render resolution, from a coarse grid of random values
    (gathers, not BLAS: a matmul here is slow when BLAS threads contend)."""
    g = rng.random(cells, dtype=np.float32)
    iy, wy = _lerp_index(_RH, cells[0])
    ix, wx = _lerp_index(_RW, cells[1])
    rows = g[iy] * (1 - wy)[:, None] + g[iy + 1] * wy[:, None]
    return rows[:, ix] * (1 - wx) + rows[:, ix + 1] * wx


def _dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
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


def _blur3(a: np.ndarray) -> np.ndarray:
    """3x3 box blur with edge clamping."""
    p = np.pad(a, 1, mode="edge")
    v = p[:-2] + p[1:-1] + p[2:]
    return (v[:, :-2] + v[:, 1:-1] + v[:, 2:]) * np.float32(1 / 9)


def _up2_nearest(a: np.ndarray) -> np.ndarray:
    """Nearest upsampling by 2 of the last two axes."""
    *lead, h, w = a.shape
    return np.broadcast_to(a[..., :, None, :, None], (*lead, h, 2, w, 2)).reshape(
        *lead, 2 * h, 2 * w
    )


def _up2_linear(a: np.ndarray) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# scene description


@dataclass
class _Boxes:
    """Furniture as axis-aligned boxes plus what each face looks like."""

    lo: list = field(default_factory=list)
    hi: list = field(default_factory=list)
    color: list = field(default_factory=list)
    kind: list = field(default_factory=list)
    front: list = field(default_factory=list)  # face code 2*axis+(1 if +) of the textured front
    param: list = field(default_factory=list)  # per-kind parameters (4 floats)
    hole: list = field(default_factory=list)  # Kinect dropout propensity of this surface
    caster: list = field(default_factory=list)  # casts shadows (legs don't: too thin to matter)

    def add(self, lo, hi, color, kind=_PLAIN, front=-1, param=(0, 0, 0, 0), hole=0.0, caster=True):
        self.lo.append(lo)
        self.hi.append(hi)
        self.color.append(color)
        self.kind.append(kind)
        self.front.append(front)
        self.param.append(param)
        self.hole.append(hole)
        self.caster.append(caster)


@dataclass
class _Room:
    size: np.ndarray  # (W, L, H): x extent, y extent, height
    scene_type: str
    boxes: _Boxes
    footprints: list  # (x0, y0, x1, y1, height) of each piece: contact shadows, camera clearance
    floor: dict
    wall_color: np.ndarray  # (4, 3)
    decals: list  # dicts: wall, s0, s1, z0, z1, kind, colours
    baseboard: tuple  # (height, colour)
    ceiling: dict
    lights: np.ndarray  # (n, 3)
    light_power: np.ndarray  # (n,)
    light_color: np.ndarray  # (3,)
    salt: int


def _rand_color(rng, base, spread) -> np.ndarray:
    c = np.asarray(base, np.float32) * (1 + rng.normal(0, spread, 3))
    return np.clip(c, 0.02, 0.95).astype(np.float32)


_WALL_PALETTE = [
    (0.80, 0.78, 0.72), (0.85, 0.84, 0.80), (0.78, 0.72, 0.60), (0.70, 0.70, 0.70),
    (0.82, 0.76, 0.55), (0.62, 0.70, 0.76), (0.66, 0.74, 0.62), (0.80, 0.66, 0.58),
    (0.88, 0.87, 0.85), (0.55, 0.52, 0.50),
]
_WOOD_PALETTE = [
    (0.45, 0.28, 0.14), (0.60, 0.40, 0.22), (0.72, 0.55, 0.35), (0.35, 0.20, 0.10),
    (0.80, 0.66, 0.46), (0.25, 0.15, 0.09),
]
_FURN_PALETTE = [
    (0.85, 0.85, 0.82), (0.12, 0.12, 0.12), (0.45, 0.30, 0.18), (0.60, 0.42, 0.25),
    (0.35, 0.38, 0.45), (0.55, 0.55, 0.55), (0.70, 0.62, 0.50), (0.25, 0.22, 0.20),
]
_FABRIC_PALETTE = [
    (0.55, 0.12, 0.10), (0.20, 0.25, 0.45), (0.35, 0.45, 0.30), (0.60, 0.55, 0.45),
    (0.30, 0.30, 0.32), (0.75, 0.70, 0.60), (0.50, 0.35, 0.45), (0.15, 0.15, 0.18),
    (0.80, 0.80, 0.78), (0.65, 0.45, 0.20),
]


def _pick(rng, palette, spread=0.08) -> np.ndarray:
    return _rand_color(rng, palette[rng.integers(len(palette))], spread)


class _Placer:
    """Places furniture footprints in the room without overlaps (rejection sampling)."""

    def __init__(self, rng, size, boxes: _Boxes):
        self.rng, self.size, self.boxes = rng, size, boxes
        self.rects: list[tuple] = []  # blocked xy rectangles (furniture, door swings)
        self.footprints: list[tuple] = []

    def free(self, r, margin=0.05) -> bool:
        x0, y0, x1, y1 = r
        w, ln = self.size[0], self.size[1]
        if x0 < -1e-6 or y0 < -1e-6 or x1 > w + 1e-6 or y1 > ln + 1e-6:
            return False
        return all(
            x1 + margin <= a0 or a1 + margin <= x0 or y1 + margin <= b0 or b1 + margin <= y0
            for a0, b0, a1, b1 in self.rects
        )

    @staticmethod
    def frame(orient, back, lateral, w, dp):
        """Map local (x' along width, y' back->front) to world: returns (to_world, footprint)."""

        def to_world(x0, x1, y0, y1):
            if orient == 0:  # front faces +x, back against x = back
                return (back + y0, lateral + x0, back + y1, lateral + x1)
            if orient == 1:  # front faces -x
                return (back - y1, lateral + x0, back - y0, lateral + x1)
            if orient == 2:  # front faces +y
                return (lateral + x0, back + y0, lateral + x1, back + y1)
            return (lateral + x0, back - y1, lateral + x1, back - y0)

        return to_world, to_world(0, w, 0, dp)

    def emit(self, to_world, parts, orient):
        """parts: (x0, x1, y0, y1, z0, z1, colour, kind, param, hole, caster) in local coords."""
        for x0, x1, y0, y1, z0, z1, col, kind, param, hole, caster in parts:
            a0, b0, a1, b1 = to_world(x0, x1, y0, y1)
            self.boxes.add((a0, b0, z0), (a1, b1, z1), col, kind, orient, param, hole, caster)

    def commit(self, fp, height):
        self.rects.append(fp)
        self.footprints.append((*fp, height))

    def against_wall(self, w, dp, gap=None, wall=None, tries=30):
        """A footprint backed against a wall: (orient, back, lateral, to_world, fp) or None."""
        rng = self.rng
        for _ in range(tries):
            k = int(rng.integers(4)) if wall is None else wall
            along = self.size[1] if k < 2 else self.size[0]
            if along < w + 0.1:
                continue
            g = rng.uniform(0.0, 0.08) if gap is None else gap
            back = g if k % 2 == 0 else (self.size[k // 2] - g)
            lateral = rng.uniform(0.05, along - w - 0.05)
            to_world, fp = self.frame(k, back, lateral, w, dp)
            if self.free(fp):
                return k, back, lateral, to_world, fp
        return None

    def in_middle(self, w, dp, tries=30):
        rng = self.rng
        for _ in range(tries):
            orient = int(rng.integers(4))
            along = self.size[1] if orient < 2 else self.size[0]
            across = self.size[0] if orient < 2 else self.size[1]
            if along < w + 1.2 or across < dp + 1.2:
                continue
            lateral = rng.uniform(0.6, along - w - 0.6)
            back = rng.uniform(0.6, across - dp - 0.6)
            if orient % 2 == 1:
                back = across - back
            to_world, fp = self.frame(orient, back, lateral, w, dp)
            if self.free(fp, margin=0.5):
                return orient, back, lateral, to_world, fp
        return None


def _legs(w, dp, h, t, inset, col):
    parts = []
    for x in (inset, w - inset - t):
        for y in (inset, dp - inset - t):
            parts.append((x, x + t, y, y + t, 0.0, h, col, _PLAIN, (0, 0, 0, 0), 0.0, False))
    return parts


def _clutter(rng, x0, x1, y0, y1, z, n):
    """Small objects (books, boxes, lamps) on a top surface, in local coordinates."""
    parts = []
    for _ in range(n):
        sx, sy = rng.uniform(0.08, 0.3), rng.uniform(0.08, 0.25)
        if x1 - x0 < sx + 0.02 or y1 - y0 < sy + 0.02:
            continue
        cx, cy = rng.uniform(x0, x1 - sx), rng.uniform(y0, y1 - sy)
        h = rng.uniform(0.03, 0.35)
        col = _pick(rng, _FABRIC_PALETTE + _FURN_PALETTE, 0.15)
        parts.append((cx, cx + sx, cy, cy + sy, z, z + h, col, _PLAIN, (0, 0, 0, 0), 0.1, False))
    return parts


def _add_table(P: _Placer, rng, kind: str, wall: bool = True):
    if kind == "desk":
        w, dp, h = rng.uniform(1.0, 1.6), rng.uniform(0.6, 0.8), rng.uniform(0.72, 0.77)
    elif kind == "dining":
        w, dp, h = rng.uniform(1.2, 2.0), rng.uniform(0.8, 1.0), rng.uniform(0.73, 0.77)
    elif kind == "coffee":
        w, dp, h = rng.uniform(0.8, 1.2), rng.uniform(0.5, 0.7), rng.uniform(0.38, 0.48)
    else:  # side table / nightstand
        w, dp, h = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.5), rng.uniform(0.5, 0.65)
    spot = P.against_wall(w, dp) if wall else P.in_middle(w, dp)
    if spot is None:
        return None
    orient, back, lateral, to_world, fp = spot
    top = _pick(rng, _WOOD_PALETTE + _FURN_PALETTE[:2])
    legc = top * rng.uniform(0.6, 1.0) if rng.random() < 0.7 else _pick(rng, _FURN_PALETTE)
    th = rng.uniform(0.025, 0.05)
    parts = [(0, w, 0, dp, h - th, h, top, _WOOD, (0, 0, 0, 0), 0.0, True)]
    parts += _legs(w, dp, h - th, rng.uniform(0.035, 0.06), 0.03, legc)
    if kind == "desk" and rng.random() < 0.6:  # monitor
        mw = rng.uniform(0.45, 0.65)
        mx = rng.uniform(0.05, w - mw - 0.05)
        my = rng.uniform(0.08, 0.2)
        dark = np.float32([0.04, 0.04, 0.05])
        parts.append((mx + mw / 2 - 0.04, mx + mw / 2 + 0.04, my - 0.05, my + 0.05, h, h + 0.12,
                      dark, _PLAIN, (0, 0, 0, 0), 0.3, False))
        parts.append((mx, mx + mw, my, my + 0.03, h + 0.1, h + 0.1 + mw * 0.62,
                      dark, _SCREEN, (0, 0, 0, 0), 0.6, True))
    else:
        parts += _clutter(rng, 0.05, w - 0.05, 0.05, dp - 0.05, h, int(rng.integers(0, 4)))
    P.emit(to_world, parts, orient)
    P.commit(fp, h)
    return orient, back, lateral, w, dp


def _chair_parts(rng, col):
    sw, sd, sh = rng.uniform(0.42, 0.5), rng.uniform(0.42, 0.5), rng.uniform(0.43, 0.48)
    bh = rng.uniform(0.35, 0.5)
    parts = [(0, sw, 0, sd, sh - 0.05, sh, col, _FABRIC, (0, 0, 0, 0), 0.0, True),
             (0, sw, 0, 0.05, sh, sh + bh, col, _FABRIC, (0, 0, 0, 0), 0.0, True)]
    legc = col * 0.6 if rng.random() < 0.5 else np.float32([0.15, 0.15, 0.15])
    parts += _legs(sw, sd, sh - 0.05, 0.035, 0.02, legc)
    return parts, sw, sd, sh + bh


def _add_chairs_at(P: _Placer, rng, table, n, col, both_sides=False):
    """Chairs facing a table, on its front side (and its back side for dining tables)."""
    orient, back, lateral, w, dp = table
    placed = 0
    sides = (1, -1) if both_sides else (1,)
    for k in range(n):
        side = sides[k % len(sides)]
        parts, sw, sd, ch = _chair_parts(rng, col)
        x = lateral + rng.uniform(0, max(w - sw, 0.01))
        gap = rng.uniform(0.0, 0.25)
        # chair back is away from the table; its orientation faces the table
        sgn = 1 if orient % 2 == 0 else -1  # direction from the table's back to its front
        if side == 1:
            cback = back + sgn * (dp + gap + sd)
            corient = orient ^ 1
        else:
            cback = back - sgn * (gap + sd)
            corient = orient
        to_world, fp = P.frame(corient, cback, x, sw, sd)
        if P.free(fp, margin=0.02):
            P.emit(to_world, parts, corient)
            P.commit(fp, ch)
            placed += 1
    return placed


def _add_free_chair(P: _Placer, rng):
    parts, sw, sd, ch = _chair_parts(rng, _pick(rng, _FABRIC_PALETTE + _FURN_PALETTE))
    spot = P.against_wall(sw, sd, gap=rng.uniform(0.05, 0.6)) if rng.random() < 0.6 else (
        P.in_middle(sw, sd))
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    P.emit(to_world, parts, orient)
    P.commit(fp, ch)
    return True


def _add_bed(P: _Placer, rng):
    w = rng.choice([rng.uniform(0.9, 1.1), rng.uniform(1.35, 1.9)])
    dp, h = rng.uniform(1.95, 2.15), rng.uniform(0.45, 0.62)
    spot = P.against_wall(w + 0.1, dp, gap=0.0)
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    frame = _pick(rng, _WOOD_PALETTE + _FURN_PALETTE[:2])
    sheet = _pick(rng, _FABRIC_PALETTE, 0.1)
    blanket = _pick(rng, _FABRIC_PALETTE, 0.1)
    pillow = _rand_color(rng, (0.85, 0.84, 0.8), 0.05)
    hb = rng.uniform(0.8, 1.15)
    parts = [
        (0, w + 0.1, 0, 0.06, 0, hb, frame, _WOOD, (0, 0, 0, 0), 0.0, True),
        (0, w + 0.1, 0.06, dp, 0, h - 0.2, frame, _WOOD, (0, 0, 0, 0), 0.0, True),
        (0.05, w + 0.05, 0.06, dp - 0.02, h - 0.2, h, sheet, _FABRIC, (0, 0, 0, 0), 0.0, True),
        (0.02, w + 0.08, rng.uniform(0.5, 0.9), dp, h - 0.25, h + 0.04, blanket, _FABRIC,
         (1, 0, 0, 0), 0.0, True),
    ]
    npl = 1 if w < 1.2 else 2
    pw = (w - 0.1) / npl
    for i in range(npl):
        x = 0.1 + i * pw
        parts.append((x, x + pw - 0.05, 0.1, 0.45, h, h + 0.12, pillow, _FABRIC, (0, 0, 0, 0),
                      0.0, False))
    P.emit(to_world, parts, orient)
    P.commit(fp, hb)
    return True


def _add_sofa(P: _Placer, rng):
    w, dp = rng.uniform(1.5, 2.4), rng.uniform(0.8, 0.95)
    spot = P.against_wall(w, dp, gap=rng.uniform(0.0, 0.1))
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    col = _pick(rng, _FABRIC_PALETTE, 0.1)
    sh, bh, ah, aw = rng.uniform(0.4, 0.46), rng.uniform(0.75, 0.9), rng.uniform(0.55, 0.65), 0.18
    par = (1, 0, 0, 0)
    parts = [
        (0, w, 0, 0.22, 0.05, bh, col, _FABRIC, par, 0.0, True),
        (0, aw, 0.22, dp, 0.05, ah, col, _FABRIC, par, 0.0, True),
        (w - aw, w, 0.22, dp, 0.05, ah, col, _FABRIC, par, 0.0, True),
        (aw, w - aw, 0.22, dp, 0.05, sh - 0.12, col * 0.85, _FABRIC, par, 0.0, True),
    ]
    nc = 2 if w < 1.9 else 3
    cw = (w - 2 * aw) / nc
    for i in range(nc):
        x = aw + i * cw
        parts.append((x + 0.01, x + cw - 0.01, 0.22, dp - 0.02, sh - 0.12, sh, col * 1.05,
                      _FABRIC, par, 0.0, True))
    parts += _legs(w, dp, 0.05, 0.05, 0.03, np.float32([0.1, 0.08, 0.06]))
    P.emit(to_world, parts, orient)
    P.commit(fp, bh)
    return True


def _add_shelf(P: _Placer, rng):
    w, dp, h = rng.uniform(0.6, 1.2), rng.uniform(0.28, 0.4), rng.uniform(1.2, 2.1)
    spot = P.against_wall(w, dp, gap=0.0)
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    col = _pick(rng, _WOOD_PALETTE + _FURN_PALETTE[:2])
    rows = int(rng.integers(3, 7))
    param = (h / rows, rng.uniform(0.025, 0.05), rng.uniform(0.4, 0.95), rng.integers(1 << 20))
    P.emit(to_world, [(0, w, 0, dp, 0, h, col, _BOOKS, param, 0.15, True)], orient)
    P.commit(fp, h)
    return True


def _add_cabinet(P: _Placer, rng, kind: str = "dresser"):
    if kind == "counter":
        w, dp, h = rng.uniform(1.2, 3.0), rng.uniform(0.55, 0.65), rng.uniform(0.86, 0.92)
    elif kind == "tv":
        w, dp, h = rng.uniform(1.0, 1.8), rng.uniform(0.4, 0.5), rng.uniform(0.4, 0.6)
    elif kind == "wardrobe":
        w, dp, h = rng.uniform(0.8, 1.6), rng.uniform(0.5, 0.62), rng.uniform(1.8, 2.2)
    else:
        w, dp, h = rng.uniform(0.6, 1.5), rng.uniform(0.4, 0.55), rng.uniform(0.6, 1.2)
    spot = P.against_wall(w, dp, gap=0.0 if kind == "counter" else None)
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    col = _pick(rng, _WOOD_PALETTE + _FURN_PALETTE)
    cols = max(1, round(w / rng.uniform(0.4, 0.6)))
    rows = 1 if kind in ("counter", "wardrobe") else int(rng.integers(1, 4))
    param = (cols, rows, 0.0, 0.0)
    parts = [(0, w, 0, dp, 0.0, h, col, _PANELS, param, 0.05, True)]
    if kind == "counter":
        stone = _rand_color(rng, [(0.8, 0.8, 0.78), (0.2, 0.2, 0.2), (0.6, 0.55, 0.5)][
            rng.integers(3)], 0.05)
        parts = [(0, w, 0, dp - 0.03, 0.0, h - 0.04, col, _PANELS, param, 0.05, True),
                 (0, w, 0, dp, h - 0.04, h, stone, _PLAIN, (0, 0, 0, 0), 0.1, True)]
        if rng.random() < 0.7:  # wall cabinets above the counter
            z0 = rng.uniform(1.4, 1.55)
            parts.append((0, w, 0, 0.35, z0, z0 + rng.uniform(0.6, 0.8), col, _PANELS,
                          (cols, 1, 0, 0), 0.05, True))
        parts += _clutter(rng, 0.05, w - 0.05, 0.05, 0.4, h, int(rng.integers(0, 4)))
    elif kind == "tv" and rng.random() < 0.8:
        tw = min(w - 0.1, rng.uniform(0.8, 1.3))
        tx = (w - tw) / 2
        dark = np.float32([0.03, 0.03, 0.035])
        parts.append((tx + tw / 2 - 0.12, tx + tw / 2 + 0.12, 0.1, 0.3, h, h + 0.05, dark,
                      _PLAIN, (0, 0, 0, 0), 0.3, False))
        parts.append((tx, tx + tw, 0.18, 0.23, h + 0.05, h + 0.05 + tw * 0.58, dark, _SCREEN,
                      (0, 0, 0, 0), 0.7, True))
    elif h < 1.3:
        parts += _clutter(rng, 0.05, w - 0.05, 0.05, dp - 0.05, h, int(rng.integers(0, 4)))
    P.emit(to_world, parts, orient)
    P.commit(fp, h)
    return True


def _furnish(P: _Placer, rng, scene_type: str) -> None:
    """2-8 pieces of furniture according to the scene type (chairs count as pieces), more in
    bigger rooms, then small things on the floor along the walls."""
    area = float(P.size[0] * P.size[1])
    budget = int(np.clip(round(area / 6) + rng.integers(0, 4), 2, 8))
    n = 0

    def room_left():
        return n < budget

    def chairs(table, k, both=False):
        nonlocal n
        col = _pick(rng, _FABRIC_PALETTE + _FURN_PALETTE)
        n += _add_chairs_at(P, rng, table, min(k, budget - n), col, both)

    if scene_type == "bedroom":
        n += _add_bed(P, rng)
        if rng.random() < 0.5 and _add_bed(P, rng):
            n += 1
        for _ in range(int(rng.integers(0, 3))):
            if room_left() and _add_table(P, rng, "side"):
                n += 1
    elif scene_type == "living_room":
        n += _add_sofa(P, rng)
        if rng.random() < 0.4 and _add_sofa(P, rng):
            n += 1
        if room_left() and rng.random() < 0.7 and _add_table(P, rng, "coffee", wall=False):
            n += 1
        if room_left() and rng.random() < 0.7 and _add_cabinet(P, rng, "tv"):
            n += 1
    elif scene_type == "office":
        for _ in range(int(rng.integers(1, 4))):
            if room_left():
                t = _add_table(P, rng, "desk")
                if t is not None:
                    n += 1
                    if room_left():
                        chairs(t, 1)
    elif scene_type == "kitchen":
        for _ in range(int(rng.integers(1, 3))):
            if room_left() and _add_cabinet(P, rng, "counter"):
                n += 1
        if room_left() and rng.random() < 0.6:
            t = _add_table(P, rng, "dining", wall=rng.random() < 0.3)
            if t is not None:
                n += 1
                chairs(t, int(rng.integers(0, 5)), both=True)
    else:  # dining_room
        t = _add_table(P, rng, "dining", wall=False)
        if t is not None:
            n += 1
            chairs(t, int(rng.integers(2, 7)), both=True)
    # fill the remaining budget with the usual suspects of every room
    extras = {
        "bedroom": ("wardrobe", "dresser", "shelf", "desk", "chair"),
        "living_room": ("shelf", "chair", "dresser", "side"),
        "office": ("shelf", "dresser", "shelf", "chair"),
        "kitchen": ("dresser", "shelf", "chair"),
        "dining_room": ("dresser", "shelf", "dresser"),
    }[scene_type]
    tries = 0
    while room_left() and tries < 12:
        tries += 1
        what = extras[rng.integers(len(extras))]
        if what == "shelf":
            ok = _add_shelf(P, rng)
        elif what == "chair":
            ok = _add_free_chair(P, rng)
        elif what in ("desk", "side"):
            t = _add_table(P, rng, what)
            ok = t is not None
            if ok and what == "desk" and budget - n > 1:
                n += _add_chairs_at(P, rng, t, 1, _pick(rng, _FABRIC_PALETTE))
        else:
            ok = _add_cabinet(P, rng, what)
        n += bool(ok)
    for _ in range(int(rng.integers(0, min(2 + area // 8, 7)))):
        _add_floor_item(P, rng)


def _add_floor_item(P: _Placer, rng) -> bool:
    """A box, bin, bag or potted plant on the floor, near a wall (clutter, not furniture)."""
    kind = rng.choice(["box", "bin", "plant"], p=[0.5, 0.25, 0.25])
    if kind == "plant":
        w = rng.uniform(0.3, 0.6)
        dp, h = w, rng.uniform(0.5, 1.4)
    else:
        w, dp, h = rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.5), rng.uniform(0.15, 0.7)
    spot = P.against_wall(w, dp, gap=rng.uniform(0.0, 0.3), tries=10)
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    z0 = (0, 0, 0, 0)
    if kind == "plant":
        pot = _rand_color(rng, [(0.55, 0.3, 0.2), (0.85, 0.85, 0.82), (0.2, 0.2, 0.2)][
            rng.integers(3)], 0.08)
        leaf = _rand_color(rng, (0.18, 0.35, 0.12), 0.2)
        pw = w * 0.55
        o = (w - pw) / 2
        parts = [(o, o + pw, o, o + pw, 0.0, h * 0.3, pot, _PLAIN, z0, 0.05, True),
                 (0.0, w, 0.0, dp, h * 0.3, h, leaf, _FABRIC, z0, 0.3, True)]
    else:
        col = (_rand_color(rng, (0.62, 0.48, 0.3), 0.1) if kind == "box" else
               _pick(rng, _FURN_PALETTE + _FABRIC_PALETTE, 0.1))
        parts = [(0.0, w, 0.0, dp, 0.0, h, col, _PLAIN if kind == "box" else _FABRIC, z0,
                  0.1, True)]
    P.emit(to_world, parts, orient)
    P.commit(fp, h)
    return True


def _make_room(seed: int) -> _Room:
    """The room of a scene: geometry, furniture, materials and lights (no camera)."""
    rng = np.random.default_rng([seed, 0])
    scene_type = SCENE_TYPES[rng.choice(len(SCENE_TYPES), p=_SCENE_WEIGHTS)]
    # Room extents 3-9 m, skewed small like real homes and offices; kitchens/bedrooms smaller.
    lo_hi = {"bedroom": (3.0, 5.5), "kitchen": (3.0, 6.0), "office": (3.5, 9.0),
             "living_room": (3.5, 7.5), "dining_room": (3.5, 6.5)}[scene_type]
    span = lo_hi[1] - lo_hi[0]
    size = np.array([lo_hi[0] + span * rng.beta(1.6, 2.2), lo_hi[0] + span * rng.beta(1.6, 2.2),
                     rng.uniform(2.4, 3.1)], np.float32)

    boxes = _Boxes()
    P = _Placer(rng, size, boxes)

    # doors first: they reserve the floor in front of them
    decals: list[dict] = []
    for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3]))):
        k = int(rng.integers(4))
        along = size[1] if k < 2 else size[0]
        dw = rng.uniform(0.78, 0.92)
        s0 = rng.uniform(0.1, along - dw - 0.1)
        to_world, fp = P.frame(k, 0.0 if k % 2 == 0 else size[k // 2], s0 - 0.05, dw + 0.1, 0.8)
        if not P.free(fp):
            continue
        P.rects.append(fp)
        white = rng.random() < 0.5
        decals.append(dict(
            wall=k, s0=s0, s1=s0 + dw, z0=0.0, z1=rng.uniform(1.98, 2.1), kind="door",
            color=_rand_color(rng, (0.85, 0.84, 0.8), 0.04) if white else _pick(rng, _WOOD_PALETTE),
            frame=_rand_color(rng, (0.88, 0.87, 0.84), 0.03) if rng.random() < 0.7 else
            _pick(rng, _WOOD_PALETTE), hole=0.0))
    _furnish(P, rng, scene_type)

    def overlaps(k, s0, s1, z0, z1):
        return any(d["wall"] == k and s0 < d["s1"] + 0.1 and d["s0"] < s1 + 0.1 and z0 < d["z1"]
                   and d["z0"] < z1 for d in decals)

    # windows, pictures, whiteboards: flat decals on the walls
    day = rng.random() < 0.55
    for _ in range(int(rng.integers(0, 3))):
        k = int(rng.integers(4))
        along = size[1] if k < 2 else size[0]
        ww = rng.uniform(0.7, min(2.2, along - 0.4))
        s0 = rng.uniform(0.2, along - ww - 0.2)
        z0 = rng.uniform(0.75, 1.0)
        z1 = min(size[2] - 0.15, rng.uniform(1.9, 2.3))
        if overlaps(k, s0, s0 + ww, z0, z1):
            continue
        decals.append(dict(
            wall=k, s0=s0, s1=s0 + ww, z0=z0, z1=z1, kind="window", day=day,
            blinds=rng.random() < 0.45, curtains=rng.random() < 0.35,
            color=_pick(rng, _FABRIC_PALETTE + [(0.85, 0.82, 0.75)] * 3, 0.05),
            frame=_rand_color(rng, (0.9, 0.9, 0.88), 0.03), sky=_rand_color(
                rng, (0.8, 0.88, 1.0) if day else (0.03, 0.035, 0.05), 0.05), hole=0.8))
    n_pic = int(rng.integers(0, 5))
    for _ in range(n_pic):
        k = int(rng.integers(4))
        along = size[1] if k < 2 else size[0]
        if rng.random() < (0.5 if scene_type == "office" else 0.1):
            pw, ph, kind = rng.uniform(1.2, 2.4), rng.uniform(0.9, 1.2), "board"
        else:
            pw, ph, kind = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8), "picture"
        if along < pw + 0.4:
            continue
        s0 = rng.uniform(0.2, along - pw - 0.2)
        zc = rng.uniform(1.35, 1.75)
        if overlaps(k, s0, s0 + pw, zc - ph / 2, zc + ph / 2):
            continue
        decals.append(dict(
            wall=k, s0=s0, s1=s0 + pw, z0=zc - ph / 2, z1=zc + ph / 2, kind=kind,
            frame=_pick(rng, _WOOD_PALETTE + [(0.1, 0.1, 0.1), (0.9, 0.9, 0.9)], 0.05),
            c1=_pick(rng, _FABRIC_PALETTE, 0.3),
            c2=_pick(rng, _FABRIC_PALETTE + _WALL_PALETTE, 0.3),
            salt=int(rng.integers(1 << 30)), hole=0.2 if kind == "picture" else 0.3))

    # floor material by scene type
    fk = rng.choice(["wood", "tile", "carpet"], p={
        "bedroom": (0.5, 0.1, 0.4), "living_room": (0.6, 0.1, 0.3), "office": (0.15, 0.35, 0.5),
        "kitchen": (0.3, 0.7, 0.0), "dining_room": (0.6, 0.3, 0.1)}[scene_type])
    if fk == "wood":
        floor = dict(kind="wood", color=_pick(rng, _WOOD_PALETTE, 0.1),
                     width=rng.uniform(0.08, 0.2), length=rng.uniform(0.6, 1.8),
                     axis=int(rng.integers(2)), var=rng.uniform(0.08, 0.2))
    elif fk == "tile":
        floor = dict(kind="tile", color=_rand_color(rng, [(0.8, 0.78, 0.72), (0.6, 0.6, 0.6),
                     (0.7, 0.6, 0.5), (0.35, 0.33, 0.32)][rng.integers(4)], 0.08),
                     size=rng.uniform(0.25, 0.6), grout=_rand_color(rng, (0.5, 0.5, 0.48), 0.2),
                     var=rng.uniform(0.02, 0.08), checker=rng.random() < 0.15)
    else:
        floor = dict(kind="carpet", color=_pick(rng, _FABRIC_PALETTE + _WALL_PALETTE[-3:], 0.1),
                     var=rng.uniform(0.05, 0.12))
    if fk != "tile" and rng.random() < 0.35 and scene_type in ("bedroom", "living_room"):
        rw, rl = rng.uniform(1.2, 2.5), rng.uniform(0.9, 1.8)
        if rw < size[0] - 0.6 and rl < size[1] - 0.6:
            x0, y0 = rng.uniform(0.3, size[0] - rw - 0.3), rng.uniform(0.3, size[1] - rl - 0.3)
            floor["rug"] = (x0, y0, x0 + rw, y0 + rl)
            floor["rug_colors"] = (_pick(rng, _FABRIC_PALETTE, 0.1),
                                   _pick(rng, _FABRIC_PALETTE, 0.1))

    base = np.array(_WALL_PALETTE[rng.integers(len(_WALL_PALETTE))], np.float32)
    wall_color = np.clip(base * (1 + rng.normal(0, 0.04, (4, 1)))
                         * (1 + rng.normal(0, 0.02, (4, 3))),
                         0.05, 0.95).astype(np.float32)
    if rng.random() < 0.15:  # an accent wall
        wall_color[rng.integers(4)] = _pick(rng, _WALL_PALETTE + _FABRIC_PALETTE, 0.05)
    baseboard = (rng.uniform(0.05, 0.12) if rng.random() < 0.7 else 0.0,
                 _rand_color(rng, (0.88, 0.87, 0.84), 0.03) if rng.random() < 0.6 else
                 _pick(rng, _WOOD_PALETTE))
    ceiling = dict(color=_rand_color(rng, (0.88, 0.87, 0.85), 0.03),
                   tiles=rng.random() < (0.7 if scene_type == "office" else 0.15),
                   tile=rng.uniform(0.58, 0.62), panel=scene_type in ("office", "kitchen"))

    # ceiling lights roughly spread over the room (one per ~8 m^2, at most 4)
    n_l = int(np.clip(round(size[0] * size[1] / rng.uniform(6, 14)), 1, 4))
    lights = []
    for i in range(n_l):
        fx = (i + rng.uniform(0.25, 0.75)) / n_l
        a = rng.integers(2)
        p = [rng.uniform(0.25, 0.75) * size[0], rng.uniform(0.25, 0.75) * size[1], size[2] - 0.05]
        p[a] = fx * size[a]
        lights.append(p)
    lights = np.array(lights, np.float32)
    power = (rng.uniform(0.6, 1.4, n_l) * 4.0).astype(np.float32)
    warm = rng.uniform(0, 1)
    light_color = np.array([1.0, 0.92 - 0.08 * warm, 0.8 - 0.2 * warm], np.float32)

    b = boxes
    b.lo = np.array(b.lo, np.float32).reshape(-1, 3)
    b.hi = np.array(b.hi, np.float32).reshape(-1, 3)
    b.color = np.array(b.color, np.float32).reshape(-1, 3)
    b.kind = np.array(b.kind, np.int16)
    b.front = np.array(b.front, np.int16)
    b.param = np.array(b.param, np.float32).reshape(-1, 4)
    b.hole = np.array(b.hole, np.float32)
    b.caster = np.array(b.caster, bool)
    # orient (0..3 = front +x, -x, +y, -y) to face code (2*axis + (1 if + side))
    b.front = np.array([(0, 1), (0, 0), (1, 1), (1, 0)], np.int16)[b.front].dot([2, 1]).astype(
        np.int16) if len(b.front) else b.front
    return _Room(size=size, scene_type=scene_type, boxes=b, footprints=P.footprints, floor=floor,
                 wall_color=wall_color, decals=decals, baseboard=baseboard, ceiling=ceiling,
                 lights=lights, light_power=power, light_color=light_color,
                 salt=int(rng.integers(1 << 30)))


# --------------------------------------------------------------------------------------------
# camera and ray casting


def _camera_basis(yaw: float, pitch: float, roll: float) -> tuple[np.ndarray, ...]:
    """Forward, right and down unit vectors in the world (z up) for a yaw/pitch/roll camera."""
    cp, sp = math.cos(pitch), math.sin(pitch)
    f = np.array([math.cos(yaw) * cp, math.sin(yaw) * cp, sp])
    r = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    u = np.cross(r, f)
    cr, sr = math.cos(roll), math.sin(roll)
    r, u = cr * r + sr * u, -sr * r + cr * u
    return f, r, -u


def _rays(f, r, d, xd=_XD, yd=_YD):
    """World ray directions (3 arrays of (H, W)) scaled so that t is z-depth."""
    return [(f[k] + xd[None, :] * r[k] + yd[:, None] * d[k]).astype(np.float32) for k in range(3)]


def _cast(o, D, size, lo, hi, basis=None):
    """Nearest hit of each ray: z-depth t and object id (0-5 room faces, 6+ furniture boxes)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = [np.float32(1) / D[k] for k in range(3)]
        # inside of the room box: the exit distance along each axis, nearest wins
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
        if len(lo) == 0:
            return t, obj
        rects = _screen_rects(o, lo, hi, basis, D[0].shape) if basis is not None else None
        for b in range(len(lo)):
            if rects is None:
                sl = (slice(None), slice(None))
            else:
                if rects[b] is None:
                    continue
                sl = rects[b]
            tn = tf = None
            for a in range(3):
                ia = inv[a][sl]
                t1 = (lo[b, a] - o[a]) * ia
                t2 = (hi[b, a] - o[a]) * ia
                mn, mx = np.minimum(t1, t2), np.maximum(t1, t2)
                tn = mn if tn is None else np.maximum(tn, mn)
                tf = mx if tf is None else np.minimum(tf, mx)
            ts = t[sl]
            hit = (tn <= tf) & (tn > 1e-4) & (tn < ts)
            if hit.any():
                ts[hit] = tn[hit]
                obj[sl][hit] = 6 + b
    return t, obj


def _screen_rects(o, lo, hi, basis, shape):
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
        u = (FX * x[b] / z[b] + CX - (_S - 1) / 2) / _S
        v = (FY * y[b] / z[b] + CY - (_S - 1) / 2) / _S
        j0, j1 = max(int(math.floor(u.min())), 0), min(int(math.ceil(u.max())) + 1, w)
        i0, i1 = max(int(math.floor(v.min())), 0), min(int(math.ceil(v.max())) + 1, h)
        out.append((slice(i0, i1), slice(j0, j1)) if (j0 < j1 and i0 < i1) else None)
    return out


def _pick_camera(room: _Room, rng: np.random.Generator):
    """A hand-held Kinect pose: near one wall, 1.0-1.7 m high, aimed into the room."""
    W, L, H = (float(v) for v in room.size)
    lo, hi = room.boxes.lo, room.boxes.hi
    best = None
    for _ in range(12):
        k = int(rng.integers(4))  # the wall behind the camera
        axis, along_axis = (0, 1) if k < 2 else (1, 0)
        extent, along = room.size[axis], room.size[along_axis]
        back = rng.uniform(0.25, min(2.0, 0.45 * extent))
        pos = np.zeros(3)
        pos[axis] = back if k % 2 == 0 else extent - back
        pos[along_axis] = rng.uniform(0.3, along - 0.3)
        pos[2] = rng.uniform(1.0, 1.7)
        if any(x0 - 0.25 < pos[0] < x1 + 0.25 and y0 - 0.25 < pos[1] < y1 + 0.25
               for x0, y0, x1, y1, _ in room.footprints):
            continue
        # aim at a piece of furniture in front (people film things), else at a point in the
        # far part of the room (often toward a far corner)
        inward = 1.0 if k % 2 == 0 else -1.0
        ahead = [((x0 + x1) / 2, (y0 + y1) / 2) for x0, y0, x1, y1, _ in room.footprints
                 if inward * (((x0 + x1) / 2, (y0 + y1) / 2)[axis] - pos[axis]) > 1.2]
        if ahead and rng.random() < 0.5:
            tgt = np.array(ahead[rng.integers(len(ahead))])
        else:
            tgt = np.zeros(2)
            far = rng.uniform(0.65, 1.0) * extent
            tgt[axis] = far if k % 2 == 0 else extent - far
            tgt[along_axis] = rng.uniform(-0.1, 1.1) * along
        yaw = math.atan2(tgt[1] - pos[1], tgt[0] - pos[0]) + rng.normal(0, 0.12)
        pitch = math.radians(float(np.clip(rng.normal(-9, 6), -20, 5)))
        roll = math.radians(rng.uniform(-3, 3))
        basis = _camera_basis(yaw, pitch, roll)
        # probe a coarse ray grid: never stare at a wall or a shelf from 30 cm
        D = _rays(*basis, _XD[8::16], _YD[8::16])
        t, obj = _cast(pos.astype(np.float32), D, room.size, lo, hi)
        near = float((t < 0.7).mean())
        dominant = np.bincount(obj.ravel()).max() / obj.size  # one wall filling the view?
        score = float(np.median(t)) - 3.0 * near - 2.0 * max(dominant - 0.7, 0)
        if best is None or score > best[0]:
            best = (score, pos, basis)
        if np.median(t) > 1.6 and near < 0.12 and dominant < 0.7:
            break
    if best is None:  # every try stood inside furniture: stand in the middle of the room
        pos = np.array([W / 2, L / 2, 1.4])
        best = (0.0, pos, _camera_basis(rng.uniform(0, 2 * math.pi), -0.15, 0.0))
    return best[1].astype(np.float32), best[2]


# --------------------------------------------------------------------------------------------
# materials and shading


def _floor_albedo(room: _Room, x, y, salt):
    fl = room.floor
    c = fl["color"]
    if fl["kind"] == "wood":
        a, b = (x, y) if fl["axis"] == 0 else (y, x)  # a: along the planks
        row = np.floor(b / fl["width"])
        off = _hash01(row.astype(np.int32), np.zeros_like(row, np.int32), salt) * fl["length"]
        col = np.floor((a + off) / fl["length"])
        v = _hash01(row.astype(np.int32), col.astype(np.int32), salt + 1)
        shade = 1 + fl["var"] * (2 * v - 1)
        grain = 1 + 0.06 * np.sin(a * 23.0 + 9 * v + 3 * np.sin(b * 40.0 + a * 2))
        fb = b / fl["width"] - row
        fa = (a + off) / fl["length"] - col
        seam = (fb < 0.06) | (fa * fl["length"] < 0.006)
        k = shade * grain * np.where(seam, 0.55, 1.0)
        return k[:, None] * c[None, :]
    if fl["kind"] == "tile":
        s = fl["size"]
        ix, iy = np.floor(x / s), np.floor(y / s)
        fx, fy = x / s - ix, y / s - iy
        v = _hash01(ix.astype(np.int32), iy.astype(np.int32), salt)
        k = 1 + fl["var"] * (2 * v - 1)
        if fl["checker"]:
            k = k * np.where((ix + iy) % 2 == 0, 1.0, 0.55)
        g = 0.012 / s
        grout = (fx < g) | (fy < g)
        alb = k[:, None] * c[None, :]
        alb[grout] = fl["grout"]
        return alb
    n = _value_noise(x * 2.0, y * 2.0, salt) * 0.6 + _value_noise(x * 9.0, y * 9.0, salt + 3) * 0.4
    k = 1 + fl["var"] * (2 * n - 1) * 1.5
    return k[:, None] * c[None, :]


def _shade(room: _Room, o, D, t, obj, rng):
    """Linear RGB image, plus per-pixel Kinect dropout propensity, at render resolution."""
    H, W = t.shape
    size = room.size
    P = [o[k] + t * D[k] for k in range(3)]
    Px, Py, Pz = (p.ravel() for p in P)
    objf = obj.ravel()
    n_pix = objf.size
    alb = np.empty((n_pix, 3), np.float32)
    emis = np.zeros((n_pix, 3), np.float32)
    hole = np.zeros(n_pix, np.float32)
    # normal as (axis, sign): room faces point into the room, box faces out of the box
    naxis = np.empty(n_pix, np.int8)
    nsign = np.empty(n_pix, np.float32)
    salt = room.salt

    room_px = objf < _N_FACES
    naxis[room_px] = objf[room_px] // 2
    nsign[room_px] = np.where(objf[room_px] % 2 == 0, 1.0, -1.0)

    # floor
    idx = np.flatnonzero(objf == _FLOOR)
    if idx.size:
        fx, fy = Px[idx], Py[idx]
        alb[idx] = _floor_albedo(room, fx, fy, salt)
        rug = room.floor.get("rug")
        if rug is not None:
            x0, y0, x1, y1 = rug
            m = (fx > x0) & (fx < x1) & (fy > y0) & (fy < y1)
            if m.any():
                c1, c2 = room.floor["rug_colors"]
                bx = np.minimum(np.minimum(fx[m] - x0, x1 - fx[m]), np.minimum(fy[m] - y0,
                                                                                y1 - fy[m]))
                nz = _value_noise(fx[m] * 6, fy[m] * 6, salt + 7)
                ra = np.where((bx < 0.15)[:, None], c2[None], c1[None] * (0.85 + 0.3 * nz[:, None]))
                alb[idx[m]] = ra
    # ceiling (optionally acoustic tiles) with emissive light fixtures
    idx = np.flatnonzero(objf == _CEILING)
    if idx.size:
        cx, cy = Px[idx], Py[idx]
        alb[idx] = room.ceiling["color"]
        if room.ceiling["tiles"]:
            s = room.ceiling["tile"]
            g = ((cx / s) % 1 < 0.03) | ((cy / s) % 1 < 0.03)
            alb[idx[g]] *= 0.75
        for lp, pw in zip(room.lights, room.light_power, strict=True):
            if room.ceiling["panel"]:
                m = (np.abs(cx - lp[0]) < 0.3) & (np.abs(cy - lp[1]) < 0.6)
            else:
                m = (cx - lp[0]) ** 2 + (cy - lp[1]) ** 2 < 0.2**2
            emis[idx[m]] = room.light_color * pw * 1.5
    # walls: per-wall colour, baseboard, doors, windows, pictures
    for k in range(4):
        idx = np.flatnonzero(objf == k)
        if not idx.size:
            continue
        s = (Py if k < 2 else Px)[idx]
        z = Pz[idx]
        vn = _value_noise(s * 0.8, z * 0.8, salt + 11 + k)
        alb[idx] = room.wall_color[k][None] * (0.96 + 0.08 * vn)[:, None]
        bh, bc = room.baseboard
        if bh > 0:
            alb[idx[z < bh]] = bc
        for d in room.decals:
            if d["wall"] != k:
                continue
            m = (s >= d["s0"]) & (s < d["s1"]) & (z >= d["z0"]) & (z < d["z1"])
            if not m.any():
                continue
            j = idx[m]
            ss, zz = s[m] - d["s0"], z[m] - d["z0"]
            w_, h_ = d["s1"] - d["s0"], d["z1"] - d["z0"]
            edge = np.minimum(np.minimum(ss, w_ - ss), np.minimum(h_ - zz, zz if d["kind"] !=
                                                                          "door" else 9.0))
            if d["kind"] == "door":
                a = np.where((edge < 0.06)[:, None], d["frame"][None], d["color"][None])
                inner = (edge > 0.12) & (edge < 0.135)  # panel grooves
                a[inner] *= 0.8
                handle = (np.abs(ss - (w_ - 0.09)) < 0.035) & (np.abs(zz - 1.0) < 0.02)
                a[handle] = (0.6, 0.58, 0.5)
                alb[j] = a
            elif d["kind"] == "window":
                fr = edge < 0.05
                glass = ~fr
                a = np.broadcast_to(d["frame"], (j.size, 3)).copy()
                e = np.zeros((j.size, 3), np.float32)
                a[glass] = 0.05  # glass: dark, reflective
                if d["day"]:  # daylight outside, brighter toward the horizon
                    e[glass] = (3.0 * d["sky"][None] * (1.0 - 0.25 * zz / h_)[:, None])[glass]
                else:
                    e[glass] = d["sky"]
                if d["blinds"]:
                    slat = (zz % 0.035) < 0.028
                    b = glass & slat
                    a[b] = d["color"]
                    e[b] = d["color"] * (1.2 if d["day"] else 0.0)
                if d["curtains"]:
                    cw = 0.3 * w_
                    c = (ss < cw) | (ss > w_ - cw)
                    fold = 0.8 + 0.2 * np.sin(ss * 45)
                    a[c] = d["color"] * fold[c, None]
                    e[c] = 0
                    hole[j[c]] = 0.05
                    glass = glass & ~c
                alb[j] = a
                emis[j] = e
                hole[j[glass]] = d["hole"]
            else:  # picture or whiteboard
                fr = edge < (0.03 if d["kind"] == "picture" else 0.025)
                if d["kind"] == "board":
                    a = np.broadcast_to(np.float32([0.92, 0.92, 0.9]), (j.size, 3)).copy()
                else:
                    nz = _value_noise(ss * 4, zz * 4, d["salt"])[:, None]
                    a = d["c1"][None] * nz + d["c2"][None] * (1 - nz)
                a[fr] = d["frame"]
                alb[j] = a
                hole[j[~fr]] = d["hole"]

    # furniture
    bidx = np.flatnonzero(objf >= _N_FACES)
    if bidx.size:
        bx = room.boxes
        b = objf[bidx] - _N_FACES
        lo, hi = bx.lo[b], bx.hi[b]
        p = np.stack([Px[bidx], Py[bidx], Pz[bidx]], 1)
        dist = np.concatenate([np.abs(p - lo), np.abs(p - hi)], 1)  # faces: lo x,y,z, hi x,y,z
        f6 = np.argmin(dist, 1)
        ax = (f6 % 3).astype(np.int8)
        hi_side = f6 >= 3
        naxis[bidx] = ax
        nsign[bidx] = np.where(hi_side, 1.0, -1.0)
        face = 2 * ax + hi_side  # same code as box.front
        col = bx.color[b]
        kind = bx.kind[b]
        hole[bidx] = bx.hole[b]
        # face-local coordinates: u horizontal along the face, v up (top faces: the two
        # horizontal axes)
        rel = p - lo
        ext = hi - lo
        u = np.where(ax == 0, rel[:, 1], rel[:, 0])
        uext = np.where(ax == 0, ext[:, 1], ext[:, 0])
        v = np.where(ax == 2, rel[:, 1], rel[:, 2])
        vext = np.where(ax == 2, ext[:, 1], ext[:, 2])
        shade = np.ones(bidx.size, np.float32)
        m = kind == _WOOD
        if m.any():
            along = np.where(uext[m] >= vext[m], u[m], v[m])
            across = np.where(uext[m] >= vext[m], v[m], u[m])
            shade[m] = 1 + 0.07 * np.sin(across * 60 + 4 * np.sin(along * 3 + b[m]))
        m = kind == _FABRIC
        if m.any():
            shade[m] = 0.93 + 0.14 * _value_noise(u[m] * 7 + b[m] * 3.1, v[m] * 7, salt + 21)
        m = (kind == _PANELS) & (face == bx.front[b])
        if m.any():
            par = bx.param[b[m]]
            fu = u[m] / uext[m] * par[:, 0]
            fv = v[m] / vext[m] * par[:, 1]
            du = np.minimum(fu % 1, 1 - fu % 1) * uext[m] / par[:, 0]
            dv = np.minimum(fv % 1, 1 - fv % 1) * vext[m] / par[:, 1]
            groove = np.minimum(du, dv) < 0.006
            handle = (np.abs(fu % 1 - 0.5) * uext[m] / par[:, 0] < 0.05) & (
                np.abs(fv % 1 - 0.85) * vext[m] / par[:, 1] < 0.012)
            shade[m] = np.where(groove, 0.45, np.where(handle, 0.3, 1.0))
        m = (kind == _BOOKS) & (face == bx.front[b])
        if m.any():
            par = bx.param[b[m]]
            rowh, bw, fill = par[:, 0], par[:, 1], par[:, 2]
            row = np.floor(v[m] / rowh)
            vr = v[m] - row * rowh
            uu = u[m]
            book = np.floor(uu / bw)
            hb = _hash01(row.astype(np.int32) * 131 + book.astype(np.int32),
                         par[:, 3].astype(np.int32), salt + 31)
            hc = _hash01(book.astype(np.int32), row.astype(np.int32), salt + 37)
            board = (vr < 0.022) | (uu < 0.02) | (uu > uext[m] - 0.02) | (v[m] > vext[m] - 0.02)
            present = (hb < fill) & (vr < rowh * (0.55 + 0.4 * hc))
            bc = np.stack([0.15 + 0.7 * hb, 0.15 + 0.6 * hc, 0.15 + 0.6 * ((hb + hc * 7) % 1)], 1)
            c = np.where(present[:, None], bc, col[m] * 0.25)  # gaps: dark shelf interior
            c = np.where(board[:, None], col[m], c)
            col = col.copy()
            col[m] = c
            hole[bidx[m]] = np.where(present & ~board, 0.12, 0.25)
        m = kind == _SCREEN
        if m.any():
            front = face[m] == bx.front[b[m]]
            shade[m] = np.where(front, 1.0 + 0.6 * (v[m] / vext[m]), 1.0)  # glossy reflection
        alb[bidx] = col * shade[:, None]

    # lighting: ambient + ceiling point lights (Lambert, soft falloff, shadows at 1/2 res)
    amb = np.float32(rng.uniform(0.12, 0.35))
    E = np.zeros(n_pix, np.float32)
    casters = np.flatnonzero(room.boxes.caster)
    for lp, pw in zip(room.lights, room.light_power, strict=True):
        lx, ly, lz = lp[0] - Px, lp[1] - Py, lp[2] - Pz
        d2 = lx * lx + ly * ly + lz * lz
        lcomp = np.where(naxis == 0, lx, np.where(naxis == 1, ly, lz)) * nsign
        ndl = np.maximum(lcomp, 0) / np.sqrt(d2)
        vis = _shadow_factor(room, P, lp, casters)
        E += pw * ndl * vis / (d2 + 0.5)
    # ambient occlusion-like darkening in room corners, under/near furniture, at furniture feet
    ao = np.ones(n_pix, np.float32)
    dx = np.minimum(Px, size[0] - Px)
    dy = np.minimum(Py, size[1] - Py)
    dz = np.minimum(Pz, size[2] - Pz)
    edge = np.where(naxis == 0, np.minimum(dy, dz), np.where(naxis == 1, np.minimum(dx, dz),
                                                              np.minimum(dx, dy)))
    ao *= 1 - 0.35 * np.exp(-edge / 0.25)
    fidx = np.flatnonzero(objf == _FLOOR)
    if fidx.size and room.footprints:
        fx, fy = Px[fidx], Py[fidx]
        occ = np.ones(fidx.size, np.float32)
        for x0, y0, x1, y1, _ in room.footprints:
            ddx = np.maximum(np.maximum(x0 - fx, fx - x1), 0)
            ddy = np.maximum(np.maximum(y0 - fy, fy - y1), 0)
            occ *= 1 - 0.45 * np.exp(-(ddx + ddy) / 0.12)
        ao[fidx] *= occ
    if bidx.size:
        ao[bidx] *= 1 - 0.4 * np.exp(-Pz[bidx] / 0.1)
    light = (E + amb) * ao
    img = alb * light[:, None] * room.light_color[None] + emis
    dark = alb.mean(1) < 0.07
    hole[dark] = np.maximum(hole[dark], 0.35)
    return img.reshape(H, W, 3), hole.reshape(H, W), (naxis.reshape(H, W), nsign.reshape(H, W))


def _shadow_factor(room: _Room, P, lp, casters):
    """Visibility of one light from each surface point (flat array): shadow rays at 1/2 render
    resolution, softened by a blur (real ceiling lights are not points)."""
    if casters.size == 0:
        return np.float32(1.0)
    Ps = [p[::2, ::2] for p in P]
    Ls = [lp[k] - Ps[k] for k in range(3)]
    occluded = np.zeros(Ps[0].shape, bool)
    lo, hi = room.boxes.lo, room.boxes.hi
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = [np.float32(1) / Ls[k] for k in range(3)]
        for b in casters:
            tn = tf = None
            for a in range(3):
                t1 = (lo[b, a] - Ps[a]) * inv[a]
                t2 = (hi[b, a] - Ps[a]) * inv[a]
                mn, mx = np.minimum(t1, t2), np.maximum(t1, t2)
                tn = mn if tn is None else np.maximum(tn, mn)
                tf = mx if tf is None else np.minimum(tf, mx)
            occluded |= (tn < tf) & (tf > 2e-3) & (tn < 1.0)
    vis = _blur3(np.where(occluded, np.float32(0.15), np.float32(1.0)))
    return _up2_linear(vis)[: P[0].shape[0], : P[0].shape[1]].ravel()


# --------------------------------------------------------------------------------------------
# Kinect-like holes


def _holes(depth, hole_prop, normal, D, rng):
    """Invalid-pixel mask of the raw Kinect depth at render resolution."""
    z = depth
    # projector shadow: the IR projector sits to the right of the camera (7.5 cm baseline), so
    # background just left of a foreground edge is not lit by the pattern
    k = FX / _S * 0.075
    up = np.arange(z.shape[1], dtype=np.float32)[None, :] - k / z
    run_min = np.minimum.accumulate(up[:, ::-1], axis=1)[:, ::-1]
    shadow = np.zeros_like(z, bool)
    shadow[:, :-1] = up[:, :-1] > run_min[:, 1:] + 0.3
    # thin dropouts along depth discontinuities (mixed pixels), 1-2 px at 640x480
    lz = np.log(z)
    edge = np.zeros_like(z, bool)
    gx = np.abs(np.diff(lz, axis=1)) > 0.06
    gy = np.abs(np.diff(lz, axis=0)) > 0.06
    edge[:, 1:] |= gx
    edge[:, :-1] |= gx
    edge[1:] |= gy
    edge[:-1] |= gy
    edge &= rng.random(z.shape, dtype=np.float32) < 0.8
    edge = _dilate(edge, 1) & (_smooth_field(rng, (30, 40)) < 0.6) | edge
    # blobs on dark / specular / glass surfaces, plus sparse random ones, more at long range
    f1 = _smooth_field(rng, (6, 8)) * 0.75 + _smooth_field(rng, (30, 40)) * 0.25
    f2 = _smooth_field(rng, (40, 54))
    # f1 is bell-shaped around 0.5: threshold at a quantile to get a chosen random-blob area
    base = np.quantile(f1[::4, ::4], rng.uniform(0.0, 0.06))
    far = np.clip((z - 4.5) / 5.0, 0, 1) * 0.4
    blobs = (f1 < base) | (f2 < hole_prop * 0.7 + far)
    # grazing angles: the projected pattern smears out
    naxis, nsign = normal
    dn = np.where(naxis == 0, D[0], np.where(naxis == 1, D[1], D[2]))
    cos = np.abs(dn) / np.sqrt(D[0] ** 2 + D[1] ** 2 + D[2] ** 2)
    graze = (cos < 0.08) & (f1 < 0.6)
    return shadow | edge | blobs | graze | (z >= MAX_DEPTH)


# --------------------------------------------------------------------------------------------
# frames


def _room_seed(seed: int, room_index: int) -> int:
    return int(np.random.SeedSequence([seed, room_index]).generate_state(1)[0])


def _render_stored(seed: int, view: int = 0, scene_index: int = 1) -> dict:
    """Render one frame in the stored (h5py) layout: image (3, 640, 480), depths (640, 480)."""
    room = _make_room(seed)
    rng = np.random.default_rng([seed, 1, view])
    o, basis = _pick_camera(room, rng)
    D = _rays(*basis)
    t, obj = _cast(o, D, room.size, room.boxes.lo, room.boxes.hi, basis)
    img, hole_prop, normal = _shade(room, o, D, t, obj, rng)

    # camera: auto exposure, white balance, vignetting, gamma, sensor noise
    lum = img[::3, ::3].mean(2)
    expo = rng.uniform(0.45, 0.75) / max(float(np.percentile(lum, 85)), 1e-4)
    wb = np.exp(rng.normal(0, 0.06, 3)).astype(np.float32)
    wb[2] *= np.float32(rng.uniform(0.8, 1.05))  # Kinect frames tend to be warm
    r2 = (_XD[None, :] ** 2 + _YD[:, None] ** 2) / 0.37
    vign = (1 - 0.15 * r2).astype(np.float32)
    img = img * (expo * vign)[..., None] * wb
    img = np.sqrt(np.clip(img, 0, 1))  # gamma 2 (cheaper than 2.2, looks the same)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.006, 0.02))

    # Quantised to 1/4096 m (far finer than the Kinect's resolution): the low mantissa byte
    # becomes constant, which makes the shuffled chunks compress 3x better and faster.
    depth = np.round(np.minimum(t, np.float32(MAX_DEPTH)) * 4096) * np.float32(1 / 4096)
    holes = _holes(t, hole_prop, normal, D, rng)

    # Stored layout is the transpose (MATLAB v7.3). Nearest upsampling everywhere: the network
    # reads the image at 320x240 anyway, and 2x2 blocks compress twice as well as bilinear.
    img8 = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    image = _up2_nearest(np.transpose(img8, (2, 1, 0)))  # (3, 640, 480)
    depth_s = _up2_nearest(depth.T)
    raw_s = np.where(_up2_nearest(holes.T), np.float32(0), depth_s)
    # Kinect/RGB registration leaves an invalid band on the left (and a thin one on top)
    raw_s[: int(rng.integers(8, 28))] = 0
    raw_s[:, : int(rng.integers(0, 6))] = 0
    return dict(image=image, depth=depth_s, raw_depth=raw_s,
                scene=f"{room.scene_type}_{scene_index:04d}", scene_type=room.scene_type)


def render_frame(seed: int, view: int = 0, scene_index: int = 1) -> dict:
    """Render one SynthRooms frame.

    Args:
        seed: defines the room (size, furniture, materials, lights); the same seed and view
            always give the same frame.
        view: which camera in that room (views of one room are different hand-held poses).
        scene_index: number in the scene name, e.g. ``bedroom_0007``.

    Returns:
        dict with ``image`` uint8 (480, 640, 3) RGB, ``depth`` float32 (480, 640) metres
        (filled, > 0 everywhere), ``raw_depth`` float32 (480, 640) (0 = Kinect hole, else equal to
        ``depth``), ``scene`` str and ``scene_type`` str.
    """
    fr = _render_stored(seed, view, scene_index)
    return dict(image=np.ascontiguousarray(np.transpose(fr["image"], (2, 1, 0))),
                depth=np.ascontiguousarray(fr["depth"].T),
                raw_depth=np.ascontiguousarray(fr["raw_depth"].T),
                scene=fr["scene"], scene_type=fr["scene_type"])


def _frame_plan(n_frames: int, seed: int) -> list[tuple[int, int, int]]:
    """(room seed, view, scene index) of each frame: 1-3 consecutive views per room, like NYU
    scenes. Depends only on (n_frames, seed), so results do not depend on the worker count."""
    rng = np.random.default_rng([seed, 0xF00D])
    plan: list[tuple[int, int, int]] = []
    room = 0
    while len(plan) < n_frames:
        views = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
        rs = _room_seed(seed, room)
        plan += [(rs, v, room + 1) for v in range(views)]
        room += 1
    return plan[:n_frames]


# --------------------------------------------------------------------------------------------
# HDF5 writing: chunks are compressed in the workers and written raw by the parent


_IMG_SHAPE = (3, WIDTH, HEIGHT)
_DEPTH_SHAPE = (WIDTH, HEIGHT)


def _deflate(a: np.ndarray, level: int, shuffle: bool) -> bytes:
    """One chunk through HDF5's shuffle + deflate pipeline, done here instead of in the writer."""
    a = np.ascontiguousarray(a)
    buf = a.view(np.uint8).reshape(-1, a.dtype.itemsize).T.tobytes() if shuffle else a.tobytes()
    return zlib.compress(buf, level)


def _frame_task(args: tuple) -> tuple:
    i, seed, view, scene_index, level = args
    fr = _render_stored(seed, view, scene_index)
    return (i, _deflate(fr["image"], level, False), _deflate(fr["depth"], level, True),
            _deflate(fr["raw_depth"], level, True), fr["scene"], fr["scene_type"])


@contextlib.contextmanager
def _clean_spawn_env() -> Iterator[None]:
    """Start spawn workers with one BLAS/OpenMP thread each and without re-importing the caller's
    __main__ (a training script would drag torch into every worker)."""
    saved_env = {k: os.environ.get(k) for k in _WORKER_ENV}
    os.environ.update(_WORKER_ENV)
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _write_refs(f, name: str, values: list[str]) -> None:
    """A (1, N) cell array of strings the way MATLAB v7.3 stores it: object references to uint16
    char arrays in ``#refs#`` (one referent per distinct string)."""
    import h5py

    refs_grp = f.require_group("#refs#")
    cache: dict[str, object] = {}
    refs = np.empty((1, len(values)), dtype=h5py.ref_dtype)
    for i, v in enumerate(values):
        if v not in cache:
            ds = refs_grp.create_dataset(f"{name}_{len(cache)}",
                                         data=np.array([[ord(c)] for c in v], np.uint16))
            ds.attrs["MATLAB_class"] = np.bytes_("char")
            ds.attrs["MATLAB_int_decode"] = np.int32(2)
            cache[v] = ds.ref
        refs[0, i] = cache[v]
    d = f.create_dataset(name, data=refs)
    d.attrs["MATLAB_class"] = np.bytes_("cell")


def generate(path: str | Path, n_frames: int = 2000, seed: int = 0, workers: int | None = None,
             progress: bool = True, level: int = 1) -> Path:
    """Render ``n_frames`` frames into one NYU-V2-layout HDF5 file at ``path``.

    Deterministic in (n_frames, seed): the worker count does not change a byte of the arrays.
    Frame i is ``render_frame(*_frame_plan(n_frames, seed)[i])``: rooms get seeds derived from
    ``seed``, and 1-3 consecutive frames are views of the same room (one NYU-style scene).
    The file is written to a temporary name and renamed into place only when complete, so an
    interrupted run never leaves a file that looks finished.

    Args:
        path: output file (conventionally ``.mat``, as NYU's).
        n_frames: number of frames.
        seed: dataset seed.
        workers: rendering processes (default: usable CPU cores). 1 renders in this process.
        progress: show a progress bar and print the throughput at the end.
        level: gzip level of the per-frame chunks.

    Returns:
        The path written.
    """
    import h5py

    path = Path(path)
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
    workers = max(1, min(int(workers), n_frames))
    import multiprocessing as mp

    if mp.current_process().daemon:  # e.g. inside a DataLoader worker: no child processes
        workers = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}_{time.monotonic_ns() % 10**9}")
    plan = _frame_plan(n_frames, seed)
    tasks = [(i, s, v, si, level) for i, (s, v, si) in enumerate(plan)]
    scenes = [""] * n_frames
    types_ = [""] * n_frames
    t0 = time.perf_counter()
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["generator"] = "depth_lightning.data.synthrooms"
            f.attrs["generator_version"] = GENERATOR_VERSION
            f.attrs["seed"] = seed
            f.attrs["n_frames"] = n_frames
            f.attrs["intrinsics_fx_fy_cx_cy"] = np.array([FX, FY, CX, CY])
            kw = dict(compression="gzip", compression_opts=level)
            images = f.create_dataset("images", (n_frames, *_IMG_SHAPE), np.uint8,
                                      chunks=(1, *_IMG_SHAPE), **kw)
            dsets = [images] + [f.create_dataset(k, (n_frames, *_DEPTH_SHAPE), np.float32,
                                                 chunks=(1, *_DEPTH_SHAPE), shuffle=True, **kw)
                                for k in ("depths", "rawDepths")]
            with _progress(progress, n_frames) as advance:
                for i, *chunks, scene, stype in _run_tasks(tasks, workers):
                    for ds, c in zip(dsets, chunks, strict=True):
                        ds.id.write_direct_chunk((i,) + (0,) * (ds.ndim - 1), c)
                    scenes[i], types_[i] = scene, stype
                    advance()
            _write_refs(f, "scenes", scenes)
            _write_refs(f, "sceneTypes", types_)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dt = time.perf_counter() - t0
    if progress:
        print(f"SynthRooms: {n_frames} frames in {dt:.1f} s ({n_frames / dt:.1f} frames/s, "
              f"{workers} workers), {path.stat().st_size / 1e6:.0f} MB -> {path}")
    return path


def _run_tasks(tasks: list, workers: int) -> Iterator[tuple]:
    if workers == 1:
        for t in tasks:
            yield _frame_task(t)
        return
    import importlib
    import multiprocessing as mp

    # the task function by its importable name, even when this file runs as __main__
    task = importlib.import_module("depth_lightning.data.synthrooms")._frame_task
    ctx = mp.get_context("spawn")  # no inherited torch/OpenMP state, env applies to numpy
    with _clean_spawn_env():
        pool = ctx.Pool(workers)
    with pool:
        yield from pool.imap_unordered(task, tasks, chunksize=2)


@contextlib.contextmanager
def _progress(enabled: bool, total: int):
    if not enabled:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("SynthRooms"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn()) as bar:
        tid = bar.add_task("render", total=total)
        yield lambda: bar.advance(tid)


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    """Exclusive advisory lock (POSIX); elsewhere the atomic rename alone keeps races harmless."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def synthrooms_path(cache_dir: str | Path, n_frames: int = 2000, seed: int = 0) -> Path:
    """Cache file name of a SynthRooms dataset: changes with the generator version."""
    return Path(cache_dir) / f"synthrooms_v{GENERATOR_VERSION}_n{n_frames}_s{seed}.mat"


def ensure_synthrooms(cache_dir: str | Path, n_frames: int = 2000, seed: int = 0) -> Path:
    """Path of the SynthRooms file in ``cache_dir``, generating it only if it is missing.

    Two processes racing are harmless: the second waits on a lock file and then finds the file
    (and the file only ever appears complete, by atomic rename).
    """
    path = synthrooms_path(cache_dir, n_frames, seed)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(path.with_name(path.name + ".lock")):
        if not path.exists():
            generate(path, n_frames=n_frames, seed=seed)
    return path


# --------------------------------------------------------------------------------------------
# preview and CLI


def save_preview(h5_path: str | Path, png: str | Path, n: int = 8) -> Path:
    """Grid of the first ``n`` frames (RGB, filled depth, raw depth) read back from the file."""
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with h5py.File(h5_path, "r") as f:
        total = f["images"].shape[0]
        idx = np.unique(np.linspace(0, total - 1, min(n, total)).astype(int))
        names = ["".join(map(chr, f[r][()].ravel())) for r in f["scenes"][0, idx]]
        rows = [(f["images"][i].T, f["depths"][i].T, f["rawDepths"][i].T) for i in idx]
    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3 * len(rows)), squeeze=False,
                             layout="constrained")
    for ax_row, (img, dep, raw), name in zip(axes, rows, names, strict=True):
        ax_row[0].imshow(img)
        ax_row[0].set_title(name, fontsize=8)
        im = ax_row[1].imshow(dep, cmap="magma_r", vmin=0, vmax=8)
        ax_row[1].set_title(f"depth {dep.min():.2f}-{dep.max():.2f} m", fontsize=8)
        ax_row[2].imshow(np.ma.masked_equal(raw, 0), cmap="magma_r", vmin=0, vmax=8)
        ax_row[2].set_title(f"raw, holes {(raw == 0).mean():.0%}", fontsize=8)
        for a in ax_row:
            a.axis("off")
    fig.colorbar(im, ax=axes[:, 1:].ravel().tolist(), shrink=0.3, label="depth (m)")
    fig.savefig(png, dpi=80, bbox_inches="tight")
    plt.close(fig)
    return Path(png)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m depth_lightning.data.synthrooms",
        description="Generate a SynthRooms dataset in the NYU Depth V2 labeled layout.")
    p.add_argument("out", type=Path, help="output .mat (HDF5) file")
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--level", type=int, default=1, help="gzip level (default 1)")
    p.add_argument("--preview", type=Path, default=None, help="also write a PNG grid of frames")
    a = p.parse_args(argv)
    generate(a.out, n_frames=a.frames, seed=a.seed, workers=a.workers, level=a.level)
    if a.preview is not None:
        print(f"preview -> {save_preview(a.out, a.preview)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
