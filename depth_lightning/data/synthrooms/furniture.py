"""Furniture: the placer that keeps footprints apart, and one builder per kind of piece.

A piece is built in local coordinates (x' along its width, y' from its back to its front, z up)
as parts ``(x0, x1, y0, y1, z0, z1, colour, kind, param, hole, caster)`` and mapped into the room
by the placer.
"""

from __future__ import annotations

import numpy as np

from .scene import (
    BOOKS,
    FABRIC,
    FABRIC_PALETTE,
    FURN_PALETTE,
    PANELS,
    PLAIN,
    SCREEN,
    WOOD,
    WOOD_PALETTE,
    Boxes,
    pick,
    rand_color,
)


class Placer:
    """Places furniture footprints in the room without overlaps (rejection sampling)."""

    def __init__(self, rng, size, boxes: Boxes):
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

    def place(self, spot, parts, height) -> bool:
        """Emit `parts` at a found `spot` (from against_wall / in_middle) and block its
        footprint; False when no spot was found."""
        if spot is None:
            return False
        orient, _, _, to_world, fp = spot
        self.emit(to_world, parts, orient)
        self.commit(fp, height)
        return True

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
            parts.append((x, x + t, y, y + t, 0.0, h, col, PLAIN, (0, 0, 0, 0), 0.0, False))
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
        col = pick(rng, FABRIC_PALETTE + FURN_PALETTE, 0.15)
        parts.append((cx, cx + sx, cy, cy + sy, z, z + h, col, PLAIN, (0, 0, 0, 0), 0.1, False))
    return parts


def _table_size(rng, kind: str):
    if kind == "desk":
        return rng.uniform(1.0, 1.6), rng.uniform(0.6, 0.8), rng.uniform(0.72, 0.77)
    if kind == "dining":
        return rng.uniform(1.2, 2.0), rng.uniform(0.8, 1.0), rng.uniform(0.73, 0.77)
    if kind == "coffee":
        return rng.uniform(0.8, 1.2), rng.uniform(0.5, 0.7), rng.uniform(0.38, 0.48)
    # side table / nightstand
    return rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.5), rng.uniform(0.5, 0.65)


def _monitor(rng, w, h):
    """A monitor on its stand, standing on a desk top at height h."""
    mw = rng.uniform(0.45, 0.65)
    mx = rng.uniform(0.05, w - mw - 0.05)
    my = rng.uniform(0.08, 0.2)
    dark = np.float32([0.04, 0.04, 0.05])
    return [(mx + mw / 2 - 0.04, mx + mw / 2 + 0.04, my - 0.05, my + 0.05, h, h + 0.12,
             dark, PLAIN, (0, 0, 0, 0), 0.3, False),
            (mx, mx + mw, my, my + 0.03, h + 0.1, h + 0.1 + mw * 0.62,
             dark, SCREEN, (0, 0, 0, 0), 0.6, True)]


def add_table(P: Placer, rng, kind: str, wall: bool = True):
    """A desk, dining, coffee or side table: (orient, back, lateral, w, dp) or None."""
    w, dp, h = _table_size(rng, kind)
    spot = P.against_wall(w, dp) if wall else P.in_middle(w, dp)
    if spot is None:
        return None
    orient, back, lateral, to_world, fp = spot
    top = pick(rng, WOOD_PALETTE + FURN_PALETTE[:2])
    legc = top * rng.uniform(0.6, 1.0) if rng.random() < 0.7 else pick(rng, FURN_PALETTE)
    th = rng.uniform(0.025, 0.05)
    parts = [(0, w, 0, dp, h - th, h, top, WOOD, (0, 0, 0, 0), 0.0, True)]
    parts += _legs(w, dp, h - th, rng.uniform(0.035, 0.06), 0.03, legc)
    if kind == "desk" and rng.random() < 0.6:
        parts += _monitor(rng, w, h)
    else:
        parts += _clutter(rng, 0.05, w - 0.05, 0.05, dp - 0.05, h, int(rng.integers(0, 4)))
    P.emit(to_world, parts, orient)
    P.commit(fp, h)
    return orient, back, lateral, w, dp


def _chair_parts(rng, col):
    sw, sd, sh = rng.uniform(0.42, 0.5), rng.uniform(0.42, 0.5), rng.uniform(0.43, 0.48)
    bh = rng.uniform(0.35, 0.5)
    parts = [(0, sw, 0, sd, sh - 0.05, sh, col, FABRIC, (0, 0, 0, 0), 0.0, True),
             (0, sw, 0, 0.05, sh, sh + bh, col, FABRIC, (0, 0, 0, 0), 0.0, True)]
    legc = col * 0.6 if rng.random() < 0.5 else np.float32([0.15, 0.15, 0.15])
    parts += _legs(sw, sd, sh - 0.05, 0.035, 0.02, legc)
    return parts, sw, sd, sh + bh


def add_chairs_at(P: Placer, rng, table, n, col, both_sides=False):
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


def add_free_chair(P: Placer, rng):
    parts, sw, sd, ch = _chair_parts(rng, pick(rng, FABRIC_PALETTE + FURN_PALETTE))
    spot = P.against_wall(sw, sd, gap=rng.uniform(0.05, 0.6)) if rng.random() < 0.6 else (
        P.in_middle(sw, sd))
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    P.emit(to_world, parts, orient)
    P.commit(fp, ch)
    return True


def add_bed(P: Placer, rng):
    w = rng.choice([rng.uniform(0.9, 1.1), rng.uniform(1.35, 1.9)])
    dp, h = rng.uniform(1.95, 2.15), rng.uniform(0.45, 0.62)
    spot = P.against_wall(w + 0.1, dp, gap=0.0)
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    frame = pick(rng, WOOD_PALETTE + FURN_PALETTE[:2])
    sheet = pick(rng, FABRIC_PALETTE, 0.1)
    blanket = pick(rng, FABRIC_PALETTE, 0.1)
    pillow = rand_color(rng, (0.85, 0.84, 0.8), 0.05)
    hb = rng.uniform(0.8, 1.15)
    parts = [
        (0, w + 0.1, 0, 0.06, 0, hb, frame, WOOD, (0, 0, 0, 0), 0.0, True),
        (0, w + 0.1, 0.06, dp, 0, h - 0.2, frame, WOOD, (0, 0, 0, 0), 0.0, True),
        (0.05, w + 0.05, 0.06, dp - 0.02, h - 0.2, h, sheet, FABRIC, (0, 0, 0, 0), 0.0, True),
        (0.02, w + 0.08, rng.uniform(0.5, 0.9), dp, h - 0.25, h + 0.04, blanket, FABRIC,
         (1, 0, 0, 0), 0.0, True),
    ]
    npl = 1 if w < 1.2 else 2
    pw = (w - 0.1) / npl
    for i in range(npl):
        x = 0.1 + i * pw
        parts.append((x, x + pw - 0.05, 0.1, 0.45, h, h + 0.12, pillow, FABRIC, (0, 0, 0, 0),
                      0.0, False))
    P.emit(to_world, parts, orient)
    P.commit(fp, hb)
    return True


def add_sofa(P: Placer, rng):
    w, dp = rng.uniform(1.5, 2.4), rng.uniform(0.8, 0.95)
    spot = P.against_wall(w, dp, gap=rng.uniform(0.0, 0.1))
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    col = pick(rng, FABRIC_PALETTE, 0.1)
    sh, bh, ah, aw = rng.uniform(0.4, 0.46), rng.uniform(0.75, 0.9), rng.uniform(0.55, 0.65), 0.18
    par = (1, 0, 0, 0)
    parts = [
        (0, w, 0, 0.22, 0.05, bh, col, FABRIC, par, 0.0, True),
        (0, aw, 0.22, dp, 0.05, ah, col, FABRIC, par, 0.0, True),
        (w - aw, w, 0.22, dp, 0.05, ah, col, FABRIC, par, 0.0, True),
        (aw, w - aw, 0.22, dp, 0.05, sh - 0.12, col * 0.85, FABRIC, par, 0.0, True),
    ]
    nc = 2 if w < 1.9 else 3
    cw = (w - 2 * aw) / nc
    for i in range(nc):
        x = aw + i * cw
        parts.append((x + 0.01, x + cw - 0.01, 0.22, dp - 0.02, sh - 0.12, sh, col * 1.05,
                      FABRIC, par, 0.0, True))
    parts += _legs(w, dp, 0.05, 0.05, 0.03, np.float32([0.1, 0.08, 0.06]))
    P.emit(to_world, parts, orient)
    P.commit(fp, bh)
    return True


def add_shelf(P: Placer, rng):
    w, dp, h = rng.uniform(0.6, 1.2), rng.uniform(0.28, 0.4), rng.uniform(1.2, 2.1)
    spot = P.against_wall(w, dp, gap=0.0)
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    col = pick(rng, WOOD_PALETTE + FURN_PALETTE[:2])
    rows = int(rng.integers(3, 7))
    param = (h / rows, rng.uniform(0.025, 0.05), rng.uniform(0.4, 0.95), rng.integers(1 << 20))
    P.emit(to_world, [(0, w, 0, dp, 0, h, col, BOOKS, param, 0.15, True)], orient)
    P.commit(fp, h)
    return True


def _cabinet_size(rng, kind: str):
    if kind == "counter":
        return rng.uniform(1.2, 3.0), rng.uniform(0.55, 0.65), rng.uniform(0.86, 0.92)
    if kind == "tv":
        return rng.uniform(1.0, 1.8), rng.uniform(0.4, 0.5), rng.uniform(0.4, 0.6)
    if kind == "wardrobe":
        return rng.uniform(0.8, 1.6), rng.uniform(0.5, 0.62), rng.uniform(1.8, 2.2)
    return rng.uniform(0.6, 1.5), rng.uniform(0.4, 0.55), rng.uniform(0.6, 1.2)


def _counter_parts(rng, w, dp, h, col, cols, param):
    """A kitchen counter: panelled base, stone top, often wall cabinets, clutter on top."""
    stone = rand_color(rng, [(0.8, 0.8, 0.78), (0.2, 0.2, 0.2), (0.6, 0.55, 0.5)][
        rng.integers(3)], 0.05)
    parts = [(0, w, 0, dp - 0.03, 0.0, h - 0.04, col, PANELS, param, 0.05, True),
             (0, w, 0, dp, h - 0.04, h, stone, PLAIN, (0, 0, 0, 0), 0.1, True)]
    if rng.random() < 0.7:  # wall cabinets above the counter
        z0 = rng.uniform(1.4, 1.55)
        parts.append((0, w, 0, 0.35, z0, z0 + rng.uniform(0.6, 0.8), col, PANELS,
                      (cols, 1, 0, 0), 0.05, True))
    parts += _clutter(rng, 0.05, w - 0.05, 0.05, 0.4, h, int(rng.integers(0, 4)))
    return parts


def _tv_parts(rng, w, h):
    """A television on its foot, centred on a TV bench of width w and height h."""
    tw = min(w - 0.1, rng.uniform(0.8, 1.3))
    tx = (w - tw) / 2
    dark = np.float32([0.03, 0.03, 0.035])
    return [(tx + tw / 2 - 0.12, tx + tw / 2 + 0.12, 0.1, 0.3, h, h + 0.05, dark,
             PLAIN, (0, 0, 0, 0), 0.3, False),
            (tx, tx + tw, 0.18, 0.23, h + 0.05, h + 0.05 + tw * 0.58, dark, SCREEN,
             (0, 0, 0, 0), 0.7, True)]


def add_cabinet(P: Placer, rng, kind: str = "dresser"):
    """A counter, TV bench, wardrobe or dresser with panelled doors against a wall."""
    w, dp, h = _cabinet_size(rng, kind)
    spot = P.against_wall(w, dp, gap=0.0 if kind == "counter" else None)
    if spot is None:
        return False
    orient, _, _, to_world, fp = spot
    col = pick(rng, WOOD_PALETTE + FURN_PALETTE)
    cols = max(1, round(w / rng.uniform(0.4, 0.6)))
    rows = 1 if kind in ("counter", "wardrobe") else int(rng.integers(1, 4))
    param = (cols, rows, 0.0, 0.0)
    parts = [(0, w, 0, dp, 0.0, h, col, PANELS, param, 0.05, True)]
    if kind == "counter":
        parts = _counter_parts(rng, w, dp, h, col, cols, param)
    elif kind == "tv" and rng.random() < 0.8:
        parts += _tv_parts(rng, w, h)
    elif h < 1.3:
        parts += _clutter(rng, 0.05, w - 0.05, 0.05, dp - 0.05, h, int(rng.integers(0, 4)))
    P.emit(to_world, parts, orient)
    P.commit(fp, h)
    return True


def add_floor_item(P: Placer, rng) -> bool:
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
        pot = rand_color(rng, [(0.55, 0.3, 0.2), (0.85, 0.85, 0.82), (0.2, 0.2, 0.2)][
            rng.integers(3)], 0.08)
        leaf = rand_color(rng, (0.18, 0.35, 0.12), 0.2)
        pw = w * 0.55
        o = (w - pw) / 2
        parts = [(o, o + pw, o, o + pw, 0.0, h * 0.3, pot, PLAIN, z0, 0.05, True),
                 (0.0, w, 0.0, dp, h * 0.3, h, leaf, FABRIC, z0, 0.3, True)]
    else:
        col = (rand_color(rng, (0.62, 0.48, 0.3), 0.1) if kind == "box" else
               pick(rng, FURN_PALETTE + FABRIC_PALETTE, 0.1))
        parts = [(0.0, w, 0.0, dp, 0.0, h, col, PLAIN if kind == "box" else FABRIC, z0,
                  0.1, True)]
    P.emit(to_world, parts, orient)
    P.commit(fp, h)
    return True
