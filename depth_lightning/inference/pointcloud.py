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

from depth_lightning.core.files import write_bytes
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import NYU, FrameGeometry, scale_intrinsics

Intrinsics = tuple[float, float, float, float]


def camera_intrinsics(intrinsics: Sequence[float] | None, size_hw: tuple[int, int],
                      setting: str = "intrinsics", geometry: FrameGeometry = NYU) -> Intrinsics:
    """(fx, fy, cx, cy) in pixels of a photo of `size_hw`: the camera of the model's frame chain
    (NYU V2's Kinect; KITTI's left colour camera) scaled to that size when `intrinsics` is
    None, else the four numbers given (for the photo as it is)."""
    if intrinsics is None:
        if geometry.intrinsics is None:
            return scale_intrinsics(NYU.intrinsics, size_hw, NYU.frame)
        return scale_intrinsics(geometry.intrinsics, size_hw, geometry.frame)
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


def surface(depth: np.ndarray, photo: np.ndarray, intrinsics: Intrinsics, max_points: int,
            max_jump: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The point cloud on a strided pixel grid (at most about `max_points` points) joined into
    triangles between neighbouring pixels, except across depth jumps above `max_jump` (a
    fraction of the depth), which are occlusion edges: (points, colours, triangles (M,3))."""
    h, w = depth.shape
    step = max(1, math.ceil(math.sqrt(h * w / max(1, max_points))))
    small, colours = depth[::step, ::step], photo[::step, ::step, :3]
    fx, fy, cx, cy = intrinsics
    grid = (fx / step, fy / step, cx / step, cy / step)
    points, mask = backproject(np.where(np.isfinite(small), small, 0), grid)
    index = np.full(small.shape, -1, np.int64)
    index[mask] = np.arange(len(points))
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    z = np.where(mask, small, np.nan)
    quad = np.stack([z[:-1, :-1], z[:-1, 1:], z[1:, :-1], z[1:, 1:]])
    with np.errstate(invalid="ignore"):
        smooth = (np.nanmax(quad, 0) - np.nanmin(quad, 0)) <= max_jump * np.nanmin(quad, 0)
    keep = (np.stack([a, b, c, d]) >= 0).all(0) & smooth
    faces = np.concatenate([np.stack([a, c, b], -1)[keep], np.stack([b, c, d], -1)[keep]])
    return points, np.ascontiguousarray(colours[mask], np.uint8), faces


def glb_bytes(points: np.ndarray, colors: np.ndarray, faces: np.ndarray | None = None) -> bytes:
    """A glTF 2.0 binary of the points with vertex colours, as triangles when `faces` is given
    (web viewers draw meshes everywhere, bare points not always), else as mode POINTS; in
    glTF's frame (y up, the camera looking along -z): the camera frame's y and z flipped."""
    pos = np.ascontiguousarray(points * np.array([1, -1, -1], np.float32), dtype="<f4")
    col = np.ascontiguousarray(np.c_[colors, np.full(len(colors), 255, np.uint8)], dtype="u1")
    # the flip mirrors the frame, so the winding turns too: faces stay front-facing
    idx = np.ascontiguousarray(faces[:, ::-1], dtype="<u4") if faces is not None else None
    parts = [pos.tobytes(), col.tobytes()] + ([idx.tobytes()] if idx is not None else [])
    offsets = np.cumsum([0, *map(len, parts)]).tolist()
    lo, hi = (pos.min(0).tolist(), pos.max(0).tolist()) if len(pos) else ([0] * 3, [0] * 3)
    accessors = [
        {"bufferView": 0, "componentType": 5126, "count": len(pos), "type": "VEC3",
         "min": lo, "max": hi},
        {"bufferView": 1, "componentType": 5121, "normalized": True, "count": len(col),
         "type": "VEC4"}]
    primitive = {"attributes": {"POSITION": 0, "COLOR_0": 1}, "mode": 0}
    if idx is not None:
        accessors.append({"bufferView": 2, "componentType": 5125, "count": idx.size,
                          "type": "SCALAR"})
        primitive.update(indices=2, mode=4, material=0)
    blob = b"".join(parts)
    gltf = {
        "asset": {"version": "2.0", "generator": "depth_lightning"},
        "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [primitive]}],
        "materials": [{"pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 1.0},
                       "doubleSided": True}],
        "buffers": [{"byteLength": len(blob)}],
        "bufferViews": [{"buffer": 0, "byteOffset": offsets[i], "byteLength": len(part)}
                        for i, part in enumerate(parts)],
        "accessors": accessors,
    }
    text = json.dumps(gltf, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 4)  # chunks are 4-byte aligned
    blob += b"\0" * (-len(blob) % 4)
    chunks = (struct.pack("<II", len(text), 0x4E4F534A) + text
              + struct.pack("<II", len(blob), 0x004E4942) + blob)
    return struct.pack("<III", 0x46546C67, 2, 12 + len(chunks)) + chunks
