"""Point clouds: a depth map and its photo back-projected through a pinhole camera.

Pixel (row v, column u) at depth z becomes the point ``x = (u - cx) z / fx``, ``y = (v - cy) z /
fy``, ``z`` (OpenCV's camera frame: x right, y down, z forward, in metres; pixel centres at
whole coordinates). The default camera is NYU Depth V2's Kinect RGB camera (fx 518.86, fy
519.47, cx 325.58, cy 253.74 at 640x480), scaled to the photo's size. Written as binary PLY
(what MeshLab, CloudCompare, Open3D and plyfile read) and, for web viewers, as a glTF binary
(.glb) of points in glTF's y-up frame.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import NYU_INTRINSICS, scale_intrinsics
from depth_lightning.io import write_bytes

Intrinsics = tuple[float, float, float, float]


def camera_intrinsics(intrinsics: Sequence[float] | None, size_hw: tuple[int, int],
                      setting: str = "intrinsics") -> Intrinsics:
    """(fx, fy, cx, cy) in pixels of a photo of `size_hw`: NYU V2's Kinect scaled to that size
    when `intrinsics` is None, else the four numbers given (for the photo as it is)."""
    if intrinsics is None:
        return scale_intrinsics(NYU_INTRINSICS, size_hw)
    values = list(intrinsics) if not isinstance(intrinsics, str | bytes) else [intrinsics]
    try:
        fx, fy, cx, cy = (float(v) for v in values)
    except (TypeError, ValueError):
        raise DepthLightningError(f"{setting}: expected four numbers [fx, fy, cx, cy] in "
                                  f"pixels, got {intrinsics!r}") from None
    if not all(math.isfinite(v) for v in (fx, fy, cx, cy)) or fx <= 0 or fy <= 0:
        raise DepthLightningError(f"{setting}: fx and fy must be positive and all four finite, "
                                  f"got {[fx, fy, cx, cy]}")
    return fx, fy, cx, cy


def backproject(depth: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Depth (H,W) in metres -> points (N,3) float32, one per valid pixel (finite, > 0), and
    the (H,W) mask of those pixels (row-major order, as the points)."""
    fx, fy, cx, cy = intrinsics
    depth = np.asarray(depth, dtype=np.float64)
    mask = np.isfinite(depth) & (depth > 0)
    v, u = np.nonzero(mask)
    z = depth[v, u]
    points = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=1)
    return points.astype(np.float32), mask


def point_cloud(depth: np.ndarray, photo: np.ndarray,
                intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Points (N,3) float32 and their colours (N,3) uint8 from the photo (same size as depth)."""
    if photo.shape[:2] != depth.shape:
        raise ValueError(f"photo {photo.shape[:2]} and depth {depth.shape} differ in size")
    points, mask = backproject(depth, intrinsics)
    return points, np.ascontiguousarray(photo[mask][:, :3], dtype=np.uint8)


def ply_bytes(points: np.ndarray, colors: np.ndarray) -> bytes:
    """A binary little-endian PLY of coloured vertices (x y z float, red green blue uchar)."""
    n = len(points)
    header = ("ply\nformat binary_little_endian 1.0\ncomment depth_lightning point cloud, "
              "metres, camera frame x right y down z forward\n"
              f"element vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    rows = np.empty(n, dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    rows["xyz"], rows["rgb"] = points, colors
    return header.encode("ascii") + rows.tobytes()


def write_ply(path: str | os.PathLike[str], points: np.ndarray, colors: np.ndarray) -> Path:
    """Write the coloured points as binary PLY, atomically."""
    return write_bytes(path, ply_bytes(points, colors))


def subsample(points: np.ndarray, colors: np.ndarray,
              max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points`, evenly strided (a browser draws a few hundred thousand smoothly)."""
    step = max(1, math.ceil(len(points) / max(1, max_points)))
    return points[::step], colors[::step]


def glb_bytes(points: np.ndarray, colors: np.ndarray) -> bytes:
    """A glTF 2.0 binary holding the points (mode POINTS) with vertex colours, in glTF's frame
    (y up, the camera looking along -z): the camera frame's y and z flipped."""
    pos = np.ascontiguousarray(points * np.array([1, -1, -1], np.float32), dtype="<f4")
    col = np.ascontiguousarray(np.c_[colors, np.full(len(colors), 255, np.uint8)], dtype="u1")
    blob = pos.tobytes() + col.tobytes()
    lo, hi = (pos.min(0).tolist(), pos.max(0).tolist()) if len(pos) else ([0] * 3, [0] * 3)
    gltf = {
        "asset": {"version": "2.0", "generator": "depth_lightning"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "COLOR_0": 1}, "mode": 0}]}],
        "buffers": [{"byteLength": len(blob)}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": pos.nbytes},
                        {"buffer": 0, "byteOffset": pos.nbytes, "byteLength": col.nbytes}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": len(pos), "type": "VEC3",
             "min": lo, "max": hi},
            {"bufferView": 1, "componentType": 5121, "normalized": True, "count": len(col),
             "type": "VEC4"}],
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned
    blob += b"\0" * (-len(blob) % 4)
    chunks = (struct.pack("<II", len(text), 0x4E4F534A) + text
              + struct.pack("<II", len(blob), 0x004E4942) + blob)
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks
