"""Point clouds: predict's NAME.ply read back with plyfile and projected onto the depth map."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from fixtures_app import nyu_prediction, tiny_ckpts  # noqa: F401
from PIL import Image

from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import NYU_INTRINSICS
from depth_lightning.inference.pointcloud import backproject, camera_intrinsics, glb_bytes, surface


def test_predicts_ply_projects_back_onto_its_depth_map(nyu_prediction):  # noqa: F811
    plyfile = pytest.importorskip("plyfile")
    out, name = nyu_prediction.out, nyu_prediction.name
    depth = np.load(out / f"{name}_depth.npy")
    photo = np.asarray(Image.open(nyu_prediction.photo_path).convert("RGB"))
    vertex = plyfile.PlyData.read(str(out / f"{name}.ply"))["vertex"]
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], 1).astype(np.float64)
    rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], 1)
    assert len(xyz) == depth.size  # every pixel of a predicted map is valid
    fx, fy, cx, cy = NYU_INTRINSICS  # the photo is 640x480: no scaling
    u, v = fx * xyz[:, 0] / xyz[:, 2] + cx, fy * xyz[:, 1] / xyz[:, 2] + cy
    cols, rows = np.round(u).astype(int), np.round(v).astype(int)
    err_px = max(np.abs(u - cols).max(), np.abs(v - rows).max())
    err_m = np.abs(depth[rows, cols] - xyz[:, 2]).max()
    print(f"PLY reprojection: {err_px:.1e} px, {err_m:.1e} m")
    assert err_px < 1e-2 and err_m < 1e-5
    assert np.array_equal(rgb, photo[rows, cols])  # each point carries its pixel's colour
    assert np.array_equal(np.bincount(rows * 640 + cols, minlength=depth.size),
                          np.ones(depth.size))  # one point per pixel


def test_intrinsics_scale_with_the_photo_and_are_checked():
    assert camera_intrinsics(None, (240, 320)) == pytest.approx(
        [v / 2 for v in NYU_INTRINSICS])
    assert camera_intrinsics([500, 500, 100, 80], (10, 10)) == (500.0, 500.0, 100.0, 80.0)
    for bad in ([1, 2, 3], [0, 1, 2, 3], ["a", 1, 2, 3], "500"):
        with pytest.raises(DepthLightningError, match="^intrinsics: "):
            camera_intrinsics(bad, (10, 10))


def test_a_plane_stays_a_plane_and_holes_make_no_points():
    depth = np.full((6, 8), 2.0)
    depth[0, 0], depth[1, 1] = 0, np.nan
    points, mask = backproject(depth, (4.0, 4.0, 3.5, 2.5))
    assert len(points) == 46 and not mask[0, 0] and not mask[1, 1]
    assert np.all(points[:, 2] == 2.0)
    assert points[0].tolist() == pytest.approx([(1 - 3.5) * 2 / 4, (0 - 2.5) * 2 / 4, 2.0])


def test_the_3d_view_is_a_valid_gltf_mesh_without_faces_across_edges():
    depth = np.full((20, 20), 1.0)
    depth[:, 10:] = 3.0  # an occlusion edge between columns 9 and 10
    photo = np.zeros((20, 20, 3), np.uint8)
    points, colours, faces = surface(depth, photo, (20.0, 20.0, 10.0, 10.0), max_points=400)
    assert len(points) == 400 and faces.shape == (2 * 19 * 18, 3)  # no quad spans the edge
    data = glb_bytes(points, colours, faces)
    magic, version, length = struct.unpack("<III", data[:12])
    assert (magic, version, length) == (0x46546C67, 2, len(data))
    n = struct.unpack("<I", data[12:16])[0]
    gltf = json.loads(data[20:20 + n])
    assert [a["count"] for a in gltf["accessors"]] == [400, 400, faces.size]
    assert gltf["meshes"][0]["primitives"][0]["mode"] == 4
