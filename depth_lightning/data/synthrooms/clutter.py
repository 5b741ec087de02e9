"""The `clutter` feature: the small things that fill real offices, labs and basements.

Objects on furniture tops (papers, books, boxes, bottles, mugs, a keyboard), things on the floor
(cardboard boxes, stacks of them, bins, bags), thin-legged chairs and stools, and open shelf
units full of items. Small parts cast no shadows (shadow rays are the costly part of a frame and
their shadows would be a few pixels); everything is ray cast, so ``depths`` sees all of it.
Drawn from its own generator after the room is built, so the room itself does not change.
"""

from __future__ import annotations

import numpy as np

from .furniture import Placer
from .scene import FABRIC, FABRIC_PALETTE, FURN_PALETTE, PANELS, PLAIN, WOOD, pick, rand_color

_Z = (0, 0, 0, 0)
# colours of office things: paper white, cardboard, black plastic, grey metal, bright packaging
_THINGS = [(0.9, 0.9, 0.88), (0.62, 0.48, 0.3), (0.08, 0.08, 0.09), (0.55, 0.56, 0.58),
           (0.75, 0.2, 0.15), (0.2, 0.35, 0.65), (0.85, 0.75, 0.2), (0.3, 0.55, 0.35)]


def _part(x0, x1, y0, y1, z0, z1, col, kind=PLAIN, hole=0.1):
    return (x0, x1, y0, y1, z0, z1, col, kind, _Z, hole, False)


def _small_thing(rng, x, y, z) -> list:
    """One object standing at local (x, y) on a surface at height z."""
    kind = rng.choice(["paper", "book", "box", "bottle", "mug", "keyboard"],
                      p=[0.22, 0.2, 0.22, 0.14, 0.12, 0.1])
    col = pick(rng, _THINGS + FABRIC_PALETTE, 0.12)
    if kind == "paper":
        sx, sy, h = rng.uniform(0.21, 0.32), rng.uniform(0.21, 0.3), rng.uniform(0.005, 0.06)
        col = rand_color(rng, (0.9, 0.9, 0.88), 0.03)
    elif kind == "book":
        sx, sy, h = rng.uniform(0.15, 0.3), rng.uniform(0.1, 0.24), rng.uniform(0.02, 0.12)
    elif kind == "box":
        sx, sy, h = rng.uniform(0.08, 0.3), rng.uniform(0.08, 0.25), rng.uniform(0.05, 0.25)
    elif kind == "bottle":
        sx = sy = rng.uniform(0.05, 0.09)
        h = rng.uniform(0.15, 0.32)
    elif kind == "mug":
        sx = sy = rng.uniform(0.07, 0.1)
        h = rng.uniform(0.08, 0.12)
    else:
        sx, sy, h = rng.uniform(0.4, 0.46), rng.uniform(0.13, 0.17), 0.03
        col = rand_color(rng, (0.12, 0.12, 0.13), 0.1)
    return [_part(x, x + sx, y, y + sy, z, z + h, col, hole=0.3 if kind == "bottle" else 0.1)]


def _tops(P: Placer) -> list[tuple]:
    """Furniture tops clutter can stand on: (x0, y0, x1, y1, z) in world coordinates."""
    b = P.boxes
    out = []
    for lo, hi, kind, caster in zip(b.lo, b.hi, b.kind, b.caster, strict=True):
        dx, dy, z = hi[0] - lo[0], hi[1] - lo[1], hi[2]
        if caster and kind in (WOOD, PANELS, PLAIN) and 0.35 < z < 1.25 and min(dx, dy) > 0.25 \
                and dx * dy > 0.12:
            out.append((lo[0], lo[1], hi[0], hi[1], z))
    return out


def _on_tops(P: Placer, rng) -> None:
    for x0, y0, x1, y1, z in _tops(P):
        area = (x1 - x0) * (y1 - y0)
        for _ in range(int(min(rng.poisson(area * 5), 10))):
            x, y = rng.uniform(x0, x1 - 0.1), rng.uniform(y0, y1 - 0.1)
            parts = _small_thing(rng, 0.0, 0.0, z)
            # keep it on the top: clip its far edges to the surface
            parts = [(a0, min(a1, x1 - x), c0, min(c1, y1 - y), *rest)
                     for a0, a1, c0, c1, *rest in parts]
            P.emit(lambda a0, a1, c0, c1, x=x, y=y: (x + a0, y + c0, x + a1, y + c1), parts, 0)


def _floor_thing(P: Placer, rng) -> bool:
    """A cardboard box (or a stack), a bin or a bag, by a wall or free in the room."""
    kind = rng.choice(["box", "stack", "bin", "bag"], p=[0.35, 0.25, 0.25, 0.15])
    w, dp = rng.uniform(0.25, 0.6), rng.uniform(0.25, 0.5)
    parts, z = [], 0.0
    for i in range(int(rng.integers(2, 4)) if kind == "stack" else 1):
        h = rng.uniform(0.2, 0.45) if kind != "bin" else rng.uniform(0.3, 0.5)
        col = (rand_color(rng, (0.62, 0.48, 0.3), 0.1) if kind in ("box", "stack") else
               pick(rng, _THINGS + FURN_PALETTE, 0.1))
        s = 0.03 * i
        parts.append(_part(s, w - s, s, dp - s, z, z + h, col,
                           FABRIC if kind == "bag" else PLAIN))
        z += h
    spot = (P.against_wall(w, dp, gap=rng.uniform(0.0, 0.4), tries=8) if rng.random() < 0.8
            else P.in_middle(w, dp, tries=8))
    return P.place(spot, parts, z)


def _thin_chair(P: Placer, rng) -> bool:
    """A chair or stool on thin metal legs (the legs are what NYU's depth edges are full of)."""
    sw = sd = rng.uniform(0.38, 0.5)
    sh = rng.uniform(0.44, 0.75 if rng.random() < 0.3 else 0.5)
    col = pick(rng, FABRIC_PALETTE + FURN_PALETTE, 0.1)
    metal = rand_color(rng, (0.2, 0.2, 0.22) if rng.random() < 0.6 else (0.6, 0.6, 0.62), 0.1)
    t = rng.uniform(0.015, 0.025)
    parts = [_part(0, sw, 0, sd, sh - 0.04, sh, col, FABRIC, 0.0)]
    for x in (0.02, sw - 0.02 - t):
        for y in (0.02, sd - 0.02 - t):
            parts.append(_part(x, x + t, y, y + t, 0.0, sh - 0.04, metal, hole=0.3))
    if sh < 0.6:  # a chair back on two posts
        parts.append(_part(0.03, sw - 0.03, 0.0, 0.03, sh + 0.15, sh + rng.uniform(0.35, 0.5),
                           col, FABRIC, 0.0))
        for x in (0.04, sw - 0.04 - t):
            parts.append(_part(x, x + t, 0.0, t, sh, sh + 0.2, metal, hole=0.3))
    spot = P.in_middle(sw, sd, tries=8) if rng.random() < 0.6 else P.against_wall(
        sw, sd, gap=rng.uniform(0.1, 0.8), tries=8)
    return P.place(spot, parts, sh)


def _open_shelf(P: Placer, rng) -> bool:
    """A metal or wooden open shelf unit against a wall, its boards loaded with things."""
    w, dp, h = rng.uniform(0.8, 1.8), rng.uniform(0.3, 0.5), rng.uniform(1.4, 2.2)
    spot = P.against_wall(w, dp, gap=0.0, tries=10)
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    col = (rand_color(rng, (0.6, 0.6, 0.62), 0.1) if rng.random() < 0.5 else
           pick(rng, FURN_PALETTE[:4] + [(0.6, 0.4, 0.22)], 0.05))
    t = 0.03
    parts = [_part(x, x + t, y, y + t, 0.0, h, col, hole=0.2)
             for x in (0.0, w - t) for y in (0.0, dp - t)]
    n = int(rng.integers(3, 6))
    for i in range(n):
        z = 0.08 + i * (h - 0.1) / (n - 1) if n > 1 else 0.08
        parts.append(_part(0.0, w, 0.0, dp, z - 0.02, z, col, hole=0.05))
        if z > h - 0.1:
            continue
        x = 0.03 + rng.uniform(0, 0.06)
        room = min((h - 0.1) / (n - 1) - 0.04, 0.4)
        while x < w - 0.12:
            sx = rng.uniform(0.05, 0.35)
            if rng.random() < 0.8:
                ht = rng.uniform(0.08, max(room, 0.1))
                y0 = rng.uniform(0.0, 0.12)
                parts.append(_part(x, min(x + sx, w - 0.03), y0, dp - 0.02, z, z + ht,
                                   pick(rng, _THINGS + FABRIC_PALETTE, 0.15)))
            x += sx + rng.uniform(0.0, 0.06)
    P.emit(to_world, parts, orient)
    P.commit(fp, h)
    return True


def scatter(P: Placer, rng: np.random.Generator) -> None:
    """Add clutter to a furnished room (before its boxes are finished), about in proportion to
    its floor area."""
    area = float(P.size[0] * P.size[1])
    _on_tops(P, rng)
    for _ in range(int(rng.integers(0, 2 + area // 12))):
        _open_shelf(P, rng)
    for _ in range(int(rng.integers(1, 3 + area // 8))):
        _thin_chair(P, rng)
    for _ in range(int(rng.integers(2, 5 + area // 10))):
        _floor_thing(P, rng)
