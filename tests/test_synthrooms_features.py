"""SynthRooms generator features (data.source.features): [] is the v1 generator, the features are
deterministic, each changes what it should and nothing else, bad names are refused."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from depth_lightning.data import synthrooms as sr
from depth_lightning.data.synthrooms import features as feat
from depth_lightning.data.synthrooms import frames, kinect
from depth_lightning.data.synthrooms.camera import pick_camera, rays
from depth_lightning.data.synthrooms.depthnoise import _FB
from depth_lightning.data.synthrooms.layout import make_room
from depth_lightning.data.synthrooms.raycast import cast
from depth_lightning.data.synthrooms.sensor import develop
from depth_lightning.data.synthrooms.shading import shade
from depth_lightning.data.synthrooms.source import SynthRooms
from depth_lightning.data.synthrooms.spaces import space_type
from depth_lightning.errors import DepthLightningError

ALL = feat.ALL_FEATURES


def _arrays(path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in ("images", "depths", "rawDepths")}


def _v1_stored(seed: int, view: int) -> tuple[np.ndarray, ...]:
    """A frame the way the v1 generator made it, composed from the rendering steps without any
    feature code (build_room, camerafx, depthnoise are not involved)."""
    room = make_room(seed)
    rng = np.random.default_rng([seed, 1, view])
    o, basis = pick_camera(room, rng)
    D = rays(*basis)
    t, obj = cast(o, D, room.size, room.boxes.lo, room.boxes.hi, basis)
    img, hole_prop, normal = shade(room, o, D, t, obj, rng)
    img = develop(img, rng)
    depth = np.round(np.minimum(t, np.float32(sr.MAX_DEPTH)) * 4096) * np.float32(1 / 4096)
    holes = kinect.holes(t, hole_prop, normal, D, rng)
    return frames._stored_layout(img, depth, holes, rng)


def _render(i: int, features, n: int = 12, seed: int = 0) -> dict:
    s, v, si = frames.frame_plan(n, seed)[i]
    return sr.render_frame(s, v, si, feat.canonical(features))


def _depth_edges(depth: np.ndarray) -> int:
    lz = np.log(depth)
    return int((np.abs(np.diff(lz, axis=0)) > 0.05).sum() + (np.abs(np.diff(lz, axis=1)) > 0.05)
               .sum())


def test_no_features_is_the_v1_generator(tmp_path):
    path = sr.generate(tmp_path / "v1.mat", n_frames=4, seed=11, workers=1, progress=False,
                       features=[])
    a = _arrays(path)
    for i, (s, v, _) in enumerate(frames.frame_plan(4, 11)):
        image, depth, raw = _v1_stored(s, v)
        assert a["images"][i].tobytes() == image.tobytes()
        assert a["depths"][i].tobytes() == depth.tobytes()
        assert a["rawDepths"][i].tobytes() == raw.tobytes()
    with h5py.File(path, "r") as f:
        assert "features" not in f.attrs  # v1 attributes exactly
    assert sr.synthrooms_path(tmp_path, 4, 11, []).name == "synthrooms_v1_n4_s11.mat"


def test_file_names_and_settings():
    v1 = sr.synthrooms_path("d", 20, 0, ())
    assert sr.synthrooms_path("d", 20, 0) == v1  # the default: the v1 generator
    every = sr.synthrooms_path("d", 20, 0, ALL)
    assert every == sr.synthrooms_path("d", 20, 0, ["spaces", "kinect", "camera", "clutter",
                                                    "camera"])  # order and repeats: same set
    names = {sr.synthrooms_path("d", 20, 0, [f]).name for f in ALL} | {v1.name, every.name}
    assert len(names) == len(ALL) + 2
    assert every.name == f"synthrooms_v1_f{feat.FEATURES_VERSION}-camera-clutter-kinect-spaces" \
                         "_n20_s0.mat"
    with pytest.raises(DepthLightningError, match=r"data\.source\.features: unknown feature "
                                                  r"'fog'"):
        SynthRooms(frames=2, seed=0, data_dir="/nonexistent", features=["clutter", "fog"])
    with pytest.raises(DepthLightningError, match=r"data\.source\.features"):
        SynthRooms(frames=2, seed=0, data_dir="/nonexistent", features=3)


def test_source_features_and_fingerprint(tmp_path):
    v1 = SynthRooms(frames=2, seed=0, data_dir=tmp_path, features=[])
    assert (tmp_path / "synthrooms_v1_n2_s0.mat").is_file() and v1.features == ()
    assert "features" not in v1.fingerprint()  # the v1 cache key, unchanged
    cam = SynthRooms(frames=2, seed=0, data_dir=tmp_path, features=["camera"])
    assert cam.fingerprint()["features"] == ["camera"]
    assert cam.fingerprint()["path"] != v1.fingerprint()["path"]
    assert SynthRooms(frames=2, seed=0, data_dir=tmp_path).features == ()  # default: v1


def test_deterministic_with_features(tmp_path):
    a = sr.generate(tmp_path / "a.mat", n_frames=3, seed=5, workers=1, progress=False,
                    features=ALL)
    b = sr.generate(tmp_path / "b.mat", n_frames=3, seed=5, workers=2, progress=False,
                    features=ALL)
    x, y = _arrays(a), _arrays(b)
    for k in x:
        assert x[k].tobytes() == y[k].tobytes(), k
    with h5py.File(a, "r") as f:
        assert f.attrs["features"] == ",".join(ALL)
        types = ["".join(map(chr, f[r][()].ravel())) for r in f["sceneTypes"][0]]
    assert all(t in sr.SCENE_TYPES + sr.SPACE_TYPES for t in types)


def test_camera_changes_images_only():
    for i in (0, 3):
        base, cam = _render(i, []), _render(i, ["camera"])
        np.testing.assert_array_equal(cam["depth"], base["depth"])
        np.testing.assert_array_equal(cam["raw_depth"], base["raw_depth"])
        diff = np.abs(cam["image"].astype(int) - base["image"].astype(int))
        assert diff.mean() > 2.0, diff.mean()


def test_kinect_changes_raw_depth_only():
    for i in (0, 3):
        base, kin = _render(i, []), _render(i, ["kinect"])
        np.testing.assert_array_equal(kin["depth"], base["depth"])
        np.testing.assert_array_equal(kin["image"], base["image"])
        holes = base["raw_depth"] == 0
        np.testing.assert_array_equal(kin["raw_depth"] == 0, holes)  # the same holes
        z, r = base["depth"][~holes], kin["raw_depth"][~holes]
        assert (r != z).mean() > 0.9  # noisy nearly everywhere...
        step = z**2 / (_FB * 8)  # one disparity step (1/8 px) at that depth
        assert np.median(np.abs(r - z) / step) < 1.5  # ...by about a disparity step
        assert np.unique(r).size < np.unique(z).size  # and quantised


def test_clutter_adds_objects_and_depth_edges():
    seeds = [frames.room_seed(0, k) for k in range(6)]
    more = [len(frames.build_room(s, ("clutter",)).boxes.lo) - len(make_room(s).boxes.lo)
            for s in seeds]
    assert min(more) >= 5 and np.mean(more) >= 20, more
    edges = [(_depth_edges(_render(i, [])["depth"]), _depth_edges(_render(i, ["clutter"])["depth"]))
             for i in (0, 3, 6)]
    assert sum(e[1] for e in edges) > 1.2 * sum(e[0] for e in edges), edges


def test_spaces_are_bigger_and_deeper():
    seeds = [frames.room_seed(0, k) for k in range(60)]
    kinds = [space_type(s) for s in seeds]
    assert {k for k in kinds if k} == set(sr.SPACE_TYPES) and None in kinds  # homes remain
    space = [s for s, k in zip(seeds, kinds, strict=True) if k]
    room = [make_room(s) for s in space]
    big = [frames.build_room(s, ("spaces",)) for s in space]
    assert all(r.scene_type in sr.SPACE_TYPES for r in big)
    assert np.median([r.size[:2].max() for r in big]) > np.median([r.size[:2].max()
                                                                   for r in room]) + 2
    home = [s for s, k in zip(seeds, kinds, strict=True) if not k][0]
    assert len(frames.build_room(home, ("spaces",)).boxes.lo) == len(make_room(home).boxes.lo)
    plan = frames.frame_plan(12, 0)
    far_v1, far = [], []
    for s, v, si in plan[:8]:
        if space_type(s):
            far_v1.append(np.percentile(sr.render_frame(s, v, si)["depth"], 95))
            far.append(np.percentile(sr.render_frame(s, v, si, ("spaces",))["depth"], 95))
    assert len(far) >= 3 and np.mean(far) > np.mean(far_v1) + 1.0, (far, far_v1)


@pytest.mark.parametrize("features", [["spaces", "clutter"], list(ALL)])
def test_depth_consistent_with_features(features):
    for i in (1, 4):
        fr = _render(i, features)
        d, raw = fr["depth"], fr["raw_depth"]
        assert np.isfinite(d).all() and d.min() > 0.05 and d.max() <= sr.MAX_DEPTH
        holes = raw == 0
        assert 0.01 < holes.mean() < 0.5
        rel = np.abs(raw[~holes] - d[~holes]) / d[~holes]
        assert np.percentile(rel, 99) < 0.1  # raw follows the filled depth where valid
        assert fr["image"].std() > 10


def test_cli_features(tmp_path, capsys):
    out = tmp_path / "c.mat"
    assert sr.main([str(out), "--frames", "2", "--workers", "1", "--features",
                    "camera,kinect"]) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["features"] == "camera,kinect"
    assert sr.main([str(tmp_path / "v1.mat"), "--frames", "2", "--workers", "1",
                    "--features", ""]) == 0
    with h5py.File(tmp_path / "v1.mat", "r") as f:
        assert "features" not in f.attrs
    with pytest.raises(DepthLightningError, match="--features: unknown feature 'fog'"):
        sr.main([str(tmp_path / "x.mat"), "--frames", "2", "--features", "fog"])
