"""The camera: a hand-held Kinect pose in the room, its basis, and the rays of its pixels."""

from __future__ import annotations

import math

import numpy as np

from .grid import XD, YD
from .raycast import cast
from .scene import Room


def camera_basis(yaw: float, pitch: float, roll: float) -> tuple[np.ndarray, ...]:
    """Forward, right and down unit vectors in the world (z up) for a yaw/pitch/roll camera."""
    cp, sp = math.cos(pitch), math.sin(pitch)
    f = np.array([math.cos(yaw) * cp, math.sin(yaw) * cp, sp])
    r = np.array([math.sin(yaw), -math.cos(yaw), 0.0])
    u = np.cross(r, f)
    cr, sr = math.cos(roll), math.sin(roll)
    r, u = cr * r + sr * u, -sr * r + cr * u
    return f, r, -u


def rays(f, r, d, xd=XD, yd=YD):
    """World ray directions (3 arrays of (H, W)) scaled so that t is z-depth."""
    return [(f[k] + xd[None, :] * r[k] + yd[:, None] * d[k]).astype(np.float32) for k in range(3)]


def _position(room: Room, rng, k: int):
    """A camera position with wall k behind it (None: inside or next to furniture)."""
    axis, along_axis = (0, 1) if k < 2 else (1, 0)
    extent, along = room.size[axis], room.size[along_axis]
    back = rng.uniform(0.25, min(2.0, 0.45 * extent))
    pos = np.zeros(3)
    pos[axis] = back if k % 2 == 0 else extent - back
    pos[along_axis] = rng.uniform(0.3, along - 0.3)
    pos[2] = rng.uniform(1.0, 1.7)
    if any(x0 - 0.25 < pos[0] < x1 + 0.25 and y0 - 0.25 < pos[1] < y1 + 0.25
           for x0, y0, x1, y1, _ in room.footprints):
        return None
    return pos


def _aim(room: Room, rng, k: int, pos) -> tuple[np.ndarray, ...]:
    """Camera basis aimed at a piece of furniture in front (people film things), else at a point
    in the far part of the room (often toward a far corner)."""
    axis, along_axis = (0, 1) if k < 2 else (1, 0)
    extent, along = room.size[axis], room.size[along_axis]
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
    pitch = math.radians(float(np.clip(rng.normal(room.pitch, 6), -20, 5)))
    roll = math.radians(rng.uniform(-3, 3))
    return camera_basis(yaw, pitch, roll)


def _probe(room: Room, pos, basis) -> tuple[float, bool]:
    """Score a view on a coarse ray grid (never stare at a wall or a shelf from 30 cm), and
    whether it is good enough to stop looking."""
    D = rays(*basis, XD[8::16], YD[8::16])
    t, obj = cast(pos.astype(np.float32), D, room.size, room.boxes.lo, room.boxes.hi)
    near = float((t < 0.7).mean())
    dominant = np.bincount(obj.ravel()).max() / obj.size  # one wall filling the view?
    score = float(np.median(t)) - 3.0 * near - 2.0 * max(dominant - 0.7, 0)
    return score, bool(np.median(t) > 1.6 and near < 0.12 and dominant < 0.7)


def pick_camera(room: Room, rng: np.random.Generator):
    """A hand-held Kinect pose: near one wall, 1.0-1.7 m high, aimed into the room."""
    W, L, H = (float(v) for v in room.size)
    best = None
    for _ in range(12):
        k = int(rng.integers(4))  # the wall behind the camera
        if room.view_walls is not None:  # e.g. a corridor's ends: look along it
            k = room.view_walls[k % len(room.view_walls)]
        pos = _position(room, rng, k)
        if pos is None:
            continue
        basis = _aim(room, rng, k, pos)
        score, good = _probe(room, pos, basis)
        if best is None or score > best[0]:
            best = (score, pos, basis)
        if good:
            break
    if best is None:  # every try stood inside furniture: stand in the middle of the room
        pos = np.array([W / 2, L / 2, 1.4])
        best = (0.0, pos, camera_basis(rng.uniform(0, 2 * math.pi), -0.15, 0.0))
    return best[1].astype(np.float32), best[2]
