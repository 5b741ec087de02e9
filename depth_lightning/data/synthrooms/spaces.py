"""The `spaces` feature: the institutional interiors NYU was filmed in (offices, corridors,
classrooms, labs, basements), with their larger and deeper rooms.

A space is still one room box, but often split by a partition wall with a doorway, so a frame
sees through it into a further space (NYU's long depths come from doorways and corridors);
corridors are long and narrow with doors along them. Ceilings are drop ceilings with a tile grid
and fluorescent panels or recessed downlights; basements and labs get pipes and ducts.
Drawn from generators of their own, so rooms without the feature are unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from . import clutter
from .furniture import (
    Placer,
    add_cabinet,
    add_chairs_at,
    add_floor_item,
    add_free_chair,
    add_shelf,
    add_table,
)
from .layout import _add_pictures, _add_windows, _doors, _walls
from .scene import FABRIC_PALETTE, FURN_PALETTE, PLAIN, WALL_PALETTE, Boxes, Room, pick, rand_color

SPACE_TYPES = ("office", "corridor", "classroom", "lab", "basement")
_WEIGHTS = (0.3, 0.2, 0.15, 0.15, 0.2)
P_SPACE = 0.65  # the rest stay homes (NYU V2 is half homes)
_Z = (0, 0, 0, 0)
# (W, L, H) ranges per kind: L is the long axis (y)
_SIZES = {"office": ((4.0, 8.0), (6.0, 12.0), (2.6, 3.0)),
          "corridor": ((1.6, 2.8), (7.0, 10.5), (2.5, 2.9)),
          "classroom": ((6.0, 9.0), (7.0, 11.0), (2.7, 3.2)),
          "lab": ((4.0, 7.0), (5.0, 10.0), (2.6, 3.2)),
          "basement": ((3.5, 7.0), (5.0, 11.0), (2.1, 2.5))}


def space_type(seed: int) -> str | None:
    """The kind of space of a room seed, or None for a home room (the v1 generator's)."""
    rng = np.random.default_rng([seed, 0, 0x5FACE])
    if rng.random() >= P_SPACE:
        return None
    return SPACE_TYPES[int(rng.choice(len(SPACE_TYPES), p=_WEIGHTS))]


def _box(P: Placer, lo, hi, col, hole=0.0, caster=True) -> None:
    P.boxes.add(tuple(lo), tuple(hi), col, PLAIN, 0, _Z, hole, caster)


def _partition(P: Placer, rng, size, col) -> None:
    """A wall across the room (at y = yp) with a doorway or a wide opening into the far part."""
    W, L, H = (float(v) for v in size)
    yp, th = L * rng.uniform(0.45, 0.7), 0.12
    dw = rng.uniform(0.9, 1.2) if rng.random() < 0.6 else rng.uniform(1.6, min(3.0, W - 0.6))
    g0 = rng.uniform(0.2, W - dw - 0.2)
    dh = min(H, rng.uniform(2.0, 2.2)) if rng.random() < 0.7 else H
    for x0, x1 in ((0.0, g0), (g0 + dw, W)):
        if x1 - x0 > 0.02:
            _box(P, (x0, yp, 0.0), (x1, yp + th, H), col)
            P.commit((x0, yp, x1, yp + th), H)
    if dh < H:
        _box(P, (g0, yp, dh), (g0 + dw, yp + th, H), col)
    P.rects.append((g0 - 0.1, yp - 0.9, g0 + dw + 0.1, yp + th + 0.9))  # keep the way free


def _pipes(P: Placer, rng, size, n) -> None:
    """Pipes and a duct along the ceiling (thin: no shadows)."""
    W, L, H = (float(v) for v in size)
    metal = rand_color(rng, (0.6, 0.6, 0.6), 0.15)
    for _ in range(n):
        d = rng.uniform(0.04, 0.15)
        z1 = H - rng.uniform(0.02, 0.3)
        c = pick(rng, [(0.6, 0.6, 0.6), (0.85, 0.85, 0.82), (0.55, 0.3, 0.15), (0.2, 0.2, 0.2)])
        if rng.random() < 0.7:  # along the long axis
            x = rng.uniform(0.1, W - 0.2)
            _box(P, (x, 0.0, z1 - d), (x + d, L, z1), c, 0.2, False)
        else:
            y = rng.uniform(0.1, L - 0.2)
            _box(P, (0.0, y, z1 - d), (W, y + d, z1), c, 0.2, False)
    if rng.random() < 0.6:
        dw, dh = rng.uniform(0.3, 0.6), rng.uniform(0.2, 0.4)
        x = rng.uniform(0.2, W - dw - 0.2)
        _box(P, (x, 0.0, H - dh - 0.05), (x + dw, L, H - 0.05), metal, 0.3, False)


def _desks(P: Placer, rng, n, kind="desk", wall=True, chairs=1) -> None:
    for _ in range(n):
        t = add_table(P, rng, kind, wall=wall if rng.random() < 0.7 else not wall)
        if t is not None and chairs:
            add_chairs_at(P, rng, t, chairs, pick(rng, FABRIC_PALETTE + FURN_PALETTE))


def _furnish(P: Placer, rng, kind: str, size) -> None:
    """Furniture by kind of space, more in bigger ones."""
    area = float(size[0] * size[1])
    if kind == "office":
        _desks(P, rng, int(np.clip(area / 7, 2, 9)))
        for _ in range(int(rng.integers(1, 4))):
            add_shelf(P, rng) if rng.random() < 0.5 else add_cabinet(P, rng, "dresser")
    elif kind == "classroom":
        _desks(P, rng, int(np.clip(area / 5, 4, 12)), "dining", wall=False, chairs=2)
        add_table(P, rng, "desk")
    elif kind == "lab":
        for _ in range(int(rng.integers(1, 4))):
            add_cabinet(P, rng, "counter")
        _desks(P, rng, int(np.clip(area / 10, 1, 4)), "dining", wall=False, chairs=0)
        for _ in range(int(rng.integers(1, 5))):
            add_free_chair(P, rng)
        add_shelf(P, rng)
    elif kind == "basement":
        for _ in range(int(rng.integers(1, 4))):
            add_shelf(P, rng) if rng.random() < 0.3 else add_cabinet(P, rng, "wardrobe")
        for _ in range(int(rng.integers(2, 7))):
            add_floor_item(P, rng)
    else:  # corridor: a bin, a bench, a cabinet
        for _ in range(int(rng.integers(0, 3))):
            add_floor_item(P, rng)
        if rng.random() < 0.3:
            add_cabinet(P, rng, "dresser")


def _corridor_doors(rng, size) -> list[dict]:
    """Doors along both long walls of a corridor (its walls 0 and 1 run along y)."""
    decals = []
    for k in (0, 1):
        s = rng.uniform(0.3, 2.0)
        while s < size[1] - 1.2:
            dw = rng.uniform(0.85, 1.0)
            col = pick(rng, [(0.45, 0.28, 0.14), (0.85, 0.84, 0.8), (0.55, 0.15, 0.12),
                             (0.3, 0.4, 0.55)], 0.05)
            decals.append(dict(wall=k, s0=s, s1=s + dw, z0=0.0, z1=rng.uniform(2.0, 2.15),
                               kind="door", color=col, frame=rand_color(rng, (0.7, 0.7, 0.7),
                                                                        0.1), hole=0.0))
            s += dw + rng.uniform(1.0, 4.0)
    return decals


def _floor(rng, kind: str) -> dict:
    """Vinyl tiles, office carpet, wood, or concrete (a grey mottle) by kind."""
    if kind == "basement" or (kind == "lab" and rng.random() < 0.3):
        return dict(kind="carpet", color=rand_color(rng, (0.5, 0.49, 0.46), 0.1),
                    var=rng.uniform(0.12, 0.25))
    fk = rng.choice(["tile", "carpet", "wood"], p=[0.5, 0.35, 0.15])
    if fk == "tile":
        return dict(kind="tile", color=rand_color(rng, [(0.75, 0.73, 0.68), (0.6, 0.6, 0.58),
                    (0.55, 0.5, 0.45)][rng.integers(3)], 0.06), size=rng.uniform(0.3, 0.6),
                    grout=rand_color(rng, (0.45, 0.45, 0.43), 0.1), var=rng.uniform(0.03, 0.1),
                    checker=rng.random() < 0.1)
    if fk == "wood":
        return dict(kind="wood", color=rand_color(rng, (0.6, 0.4, 0.22), 0.15),
                    width=rng.uniform(0.07, 0.15), length=rng.uniform(0.8, 2.0),
                    axis=1, var=rng.uniform(0.08, 0.2))
    return dict(kind="carpet", color=pick(rng, [(0.3, 0.3, 0.33), (0.35, 0.38, 0.45),
                                                (0.45, 0.42, 0.38)], 0.1),
                var=rng.uniform(0.05, 0.12))


def _lights(rng, size, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ceiling lights on a grid (about one per 3 m, at most 6: each costs a full shading and
    shadow pass), powers and the colour."""
    W, L, H = (float(v) for v in size)
    nx = max(1, min(2, round(W / 3.0)))
    ny = max(1, min(6 // nx, math.ceil(L / rng.uniform(2.8, 3.8))))
    pts = [((i + 0.5) * W / nx, (j + 0.5) * L / ny, H - 0.05) for i in range(nx)
           for j in range(ny)]
    lights = np.array(pts, np.float32)
    lights[:, :2] += rng.normal(0, 0.1, (len(pts), 2)).astype(np.float32)
    power = (rng.uniform(0.6, 1.3, len(pts)) * (2.5 if kind == "basement" else 3.5))
    cool = rng.uniform(0, 1)  # fluorescent: cool white to greenish
    color = np.array([0.95 - 0.1 * cool, 0.97, 0.85 + 0.12 * cool], np.float32)
    if kind == "basement" and rng.random() < 0.5:
        color = np.array([1.0, 0.85, 0.65], np.float32)  # bare incandescent bulbs
    return lights, power.astype(np.float32), color


def make_space(seed: int, kind: str, with_clutter: bool) -> Room:
    """A room of the given kind of space from its seed (see `space_type`)."""
    rng = np.random.default_rng([seed, 0, 0x5FACE, 1])
    (w0, w1), (l0, l1), (h0, h1) = _SIZES[kind]
    size = np.array([rng.uniform(w0, w1), rng.uniform(l0, l1), rng.uniform(h0, h1)], np.float32)
    P = Placer(rng, size, Boxes())
    wall_color, baseboard = _walls(rng)
    if kind == "basement" and rng.random() < 0.6:
        wall_color[:] = rand_color(rng, pick(rng, WALL_PALETTE[-4:] + [(0.5, 0.35, 0.3)]), 0.1)
    decals = _corridor_doors(rng, size) if kind == "corridor" else _doors(P, rng, size)
    if kind != "corridor" and rng.random() < 0.75:
        _partition(P, rng, size, wall_color[0] * np.float32(rng.uniform(0.9, 1.05)))
    if kind in ("basement", "lab") or rng.random() < 0.15:
        _pipes(P, rng, size, int(rng.integers(2, 7)))
    _furnish(P, rng, kind, size)
    _add_windows(rng, size, decals) if kind != "basement" else None
    _add_pictures(rng, size, "office" if kind in ("office", "classroom", "lab") else "home",
                  decals)
    floor = _floor(rng, kind)
    tiles = kind != "basement" and rng.random() < 0.85
    ceiling = dict(color=rand_color(rng, (0.86, 0.86, 0.84), 0.03), tiles=tiles,
                   tile=rng.uniform(0.58, 0.62), panel=tiles and rng.random() < 0.7)
    lights, power, light_color = _lights(rng, size, kind)
    salt = int(rng.integers(1 << 30))
    view = rng.random()
    if with_clutter:
        P.rng = np.random.default_rng([seed, 0, 0xC1])
        for _ in range(2 if kind in ("basement", "lab") else 1):  # the most crowded kinds
            clutter.scatter(P, P.rng)
    return Room(size=size, scene_type=kind, boxes=P.boxes.finish(), footprints=P.footprints,
                floor=floor, wall_color=wall_color, decals=decals, baseboard=baseboard,
                ceiling=ceiling, lights=lights, light_power=power, light_color=light_color,
                salt=salt, shadow_step=4, pitch=-4.0,  # offices: ceilings are in view
                view_walls=(2, 3) if kind == "corridor" and view < 0.85 else None)
