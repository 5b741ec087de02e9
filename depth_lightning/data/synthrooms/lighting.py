"""Lighting: ceiling point lights (Lambert, soft falloff, shadows at 1/2 render resolution) and
ambient-occlusion-like darkening in corners and around furniture."""

from __future__ import annotations

import numpy as np

from .materials import Surface
from .noise import blur3, up2_linear
from .raycast import occluded
from .scene import FLOOR, N_FACES, Room


def shadow_factor(room: Room, P, lp, casters):
    """Visibility of one light from each surface point (flat array): shadow rays at 1/2 render
    resolution, softened by a blur (real ceiling lights are not points)."""
    if casters.size == 0:
        return np.float32(1.0)
    st = room.shadow_step
    Ps = [p[::st, ::st] for p in P]
    Ls = [lp[k] - Ps[k] for k in range(3)]
    hidden = occluded(room.boxes.lo, room.boxes.hi, casters, Ps, Ls)
    vis = up2_linear(blur3(np.where(hidden, np.float32(0.15), np.float32(1.0))))
    if st == 4:
        vis = up2_linear(vis)
    return vis[: P[0].shape[0], : P[0].shape[1]].ravel()


def irradiance(room: Room, s: Surface, P) -> np.ndarray:
    """Light arriving from the ceiling lights at each surface point (flat); `P` holds the same
    points as (H, W) arrays for the shadow rays."""
    E = np.zeros(s.x.size, np.float32)
    casters = np.flatnonzero(room.boxes.caster)
    for lp, pw in zip(room.lights, room.light_power, strict=True):
        lx, ly, lz = lp[0] - s.x, lp[1] - s.y, lp[2] - s.z
        d2 = lx * lx + ly * ly + lz * lz
        lcomp = np.where(s.naxis == 0, lx, np.where(s.naxis == 1, ly, lz)) * s.nsign
        ndl = np.maximum(lcomp, 0) / np.sqrt(d2)
        vis = shadow_factor(room, P, lp, casters)
        E += pw * ndl * vis / (d2 + 0.5)
    return E


def _floor_contact(room: Room, s: Surface, fidx) -> np.ndarray:
    """Darkening of the floor around each furniture footprint (contact shadows)."""
    fx, fy = s.x[fidx], s.y[fidx]
    occ = np.ones(fidx.size, np.float32)
    for x0, y0, x1, y1, _ in room.footprints:
        ddx = np.maximum(np.maximum(x0 - fx, fx - x1), 0)
        ddy = np.maximum(np.maximum(y0 - fy, fy - y1), 0)
        occ *= 1 - 0.45 * np.exp(-(ddx + ddy) / 0.12)
    return occ


def ambient_occlusion(room: Room, s: Surface) -> np.ndarray:
    """Ambient occlusion-like darkening in room corners, under/near furniture, at furniture
    feet (flat)."""
    size = room.size
    Px, Py, Pz = s.x, s.y, s.z
    ao = np.ones(s.x.size, np.float32)
    dx = np.minimum(Px, size[0] - Px)
    dy = np.minimum(Py, size[1] - Py)
    dz = np.minimum(Pz, size[2] - Pz)
    edge = np.where(s.naxis == 0, np.minimum(dy, dz), np.where(s.naxis == 1, np.minimum(dx, dz),
                                                                np.minimum(dx, dy)))
    ao *= 1 - 0.35 * np.exp(-edge / 0.25)
    fidx = np.flatnonzero(s.obj == FLOOR)
    if fidx.size and room.footprints:
        ao[fidx] *= _floor_contact(room, s, fidx)
    bidx = np.flatnonzero(s.obj >= N_FACES)
    if bidx.size:
        ao[bidx] *= 1 - 0.4 * np.exp(-Pz[bidx] / 0.1)
    return ao
