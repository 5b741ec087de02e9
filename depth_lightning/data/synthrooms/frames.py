"""Frames: one rendered frame from (room seed, view), and the plan of which frames a dataset
holds."""

from __future__ import annotations

import numpy as np

from . import camerafx, kinect
from .camera import pick_camera, rays
from .depthnoise import noisy_raw
from .kinect import MAX_DEPTH
from .layout import make_room
from .noise import up2_nearest
from .raycast import cast
from .scene import Room
from .sensor import develop
from .shading import shade
from .spaces import make_space, space_type

GENERATOR_VERSION = "1"  # bump when rendering changes: it is part of the cache file name


def room_seed(seed: int, room_index: int) -> int:
    return int(np.random.SeedSequence([seed, room_index]).generate_state(1)[0])


def build_room(seed: int, features: tuple[str, ...] = ()) -> Room:
    """The room of a room seed: a home room of the v1 generator, or with `spaces` often an
    office, corridor, classroom, lab or basement; `clutter` adds its small things to either."""
    kind = space_type(seed) if "spaces" in features else None
    if kind is not None:
        return make_space(seed, kind, "clutter" in features)
    return make_room(seed, with_clutter="clutter" in features)


def _stored_layout(img, depth, holes, rng, raw=None) -> tuple[np.ndarray, ...]:
    """Render-resolution image, depth, hole mask (and raw depth, if it differs from depth) ->
    image (3, 640, 480), depths (640, 480) and raw depths (640, 480) in the stored layout (the
    transpose: MATLAB v7.3)."""
    # Nearest upsampling everywhere: the network reads the image at 320x240 anyway, and 2x2
    # blocks compress twice as well as bilinear.
    img8 = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    image = up2_nearest(np.transpose(img8, (2, 1, 0)))  # (3, 640, 480)
    depth_s = up2_nearest(depth.T)
    if raw is None:
        raw_s = np.where(up2_nearest(holes.T), np.float32(0), depth_s)
    else:  # one upsampling of the holes applied at render resolution (same result, faster)
        raw_s = up2_nearest(np.where(holes, np.float32(0), raw).T)
    kinect.registration_border(raw_s, rng)
    return image, depth_s, raw_s


def render_stored(seed: int, view: int = 0, scene_index: int = 1,
                  features: tuple[str, ...] = ()) -> dict:
    """Render one frame in the stored (h5py) layout: image (3, 640, 480), depths (640, 480).
    `features` must be canonical (`features.canonical`); each draws from its own generator."""
    room = build_room(seed, features)
    rng = np.random.default_rng([seed, 1, view])
    o, basis = pick_camera(room, rng)
    D = rays(*basis)
    t, obj = cast(o, D, room.size, room.boxes.lo, room.boxes.hi, basis)
    img, hole_prop, normal = shade(room, o, D, t, obj, rng)
    img = develop(img, rng)
    if "camera" in features:
        img = camerafx.apply(img, np.random.default_rng([seed, 3, view]))
    # Quantised to 1/4096 m (far finer than the Kinect's resolution): the low mantissa byte
    # becomes constant, which makes the shuffled chunks compress 3x better and faster.
    depth = np.round(np.minimum(t, np.float32(MAX_DEPTH)) * 4096) * np.float32(1 / 4096)
    holes = kinect.holes(t, hole_prop, normal, D, rng)
    raw = (noisy_raw(np.minimum(t, np.float32(MAX_DEPTH)), np.random.default_rng([seed, 4, view]))
           if "kinect" in features else None)
    image, depth_s, raw_s = _stored_layout(img, depth, holes, rng, raw)
    return dict(image=image, depth=depth_s, raw_depth=raw_s,
                scene=f"{room.scene_type}_{scene_index:04d}", scene_type=room.scene_type)


def render_frame(seed: int, view: int = 0, scene_index: int = 1,
                 features: tuple[str, ...] = ()) -> dict:
    """Render one SynthRooms frame.

    Args:
        seed: defines the room (size, furniture, materials, lights); the same seed and view
            always give the same frame.
        view: which camera in that room (views of one room are different hand-held poses).
        scene_index: number in the scene name, e.g. ``bedroom_0007``.
        features: canonical feature names (`features.canonical`); () is the v1 generator.

    Returns:
        dict with ``image`` uint8 (480, 640, 3) RGB, ``depth`` float32 (480, 640) metres
        (filled, > 0 everywhere), ``raw_depth`` float32 (480, 640) (0 = Kinect hole, else equal to
        ``depth``; with `kinect` its own noisy value), ``scene`` str and ``scene_type`` str.
    """
    fr = render_stored(seed, view, scene_index, features)
    return dict(image=np.ascontiguousarray(np.transpose(fr["image"], (2, 1, 0))),
                depth=np.ascontiguousarray(fr["depth"].T),
                raw_depth=np.ascontiguousarray(fr["raw_depth"].T),
                scene=fr["scene"], scene_type=fr["scene_type"])


def frame_plan(n_frames: int, seed: int) -> list[tuple[int, int, int]]:
    """(room seed, view, scene index) of each frame: 1-3 consecutive views per room, like NYU
    scenes. Depends only on (n_frames, seed), so results do not depend on the worker count."""
    rng = np.random.default_rng([seed, 0xF00D])
    plan: list[tuple[int, int, int]] = []
    room = 0
    while len(plan) < n_frames:
        views = int(rng.choice([1, 2, 3], p=[0.3, 0.4, 0.3]))
        rs = room_seed(seed, room)
        plan += [(rs, v, room + 1) for v in range(views)]
        room += 1
    return plan[:n_frames]
