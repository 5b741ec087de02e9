"""Shading: the linear RGB image of what the camera sees, plus each pixel's Kinect dropout
propensity and surface normal, at render resolution."""

from __future__ import annotations

import numpy as np

from .lighting import ambient_occlusion, irradiance
from .materials import Surface, shade_ceiling, shade_floor, shade_furniture, shade_walls
from .scene import N_FACES, Room


def _surface(o, D, t, obj) -> tuple[list[np.ndarray], Surface]:
    """The hit points (as (H, W) arrays) and the empty per-pixel buffers, room normals set."""
    P = [o[k] + t * D[k] for k in range(3)]
    Px, Py, Pz = (p.ravel() for p in P)
    objf = obj.ravel()
    n_pix = objf.size
    s = Surface(x=Px, y=Py, z=Pz, obj=objf,
                alb=np.empty((n_pix, 3), np.float32), emis=np.zeros((n_pix, 3), np.float32),
                hole=np.zeros(n_pix, np.float32),
                naxis=np.empty(n_pix, np.int8), nsign=np.empty(n_pix, np.float32))
    room_px = objf < N_FACES
    s.naxis[room_px] = objf[room_px] // 2
    s.nsign[room_px] = np.where(objf[room_px] % 2 == 0, 1.0, -1.0)
    return P, s


def shade(room: Room, o, D, t, obj, rng):
    """Linear RGB image, plus per-pixel Kinect dropout propensity, at render resolution.

    Returns (image (H, W, 3), hole propensity (H, W), normal as (axis, sign) arrays (H, W)).
    """
    H, W = t.shape
    P, s = _surface(o, D, t, obj)
    shade_floor(room, s)
    shade_ceiling(room, s)
    # walls: per-wall colour, baseboard, doors, windows, pictures
    shade_walls(room, s)
    shade_furniture(room, s)

    # lighting: ambient + ceiling point lights
    amb = np.float32(rng.uniform(0.12, 0.35))
    E = irradiance(room, s, P)
    ao = ambient_occlusion(room, s)
    light = (E + amb) * ao
    img = s.alb * light[:, None] * room.light_color[None] + s.emis
    dark = s.alb.mean(1) < 0.07
    s.hole[dark] = np.maximum(s.hole[dark], 0.35)
    return (img.reshape(H, W, 3), s.hole.reshape(H, W),
            (s.naxis.reshape(H, W), s.nsign.reshape(H, W)))
