"""Room layout: the room box, doors, furniture per scene type, wall decals (windows, pictures,
whiteboards), floor, wall and ceiling materials, and the ceiling lights.

Everything is drawn from one generator seeded by the room seed, in a fixed order: the order of
the draws below is part of the dataset (changing it changes every frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .clutter import scatter
from .furniture import (
    Placer,
    add_bed,
    add_cabinet,
    add_chairs_at,
    add_floor_item,
    add_free_chair,
    add_shelf,
    add_sofa,
    add_table,
)
from .scene import (
    FABRIC_PALETTE,
    FURN_PALETTE,
    SCENE_TYPES,
    SCENE_WEIGHTS,
    WALL_PALETTE,
    WOOD_PALETTE,
    Boxes,
    Room,
    pick,
    rand_color,
)

# the usual suspects of every room, filling what is left of the furniture budget
_EXTRAS = {
    "bedroom": ("wardrobe", "dresser", "shelf", "desk", "chair"),
    "living_room": ("shelf", "chair", "dresser", "side"),
    "office": ("shelf", "dresser", "shelf", "chair"),
    "kitchen": ("dresser", "shelf", "chair"),
    "dining_room": ("dresser", "shelf", "dresser"),
}


@dataclass
class _Budget:
    """How many pieces of furniture a room gets, and how many it has (chairs count)."""

    total: int
    n: int = 0

    def left(self) -> bool:
        return self.n < self.total


def _chairs(P: Placer, rng, c: _Budget, table, k, both=False) -> None:
    col = pick(rng, FABRIC_PALETTE + FURN_PALETTE)
    c.n += add_chairs_at(P, rng, table, min(k, c.total - c.n), col, both)


def _bedroom(P: Placer, rng, c: _Budget) -> None:
    c.n += add_bed(P, rng)
    if rng.random() < 0.5 and add_bed(P, rng):
        c.n += 1
    for _ in range(int(rng.integers(0, 3))):
        if c.left() and add_table(P, rng, "side"):
            c.n += 1


def _living_room(P: Placer, rng, c: _Budget) -> None:
    c.n += add_sofa(P, rng)
    if rng.random() < 0.4 and add_sofa(P, rng):
        c.n += 1
    if c.left() and rng.random() < 0.7 and add_table(P, rng, "coffee", wall=False):
        c.n += 1
    if c.left() and rng.random() < 0.7 and add_cabinet(P, rng, "tv"):
        c.n += 1


def _office(P: Placer, rng, c: _Budget) -> None:
    for _ in range(int(rng.integers(1, 4))):
        if c.left():
            t = add_table(P, rng, "desk")
            if t is not None:
                c.n += 1
                if c.left():
                    _chairs(P, rng, c, t, 1)


def _kitchen(P: Placer, rng, c: _Budget) -> None:
    for _ in range(int(rng.integers(1, 3))):
        if c.left() and add_cabinet(P, rng, "counter"):
            c.n += 1
    if c.left() and rng.random() < 0.6:
        t = add_table(P, rng, "dining", wall=rng.random() < 0.3)
        if t is not None:
            c.n += 1
            _chairs(P, rng, c, t, int(rng.integers(0, 5)), both=True)


def _dining_room(P: Placer, rng, c: _Budget) -> None:
    t = add_table(P, rng, "dining", wall=False)
    if t is not None:
        c.n += 1
        _chairs(P, rng, c, t, int(rng.integers(2, 7)), both=True)


_MAIN_PIECES = {"bedroom": _bedroom, "living_room": _living_room, "office": _office,
                "kitchen": _kitchen, "dining_room": _dining_room}


def _add_extras(P: Placer, rng, c: _Budget, scene_type: str) -> None:
    extras = _EXTRAS[scene_type]
    tries = 0
    while c.left() and tries < 12:
        tries += 1
        what = extras[rng.integers(len(extras))]
        if what == "shelf":
            ok = add_shelf(P, rng)
        elif what == "chair":
            ok = add_free_chair(P, rng)
        elif what in ("desk", "side"):
            t = add_table(P, rng, what)
            ok = t is not None
            if ok and what == "desk" and c.total - c.n > 1:
                c.n += add_chairs_at(P, rng, t, 1, pick(rng, FABRIC_PALETTE))
        else:
            ok = add_cabinet(P, rng, what)
        c.n += bool(ok)


def furnish(P: Placer, rng, scene_type: str) -> None:
    """2-8 pieces of furniture according to the scene type (chairs count as pieces), more in
    bigger rooms, then small things on the floor along the walls."""
    area = float(P.size[0] * P.size[1])
    budget = _Budget(int(np.clip(round(area / 6) + rng.integers(0, 4), 2, 8)))
    _MAIN_PIECES[scene_type](P, rng, budget)
    _add_extras(P, rng, budget, scene_type)
    for _ in range(int(rng.integers(0, min(2 + area // 8, 7)))):
        add_floor_item(P, rng)


def _room_size(rng, scene_type: str) -> np.ndarray:
    # Room extents 3-9 m, skewed small like real homes and offices; kitchens/bedrooms smaller.
    lo_hi = {"bedroom": (3.0, 5.5), "kitchen": (3.0, 6.0), "office": (3.5, 9.0),
             "living_room": (3.5, 7.5), "dining_room": (3.5, 6.5)}[scene_type]
    span = lo_hi[1] - lo_hi[0]
    return np.array([lo_hi[0] + span * rng.beta(1.6, 2.2), lo_hi[0] + span * rng.beta(1.6, 2.2),
                     rng.uniform(2.4, 3.1)], np.float32)


def _doors(P: Placer, rng, size) -> list[dict]:
    """1-3 doors; they go first because they reserve the floor in front of them."""
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
            color=rand_color(rng, (0.85, 0.84, 0.8), 0.04) if white else pick(rng, WOOD_PALETTE),
            frame=rand_color(rng, (0.88, 0.87, 0.84), 0.03) if rng.random() < 0.7 else
            pick(rng, WOOD_PALETTE), hole=0.0))
    return decals


def _overlaps(decals: list[dict], k, s0, s1, z0, z1) -> bool:
    return any(d["wall"] == k and s0 < d["s1"] + 0.1 and d["s0"] < s1 + 0.1 and z0 < d["z1"]
               and d["z0"] < z1 for d in decals)


def _add_windows(rng, size, decals: list[dict]) -> None:
    day = rng.random() < 0.55
    for _ in range(int(rng.integers(0, 3))):
        k = int(rng.integers(4))
        along = size[1] if k < 2 else size[0]
        ww = rng.uniform(0.7, min(2.2, along - 0.4))
        s0 = rng.uniform(0.2, along - ww - 0.2)
        z0 = rng.uniform(0.75, 1.0)
        z1 = min(size[2] - 0.15, rng.uniform(1.9, 2.3))
        if _overlaps(decals, k, s0, s0 + ww, z0, z1):
            continue
        decals.append(dict(
            wall=k, s0=s0, s1=s0 + ww, z0=z0, z1=z1, kind="window", day=day,
            blinds=rng.random() < 0.45, curtains=rng.random() < 0.35,
            color=pick(rng, FABRIC_PALETTE + [(0.85, 0.82, 0.75)] * 3, 0.05),
            frame=rand_color(rng, (0.9, 0.9, 0.88), 0.03), sky=rand_color(
                rng, (0.8, 0.88, 1.0) if day else (0.03, 0.035, 0.05), 0.05), hole=0.8))


def _add_pictures(rng, size, scene_type: str, decals: list[dict]) -> None:
    """Pictures, and whiteboards (mostly in offices)."""
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
        if _overlaps(decals, k, s0, s0 + pw, zc - ph / 2, zc + ph / 2):
            continue
        decals.append(dict(
            wall=k, s0=s0, s1=s0 + pw, z0=zc - ph / 2, z1=zc + ph / 2, kind=kind,
            frame=pick(rng, WOOD_PALETTE + [(0.1, 0.1, 0.1), (0.9, 0.9, 0.9)], 0.05),
            c1=pick(rng, FABRIC_PALETTE, 0.3),
            c2=pick(rng, FABRIC_PALETTE + WALL_PALETTE, 0.3),
            salt=int(rng.integers(1 << 30)), hole=0.2 if kind == "picture" else 0.3))


def _floor(rng, size, scene_type: str) -> dict:
    """Floor material by scene type, sometimes with a rug."""
    fk = rng.choice(["wood", "tile", "carpet"], p={
        "bedroom": (0.5, 0.1, 0.4), "living_room": (0.6, 0.1, 0.3), "office": (0.15, 0.35, 0.5),
        "kitchen": (0.3, 0.7, 0.0), "dining_room": (0.6, 0.3, 0.1)}[scene_type])
    if fk == "wood":
        floor = dict(kind="wood", color=pick(rng, WOOD_PALETTE, 0.1),
                     width=rng.uniform(0.08, 0.2), length=rng.uniform(0.6, 1.8),
                     axis=int(rng.integers(2)), var=rng.uniform(0.08, 0.2))
    elif fk == "tile":
        floor = dict(kind="tile", color=rand_color(rng, [(0.8, 0.78, 0.72), (0.6, 0.6, 0.6),
                     (0.7, 0.6, 0.5), (0.35, 0.33, 0.32)][rng.integers(4)], 0.08),
                     size=rng.uniform(0.25, 0.6), grout=rand_color(rng, (0.5, 0.5, 0.48), 0.2),
                     var=rng.uniform(0.02, 0.08), checker=rng.random() < 0.15)
    else:
        floor = dict(kind="carpet", color=pick(rng, FABRIC_PALETTE + WALL_PALETTE[-3:], 0.1),
                     var=rng.uniform(0.05, 0.12))
    if fk != "tile" and rng.random() < 0.35 and scene_type in ("bedroom", "living_room"):
        rw, rl = rng.uniform(1.2, 2.5), rng.uniform(0.9, 1.8)
        if rw < size[0] - 0.6 and rl < size[1] - 0.6:
            x0, y0 = rng.uniform(0.3, size[0] - rw - 0.3), rng.uniform(0.3, size[1] - rl - 0.3)
            floor["rug"] = (x0, y0, x0 + rw, y0 + rl)
            floor["rug_colors"] = (pick(rng, FABRIC_PALETTE, 0.1),
                                   pick(rng, FABRIC_PALETTE, 0.1))
    return floor


def _walls(rng) -> tuple[np.ndarray, tuple]:
    """Per-wall colours (one paint, slightly varying, sometimes an accent wall) and the
    baseboard (height 0: none)."""
    base = np.array(WALL_PALETTE[rng.integers(len(WALL_PALETTE))], np.float32)
    wall_color = np.clip(base * (1 + rng.normal(0, 0.04, (4, 1)))
                         * (1 + rng.normal(0, 0.02, (4, 3))),
                         0.05, 0.95).astype(np.float32)
    if rng.random() < 0.15:  # an accent wall
        wall_color[rng.integers(4)] = pick(rng, WALL_PALETTE + FABRIC_PALETTE, 0.05)
    baseboard = (rng.uniform(0.05, 0.12) if rng.random() < 0.7 else 0.0,
                 rand_color(rng, (0.88, 0.87, 0.84), 0.03) if rng.random() < 0.6 else
                 pick(rng, WOOD_PALETTE))
    return wall_color, baseboard


def _ceiling(rng, scene_type: str) -> dict:
    return dict(color=rand_color(rng, (0.88, 0.87, 0.85), 0.03),
                tiles=rng.random() < (0.7 if scene_type == "office" else 0.15),
                tile=rng.uniform(0.58, 0.62), panel=scene_type in ("office", "kitchen"))


def _lights(rng, size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ceiling lights roughly spread over the room (one per ~8 m^2, at most 4): positions,
    powers and the common colour."""
    n_l = int(np.clip(round(size[0] * size[1] / rng.uniform(6, 14)), 1, 4))
    lights = []
    for i in range(n_l):
        frac = (i + rng.uniform(0.25, 0.75)) / n_l
        a = rng.integers(2)
        p = [rng.uniform(0.25, 0.75) * size[0], rng.uniform(0.25, 0.75) * size[1], size[2] - 0.05]
        p[a] = frac * size[a]
        lights.append(p)
    lights = np.array(lights, np.float32)
    power = (rng.uniform(0.6, 1.4, n_l) * 4.0).astype(np.float32)
    warm = rng.uniform(0, 1)
    light_color = np.array([1.0, 0.92 - 0.08 * warm, 0.8 - 0.2 * warm], np.float32)
    return lights, power, light_color


def make_room(seed: int, with_clutter: bool = False) -> Room:
    """The room of a scene: geometry, furniture, materials and lights (no camera); with the
    `clutter` feature, its small things are added from their own generator after all draws."""
    rng = np.random.default_rng([seed, 0])
    scene_type = SCENE_TYPES[rng.choice(len(SCENE_TYPES), p=SCENE_WEIGHTS)]
    size = _room_size(rng, scene_type)
    boxes = Boxes()
    P = Placer(rng, size, boxes)
    decals = _doors(P, rng, size)
    furnish(P, rng, scene_type)
    # windows, pictures, whiteboards: flat decals on the walls
    _add_windows(rng, size, decals)
    _add_pictures(rng, size, scene_type, decals)
    floor = _floor(rng, size, scene_type)
    wall_color, baseboard = _walls(rng)
    ceiling = _ceiling(rng, scene_type)
    lights, power, light_color = _lights(rng, size)
    salt = int(rng.integers(1 << 30))
    if with_clutter:
        P.rng = np.random.default_rng([seed, 0, 0xC1])
        scatter(P, P.rng)
    return Room(size=size, scene_type=scene_type, boxes=boxes.finish(), footprints=P.footprints,
                floor=floor, wall_color=wall_color, decals=decals, baseboard=baseboard,
                ceiling=ceiling, lights=lights, light_power=power, light_color=light_color,
                salt=salt)
