"""What a room is made of: scene types, face and surface codes, palettes, the furniture box
container and the room description that rendering reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SCENE_TYPES = ("bedroom", "living_room", "office", "kitchen", "dining_room")
SCENE_WEIGHTS = (0.3, 0.25, 0.2, 0.12, 0.13)

# Room faces: 2 * axis + (1 if the face is at the high end of the axis). Walls are 0-3.
FLOOR, CEILING = 4, 5
N_FACES = 6

# Furniture surface kinds (how a box face is textured).
PLAIN, WOOD, FABRIC, BOOKS, PANELS, SCREEN = range(6)

WALL_PALETTE = [
    (0.80, 0.78, 0.72), (0.85, 0.84, 0.80), (0.78, 0.72, 0.60), (0.70, 0.70, 0.70),
    (0.82, 0.76, 0.55), (0.62, 0.70, 0.76), (0.66, 0.74, 0.62), (0.80, 0.66, 0.58),
    (0.88, 0.87, 0.85), (0.55, 0.52, 0.50),
]
WOOD_PALETTE = [
    (0.45, 0.28, 0.14), (0.60, 0.40, 0.22), (0.72, 0.55, 0.35), (0.35, 0.20, 0.10),
    (0.80, 0.66, 0.46), (0.25, 0.15, 0.09),
]
FURN_PALETTE = [
    (0.85, 0.85, 0.82), (0.12, 0.12, 0.12), (0.45, 0.30, 0.18), (0.60, 0.42, 0.25),
    (0.35, 0.38, 0.45), (0.55, 0.55, 0.55), (0.70, 0.62, 0.50), (0.25, 0.22, 0.20),
]
FABRIC_PALETTE = [
    (0.55, 0.12, 0.10), (0.20, 0.25, 0.45), (0.35, 0.45, 0.30), (0.60, 0.55, 0.45),
    (0.30, 0.30, 0.32), (0.75, 0.70, 0.60), (0.50, 0.35, 0.45), (0.15, 0.15, 0.18),
    (0.80, 0.80, 0.78), (0.65, 0.45, 0.20),
]


def rand_color(rng, base, spread) -> np.ndarray:
    c = np.asarray(base, np.float32) * (1 + rng.normal(0, spread, 3))
    return np.clip(c, 0.02, 0.95).astype(np.float32)


def pick(rng, palette, spread=0.08) -> np.ndarray:
    return rand_color(rng, palette[rng.integers(len(palette))], spread)


@dataclass
class Boxes:
    """Furniture as axis-aligned boxes plus what each face looks like (lists while the room is
    built, numpy arrays once `finish` has run)."""

    lo: list = field(default_factory=list)
    hi: list = field(default_factory=list)
    color: list = field(default_factory=list)
    kind: list = field(default_factory=list)
    front: list = field(default_factory=list)  # face code 2*axis+(1 if +) of the textured front
    param: list = field(default_factory=list)  # per-kind parameters (4 floats)
    hole: list = field(default_factory=list)  # Kinect dropout propensity of this surface
    caster: list = field(default_factory=list)  # casts shadows (legs don't: too thin to matter)

    def add(self, lo, hi, color, kind=PLAIN, front=-1, param=(0, 0, 0, 0), hole=0.0, caster=True):
        self.lo.append(lo)
        self.hi.append(hi)
        self.color.append(color)
        self.kind.append(kind)
        self.front.append(front)
        self.param.append(param)
        self.hole.append(hole)
        self.caster.append(caster)

    def finish(self) -> Boxes:
        """Turn the lists into arrays, and each box's orientation into its front face code."""
        self.lo = np.array(self.lo, np.float32).reshape(-1, 3)
        self.hi = np.array(self.hi, np.float32).reshape(-1, 3)
        self.color = np.array(self.color, np.float32).reshape(-1, 3)
        self.kind = np.array(self.kind, np.int16)
        self.front = np.array(self.front, np.int16)
        self.param = np.array(self.param, np.float32).reshape(-1, 4)
        self.hole = np.array(self.hole, np.float32)
        self.caster = np.array(self.caster, bool)
        # orient (0..3 = front +x, -x, +y, -y) to face code (2*axis + (1 if + side))
        self.front = np.array([(0, 1), (0, 0), (1, 1), (1, 0)], np.int16)[self.front].dot(
            [2, 1]).astype(np.int16) if len(self.front) else self.front
        return self


@dataclass
class Room:
    size: np.ndarray  # (W, L, H): x extent, y extent, height
    scene_type: str
    boxes: Boxes
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
    # shadow rays every `shadow_step` render pixels (2 or 4): big spaces with many lights use 4
    shadow_step: int = 2
    # the camera: walls it may stand against (None: any), mean pitch in degrees (down < 0)
    view_walls: tuple[int, ...] | None = None
    pitch: float = -9.0
