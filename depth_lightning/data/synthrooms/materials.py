"""Materials: the albedo, emission and Kinect dropout propensity of every visible surface point
(floor, rug, ceiling and its lights, walls and their decals, furniture textures).

Textures live in world coordinates, so perspective foreshortens them like real ones. Each
function fills its pixels of a `Surface`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .noise import hash01, value_noise
from .scene import BOOKS, CEILING, FABRIC, FLOOR, N_FACES, PANELS, SCREEN, WOOD, Room


@dataclass
class Surface:
    """The surface point each render pixel sees, as flat arrays (pixel order of ``ravel``), and
    the per-pixel buffers that shading fills in."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    obj: np.ndarray  # 0-5 room faces, 6+ furniture boxes
    alb: np.ndarray  # (n, 3) albedo
    emis: np.ndarray  # (n, 3) emitted light (lamps, windows)
    hole: np.ndarray  # Kinect dropout propensity
    # normal as (axis, sign): room faces point into the room, box faces out of the box
    naxis: np.ndarray
    nsign: np.ndarray


# -- floor and ceiling ------------------------------------------------------------------------
def _wood_floor(fl: dict, x, y, salt):
    c = fl["color"]
    a, b = (x, y) if fl["axis"] == 0 else (y, x)  # a: along the planks
    row = np.floor(b / fl["width"])
    off = hash01(row.astype(np.int32), np.zeros_like(row, np.int32), salt) * fl["length"]
    col = np.floor((a + off) / fl["length"])
    v = hash01(row.astype(np.int32), col.astype(np.int32), salt + 1)
    shade = 1 + fl["var"] * (2 * v - 1)
    grain = 1 + 0.06 * np.sin(a * 23.0 + 9 * v + 3 * np.sin(b * 40.0 + a * 2))
    fb = b / fl["width"] - row
    fa = (a + off) / fl["length"] - col
    seam = (fb < 0.06) | (fa * fl["length"] < 0.006)
    k = shade * grain * np.where(seam, 0.55, 1.0)
    return k[:, None] * c[None, :]


def _tile_floor(fl: dict, x, y, salt):
    c = fl["color"]
    s = fl["size"]
    ix, iy = np.floor(x / s), np.floor(y / s)
    fx, fy = x / s - ix, y / s - iy
    v = hash01(ix.astype(np.int32), iy.astype(np.int32), salt)
    k = 1 + fl["var"] * (2 * v - 1)
    if fl["checker"]:
        k = k * np.where((ix + iy) % 2 == 0, 1.0, 0.55)
    g = 0.012 / s
    grout = (fx < g) | (fy < g)
    alb = k[:, None] * c[None, :]
    alb[grout] = fl["grout"]
    return alb


def _carpet(fl: dict, x, y, salt):
    c = fl["color"]
    n = value_noise(x * 2.0, y * 2.0, salt) * 0.6 + value_noise(x * 9.0, y * 9.0, salt + 3) * 0.4
    k = 1 + fl["var"] * (2 * n - 1) * 1.5
    return k[:, None] * c[None, :]


_FLOORS = {"wood": _wood_floor, "tile": _tile_floor, "carpet": _carpet}


def _rug(room: Room, s: Surface, idx, fx, fy) -> None:
    x0, y0, x1, y1 = room.floor["rug"]
    m = (fx > x0) & (fx < x1) & (fy > y0) & (fy < y1)
    if m.any():
        c1, c2 = room.floor["rug_colors"]
        bx = np.minimum(np.minimum(fx[m] - x0, x1 - fx[m]), np.minimum(fy[m] - y0,
                                                                        y1 - fy[m]))
        nz = value_noise(fx[m] * 6, fy[m] * 6, room.salt + 7)
        ra = np.where((bx < 0.15)[:, None], c2[None], c1[None] * (0.85 + 0.3 * nz[:, None]))
        s.alb[idx[m]] = ra


def shade_floor(room: Room, s: Surface) -> None:
    idx = np.flatnonzero(s.obj == FLOOR)
    if idx.size:
        fx, fy = s.x[idx], s.y[idx]
        s.alb[idx] = _FLOORS[room.floor["kind"]](room.floor, fx, fy, room.salt)
        if room.floor.get("rug") is not None:
            _rug(room, s, idx, fx, fy)


def shade_ceiling(room: Room, s: Surface) -> None:
    """The ceiling (optionally acoustic tiles) with emissive light fixtures."""
    idx = np.flatnonzero(s.obj == CEILING)
    if idx.size:
        cx, cy = s.x[idx], s.y[idx]
        s.alb[idx] = room.ceiling["color"]
        if room.ceiling["tiles"]:
            t = room.ceiling["tile"]
            g = ((cx / t) % 1 < 0.03) | ((cy / t) % 1 < 0.03)
            s.alb[idx[g]] *= 0.75
        for lp, pw in zip(room.lights, room.light_power, strict=True):
            if room.ceiling["panel"]:
                m = (np.abs(cx - lp[0]) < 0.3) & (np.abs(cy - lp[1]) < 0.6)
            else:
                m = (cx - lp[0]) ** 2 + (cy - lp[1]) ** 2 < 0.2**2
            s.emis[idx[m]] = room.light_color * pw * 1.5


# -- walls and decals -------------------------------------------------------------------------
@dataclass
class _DecalHit:
    """The pixels `j` of one decal: position (ss along, zz up) within it, its size, and the
    distance to its edge (a door has no bottom edge)."""

    j: np.ndarray
    ss: np.ndarray
    zz: np.ndarray
    w: float
    h: float
    edge: np.ndarray


def _door(s: Surface, d: dict, p: _DecalHit) -> None:
    a = np.where((p.edge < 0.06)[:, None], d["frame"][None], d["color"][None])
    inner = (p.edge > 0.12) & (p.edge < 0.135)  # panel grooves
    a[inner] *= 0.8
    handle = (np.abs(p.ss - (p.w - 0.09)) < 0.035) & (np.abs(p.zz - 1.0) < 0.02)
    a[handle] = (0.6, 0.58, 0.5)
    s.alb[p.j] = a


def _window(s: Surface, d: dict, p: _DecalHit) -> None:
    j, ss, zz = p.j, p.ss, p.zz
    fr = p.edge < 0.05
    glass = ~fr
    a = np.broadcast_to(d["frame"], (j.size, 3)).copy()
    e = np.zeros((j.size, 3), np.float32)
    a[glass] = 0.05  # glass: dark, reflective
    if d["day"]:  # daylight outside, brighter toward the horizon
        e[glass] = (3.0 * d["sky"][None] * (1.0 - 0.25 * zz / p.h)[:, None])[glass]
    else:
        e[glass] = d["sky"]
    if d["blinds"]:
        slat = (zz % 0.035) < 0.028
        b = glass & slat
        a[b] = d["color"]
        e[b] = d["color"] * (1.2 if d["day"] else 0.0)
    if d["curtains"]:
        cw = 0.3 * p.w
        c = (ss < cw) | (ss > p.w - cw)
        fold = 0.8 + 0.2 * np.sin(ss * 45)
        a[c] = d["color"] * fold[c, None]
        e[c] = 0
        s.hole[j[c]] = 0.05
        glass = glass & ~c
    s.alb[j] = a
    s.emis[j] = e
    s.hole[j[glass]] = d["hole"]


def _picture(s: Surface, d: dict, p: _DecalHit) -> None:
    """A framed picture (value-noise blend of two colours) or a whiteboard."""
    fr = p.edge < (0.03 if d["kind"] == "picture" else 0.025)
    if d["kind"] == "board":
        a = np.broadcast_to(np.float32([0.92, 0.92, 0.9]), (p.j.size, 3)).copy()
    else:
        nz = value_noise(p.ss * 4, p.zz * 4, d["salt"])[:, None]
        a = d["c1"][None] * nz + d["c2"][None] * (1 - nz)
    a[fr] = d["frame"]
    s.alb[p.j] = a
    s.hole[p.j[~fr]] = d["hole"]


_DECALS = {"door": _door, "window": _window, "picture": _picture, "board": _picture}


def _shade_wall(room: Room, s: Surface, k: int) -> None:
    """Wall k: its colour with a faint mottle, the baseboard, then its doors, windows and
    pictures."""
    idx = np.flatnonzero(s.obj == k)
    if not idx.size:
        return
    along = (s.y if k < 2 else s.x)[idx]
    z = s.z[idx]
    vn = value_noise(along * 0.8, z * 0.8, room.salt + 11 + k)
    s.alb[idx] = room.wall_color[k][None] * (0.96 + 0.08 * vn)[:, None]
    bh, bc = room.baseboard
    if bh > 0:
        s.alb[idx[z < bh]] = bc
    for d in room.decals:
        if d["wall"] != k:
            continue
        m = (along >= d["s0"]) & (along < d["s1"]) & (z >= d["z0"]) & (z < d["z1"])
        if not m.any():
            continue
        ss, zz = along[m] - d["s0"], z[m] - d["z0"]
        w_, h_ = d["s1"] - d["s0"], d["z1"] - d["z0"]
        edge = np.minimum(np.minimum(ss, w_ - ss), np.minimum(h_ - zz, zz if d["kind"] !=
                                                              "door" else 9.0))
        _DECALS[d["kind"]](s, d, _DecalHit(idx[m], ss, zz, w_, h_, edge))


def shade_walls(room: Room, s: Surface) -> None:
    for k in range(4):
        _shade_wall(room, s, k)


# -- furniture --------------------------------------------------------------------------------
@dataclass
class _BoxHits:
    """Pixels that see furniture: box index b, face code, kind, colour and face-local
    coordinates (u horizontal along the face, v up; top faces: the two horizontal axes)."""

    idx: np.ndarray
    b: np.ndarray
    face: np.ndarray
    front: np.ndarray  # face code of each pixel's box front
    kind: np.ndarray
    col: np.ndarray
    u: np.ndarray
    v: np.ndarray
    uext: np.ndarray
    vext: np.ndarray


def _box_hits(room: Room, s: Surface, bidx) -> _BoxHits:
    """Which face of its box each pixel sees (the nearest face plane), which sets its normal."""
    bx = room.boxes
    b = s.obj[bidx] - N_FACES
    lo, hi = bx.lo[b], bx.hi[b]
    p = np.stack([s.x[bidx], s.y[bidx], s.z[bidx]], 1)
    dist = np.concatenate([np.abs(p - lo), np.abs(p - hi)], 1)  # faces: lo x,y,z, hi x,y,z
    f6 = np.argmin(dist, 1)
    ax = (f6 % 3).astype(np.int8)
    hi_side = f6 >= 3
    s.naxis[bidx] = ax
    s.nsign[bidx] = np.where(hi_side, 1.0, -1.0)
    face = 2 * ax + hi_side  # same code as box.front
    rel = p - lo
    ext = hi - lo
    return _BoxHits(idx=bidx, b=b, face=face, front=bx.front[b], kind=bx.kind[b],
                    col=bx.color[b],
                    u=np.where(ax == 0, rel[:, 1], rel[:, 0]),
                    uext=np.where(ax == 0, ext[:, 1], ext[:, 0]),
                    v=np.where(ax == 2, rel[:, 1], rel[:, 2]),
                    vext=np.where(ax == 2, ext[:, 1], ext[:, 2]))


def _wood(h: _BoxHits, shade) -> None:
    m = h.kind == WOOD
    if m.any():
        u, v, uext, vext = h.u[m], h.v[m], h.uext[m], h.vext[m]
        along = np.where(uext >= vext, u, v)
        across = np.where(uext >= vext, v, u)
        shade[m] = 1 + 0.07 * np.sin(across * 60 + 4 * np.sin(along * 3 + h.b[m]))


def _fabric(h: _BoxHits, shade, salt) -> None:
    m = h.kind == FABRIC
    if m.any():
        shade[m] = 0.93 + 0.14 * value_noise(h.u[m] * 7 + h.b[m] * 3.1, h.v[m] * 7, salt + 21)


def _panels(h: _BoxHits, par, shade) -> None:
    """Cabinet doors and drawers: a grid of grooves with a handle near the top of each."""
    m = (h.kind == PANELS) & (h.face == h.front)
    if m.any():
        par = par[h.b[m]]
        u, v, uext, vext = h.u[m], h.v[m], h.uext[m], h.vext[m]
        fu = u / uext * par[:, 0]
        fv = v / vext * par[:, 1]
        du = np.minimum(fu % 1, 1 - fu % 1) * uext / par[:, 0]
        dv = np.minimum(fv % 1, 1 - fv % 1) * vext / par[:, 1]
        groove = np.minimum(du, dv) < 0.006
        handle = (np.abs(fu % 1 - 0.5) * uext / par[:, 0] < 0.05) & (
            np.abs(fv % 1 - 0.85) * vext / par[:, 1] < 0.012)
        shade[m] = np.where(groove, 0.45, np.where(handle, 0.3, 1.0))


def _books(h: _BoxHits, par, hole, salt) -> np.ndarray:
    """Bookshelf fronts: rows of books of random colour and height, gaps dark; returns the
    colours (the books replace the box colour)."""
    col = h.col
    m = (h.kind == BOOKS) & (h.face == h.front)
    if m.any():
        par = par[h.b[m]]
        rowh, bw, fill = par[:, 0], par[:, 1], par[:, 2]
        v, uext, vext = h.v[m], h.uext[m], h.vext[m]
        row = np.floor(v / rowh)
        vr = v - row * rowh
        uu = h.u[m]
        book = np.floor(uu / bw)
        hb = hash01(row.astype(np.int32) * 131 + book.astype(np.int32),
                    par[:, 3].astype(np.int32), salt + 31)
        hc = hash01(book.astype(np.int32), row.astype(np.int32), salt + 37)
        board = (vr < 0.022) | (uu < 0.02) | (uu > uext - 0.02) | (v > vext - 0.02)
        present = (hb < fill) & (vr < rowh * (0.55 + 0.4 * hc))
        bc = np.stack([0.15 + 0.7 * hb, 0.15 + 0.6 * hc, 0.15 + 0.6 * ((hb + hc * 7) % 1)], 1)
        c = np.where(present[:, None], bc, col[m] * 0.25)  # gaps: dark shelf interior
        c = np.where(board[:, None], col[m], c)
        col = col.copy()
        col[m] = c
        hole[h.idx[m]] = np.where(present & ~board, 0.12, 0.25)
    return col


def _screen(h: _BoxHits, shade) -> None:
    m = h.kind == SCREEN
    if m.any():
        front = h.face[m] == h.front[m]
        shade[m] = np.where(front, 1.0 + 0.6 * (h.v[m] / h.vext[m]), 1.0)  # glossy reflection


def shade_furniture(room: Room, s: Surface) -> None:
    bidx = np.flatnonzero(s.obj >= N_FACES)
    if bidx.size:
        h = _box_hits(room, s, bidx)
        s.hole[bidx] = room.boxes.hole[h.b]
        shade = np.ones(bidx.size, np.float32)
        _wood(h, shade)
        _fabric(h, shade, room.salt)
        _panels(h, room.boxes.param, shade)
        col = _books(h, room.boxes.param, s.hole, room.salt)
        _screen(h, shade)
        s.alb[bidx] = col * shade[:, None]
