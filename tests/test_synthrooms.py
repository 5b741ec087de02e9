"""SynthRooms: NYU V2 layout, plausible depth, determinism, atomic writes, caching."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from depth_lightning.data import synthrooms as sr
from depth_lightning.data.synthrooms import frames, writer

N = 8


def _decode(f: h5py.File, key: str) -> list[str]:
    return ["".join(map(chr, f[ref][()].ravel())) for ref in f[key][0]]


def _arrays(path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in ("images", "depths", "rawDepths")}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "small.mat"
    # the v1 generator (no features): its frames are what these tests pin down
    return sr.generate(out, n_frames=N, seed=3, workers=1, progress=False, features=())


def test_official_layout(small):
    with h5py.File(small, "r") as f:
        assert f["images"].shape == (N, 3, 640, 480) and f["images"].dtype == np.uint8
        for k in ("depths", "rawDepths"):
            assert f[k].shape == (N, 640, 480) and f[k].dtype == np.float32
            assert f[k].chunks == (1, 640, 480) and f[k].compression == "gzip" and f[k].shuffle
        assert f["scenes"].shape == (1, N) and f["sceneTypes"].shape == (1, N)
        assert f["scenes"].dtype == h5py.ref_dtype
        scenes, types = _decode(f, "scenes"), _decode(f, "sceneTypes")
        assert f.attrs["seed"] == 3 and f.attrs["n_frames"] == N
        assert f.attrs["generator_version"] == sr.GENERATOR_VERSION
        img = f["images"][0].T
    assert img.shape == (480, 640, 3)
    for name, st in zip(scenes, types, strict=True):
        assert isinstance(name, str) and st in sr.SCENE_TYPES
        assert re.fullmatch(rf"{st}_\d{{4}}", name), name
    # 1-3 consecutive views per room, like NYU scenes
    runs = [len(list(g)) for _, g in __import__("itertools").groupby(scenes)]
    assert len(set(scenes)) == len(runs) and max(runs) <= 3


def test_file_matches_render_frame_right_way_up(small):
    seed, view, idx = frames.frame_plan(N, 3)[1]
    fr = sr.render_frame(seed, view, idx)
    assert fr["image"].shape == (480, 640, 3) and fr["image"].dtype == np.uint8
    assert fr["depth"].shape == fr["raw_depth"].shape == (480, 640)
    with h5py.File(small, "r") as f:
        np.testing.assert_array_equal(f["images"][1].T, fr["image"])
        np.testing.assert_array_equal(f["depths"][1].T, fr["depth"])
        np.testing.assert_array_equal(f["rawDepths"][1].T, fr["raw_depth"])
        assert _decode(f, "scenes")[1] == fr["scene"]
    # upright: the floor at the bottom of the image is nearer than the middle of the room
    d = _arrays(small)["depths"].transpose(0, 2, 1).mean(0)  # (480, 640) mean depth map
    assert d[-40:].mean() < d[200:280].mean() - 0.5
    assert d[:40].mean() > d[-40:].mean()


def test_depth_ranges(small):
    a = _arrays(small)
    depth, raw = a["depths"], a["rawDepths"]
    assert np.isfinite(depth).all() and depth.min() > 0.2 and depth.max() <= sr.MAX_DEPTH
    assert 1.0 < np.median(depth) < 6.0
    holes = raw == 0
    assert 0.02 < holes.mean() < 0.4
    assert holes.reshape(N, -1).any(1).all()  # every frame has holes
    np.testing.assert_array_equal(raw[~holes], depth[~holes])
    assert (a["images"].reshape(N, -1).std(1) > 10).all()  # not blank


def test_deterministic_and_worker_independent(small, tmp_path):
    again = sr.generate(tmp_path / "again.mat", n_frames=N, seed=3, workers=2, progress=False,
                        features=())
    a, b = _arrays(small), _arrays(again)
    for k in a:
        assert a[k].tobytes() == b[k].tobytes(), k
    other = sr.generate(tmp_path / "other.mat", n_frames=2, seed=4, workers=1, progress=False)
    c = _arrays(other)
    assert not np.array_equal(c["depths"], a["depths"][:2])
    assert not np.array_equal(c["images"], a["images"][:2])


def test_atomic_write_success_leaves_only_the_file(tmp_path):
    out = sr.generate(tmp_path / "x.mat", n_frames=2, seed=0, workers=1, progress=False)
    assert out == tmp_path / "x.mat"
    assert sorted(os.listdir(tmp_path)) == ["x.mat"]


def test_atomic_write_failure_leaves_nothing(tmp_path, monkeypatch):
    real = writer.render_stored
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("renderer died")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "render_stored", flaky)
    with pytest.raises(RuntimeError, match="renderer died"):
        sr.generate(tmp_path / "x.mat", n_frames=5, seed=0, workers=1, progress=False)
    assert os.listdir(tmp_path) == []


def test_ensure_synthrooms_reuses_existing_file(tmp_path, monkeypatch):
    path = sr.ensure_synthrooms(tmp_path, n_frames=2, seed=1, features=())
    assert path == tmp_path / f"synthrooms_v{sr.GENERATOR_VERSION}_n2_s1.mat"
    mtime = path.stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("must not regenerate")

    monkeypatch.setattr(writer, "generate", boom)
    assert sr.ensure_synthrooms(tmp_path, n_frames=2, seed=1, features=[]) == path
    assert path.stat().st_mtime_ns == mtime
    assert not list(tmp_path.glob("*.tmp*"))


def test_cli_with_preview(tmp_path, capsys):
    out, png = tmp_path / "cli.mat", tmp_path / "preview.png"
    assert sr.main([str(out), "--frames", "2", "--seed", "5", "--workers", "1",
                    "--preview", str(png)]) == 0
    assert out.exists() and png.stat().st_size > 1000
    assert "frames/s" in capsys.readouterr().out


def test_package_api_and_imports():
    """The package re-exports its public API, and importing it pulls in nothing of the model side
    (spawned render workers import it)."""
    assert sr.generate is writer.generate and sr.render_frame is frames.render_frame
    assert sr.MAX_DEPTH == 10.0 and sr.SCENE_TYPES[0] == "bedroom"
    code = ("import sys, depth_lightning.data.synthrooms; print(' '.join(sorted(m for m in "
            "sys.modules if m.startswith('depth_lightning.'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.split()
    assert "depth_lightning.data.synthrooms.writer" in loaded
    shared = {"depth_lightning.data", "depth_lightning.data.synthrooms", "depth_lightning.geometry",
              "depth_lightning.core", "depth_lightning.core.files", "depth_lightning.errors"}
    for m in loaded:
        assert m in shared or m.startswith("depth_lightning.data.synthrooms."), m
