"""The folder dataset on real NYU frames laid out as DenseDepth nyu2_test, BTS and rgb/+depth/."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_module, small_run_args
from nyu_files import require_shared_data
from PIL import Image

from depth_lightning.data.datamodule import DepthDataModule
from depth_lightning.data.folder import FolderRGBD, discover_pairs
from depth_lightning.errors import DataError


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def read_png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im)


@pytest.fixture
def nyu2_test(tmp_path) -> Path:
    """The 17 V1 frames as DenseDepth's nyu2_test: NNNNN_colors.png + NNNNN_depth.png."""
    src = require_shared_data() / "nyu_v1_samples"
    root = tmp_path / "nyu2_test"
    root.mkdir()
    for rgb in sorted((src / "rgb").glob("*.png")):
        shutil.copy(rgb, root / f"{rgb.stem}_colors.png")
        shutil.copy(src / "depth" / rgb.name, root / f"{rgb.stem}_depth.png")
    return root


@pytest.fixture
def bts(tmp_path) -> Path:
    """The 3 V2 raw frames as BTS's sync folder: SCENE/rgb_N.jpg + SCENE/sync_depth_N.png."""
    src = require_shared_data() / "nyu_v2_raw_samples"
    root = tmp_path / "sync"
    for i, rgb in enumerate(sorted((src / "rgb").glob("rgb_*.jpg"))):
        scene = root / ("bedroom_0001" if i < 2 else "kitchen_0003")
        scene.mkdir(parents=True, exist_ok=True)
        number = rgb.stem.removeprefix("rgb_")
        shutil.copy(rgb, scene / rgb.name)
        shutil.copy(src / "depth" / f"sync_depth_{number}.png", scene / f"sync_depth_{number}.png")
    return root


def test_nyu2_test_layout_items_equal_the_files(nyu2_test):
    ds = FolderRGBD(nyu2_test)
    assert len(ds) == 17
    for i in (0, 7, 16):
        item = ds[i]
        name = item["name"]
        rgb = read_rgb(nyu2_test / f"{name}_colors.png")
        mm = read_png(nyu2_test / f"{name}_depth.png")
        assert item["image"].dtype == np.uint8 and item["image"].shape == (480, 640, 3)
        assert np.array_equal(item["image"], rgb)
        expected = mm.astype(np.float32) / np.float32(1000.0)
        assert item["depth"].dtype == np.float32
        assert np.array_equal(item["depth"], expected)
        assert np.array_equal(item["raw_depth"], expected)
        assert item["scene"] == name, "a flat folder: each frame is its own scene"


def test_bts_layout_in_scene_folders_keeps_holes(bts):
    ds = FolderRGBD(bts)
    assert ds.names == ["bedroom_0001/00000", "bedroom_0001/00050", "kitchen_0003/00100"]
    assert ds.scenes == ["bedroom_0001", "bedroom_0001", "kitchen_0003"]
    item = ds[2]
    mm = read_png(bts / "kitchen_0003" / "sync_depth_00100.png")
    assert np.array_equal(item["depth"], mm.astype(np.float32) / np.float32(1000.0))
    holes = mm == 0
    assert 0.2 < holes.mean() < 0.4, "the raw V2 frames have 25-33 % holes"
    assert (item["depth"][holes] == 0).all() and (item["depth"][~holes] > 0).all()
    assert np.array_equal(item["image"], read_rgb(bts / "kitchen_0003" / "rgb_00100.jpg"))


def test_shared_folders_as_they_are():
    data = require_shared_data()
    # nyu_v2_raw_samples: BTS names split into rgb/ and depth/
    pairs, unmatched = discover_pairs(data / "nyu_v2_raw_samples")
    assert [p.depth for p in pairs] == [f"depth/sync_depth_{n}.png" for n in
                                        ("00000", "00050", "00100")] and unmatched == 0
    # nyu_v1_samples: the generic rgb/NAME.png + depth/NAME.png (label/ is ignored)
    ds = FolderRGBD(data / "nyu_v1_samples", depth_scale=1000.0)
    assert len(ds) == 17 and ds.pairs[0].depth == "depth/00040.png"


def test_depth_scale_and_resizing(tmp_path):
    root = tmp_path / "mine"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    depth = rng.integers(0, 20000, (240, 320)).astype(np.uint16)
    depth[:10] = 0
    Image.fromarray(rgb).save(root / "rgb" / "a.jpg", quality=95)
    Image.fromarray(depth).save(root / "depth" / "a.png")
    item = FolderRGBD(root, depth_scale=5000.0)[0]
    assert item["image"].shape == (480, 640, 3) and item["depth"].shape == (480, 640)
    # nearest neighbour: every source depth value becomes a 2x2 block, none is invented
    expected = np.repeat(np.repeat(depth, 2, 0), 2, 1).astype(np.float32) / np.float32(5000.0)
    assert np.array_equal(item["depth"], expected)
    assert (item["depth"][:20] == 0).all()


def test_bad_folders_are_one_line_errors(tmp_path, caplog):
    with pytest.raises(DataError, match="does not exist"):
        FolderRGBD(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="no RGB-D pairs found") as err:
        FolderRGBD(empty)
    assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="depth_scale"):
        FolderRGBD(empty, depth_scale=0)

    bad = tmp_path / "bad"
    bad.mkdir()
    img = np.zeros((48, 64, 3), np.uint8)
    Image.fromarray(img).save(bad / "x_colors.png")
    Image.fromarray(img).save(bad / "x_depth.png")  # an RGB picture, not a depth map
    with pytest.raises(DataError, match="expected a single-channel 16-bit PNG"):
        FolderRGBD(bad)
    Image.fromarray(np.zeros((40, 64), np.uint16)).save(bad / "x_depth.png")
    with pytest.raises(DataError, match="64x48 but its depth map"):
        FolderRGBD(bad)
    Image.fromarray(np.zeros((48, 64), np.uint16)).save(bad / "x_depth.png")
    Image.fromarray(img).save(bad / "y_colors.png")  # no depth: skipped with a warning
    assert len(FolderRGBD(bad)) == 1
    assert "1 RGB images without a depth map" in caplog.text


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_truncated_png_is_a_data_error_not_a_worker_crash(nyu2_test, tmp_path):
    truncate(nyu2_test / "00040_depth.png")
    ds = FolderRGBD(nyu2_test)  # the header is intact
    with pytest.raises(DataError, match="00040_depth.png.*corrupt or truncated"):
        ds[0]
    dm = DepthDataModule(source="folder", root=str(nyu2_test), data_dir=str(tmp_path),
                         num_workers=0, cache_workers=2, split={"kind": "all"})
    with pytest.raises(DataError, match="00040_depth.png") as err:
        dm.prepare_data()
    assert "\n" not in str(err.value)
    assert not list(tmp_path.glob("nyu2_test.cache-*")), "no cache left behind"


def test_datamodule_caches_the_folder_and_notices_changes(nyu2_test, tmp_path):
    kw = dict(source="folder", root=str(nyu2_test), data_dir=str(tmp_path), num_workers=0,
              batch_size=4, cache_workers=1, split={"kind": "all"})
    dm = DepthDataModule(**kw)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_idx) == len(dm.val_idx) == 17
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (4, 3, 228, 304) and batch["depth"].shape == (4, 1, 55, 74)
    (cache,) = tmp_path.glob("nyu2_test.cache-*")
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["frames"] == 17
    first = FolderRGBD(nyu2_test)[0]
    assert np.array_equal(dm.cache.depth[0], first["depth"][::2, ::2])
    stamp = (cache / "images.npy").stat().st_mtime_ns
    DepthDataModule(**kw).prepare_data()
    assert (cache / "images.npy").stat().st_mtime_ns == stamp, "an unchanged folder is reused"
    os.utime(nyu2_test / "00040_depth.png", ns=(1, 1))
    DepthDataModule(**kw).prepare_data()
    assert len(list(tmp_path.glob("nyu2_test.cache-*"))) == 2, "a changed file: a new cache"


def test_train_on_a_folder_fast_dev_run(nyu2_test, tmp_path):
    out = tmp_path / "outputs"
    res = run_module("depth_lightning.train", "data=folder", f"data.root={nyu2_test}",
                     "data.split.kind=scene", "++trainer.fast_dev_run=true",
                     *small_run_args(tmp_path / "data", out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = sorted((out / "train" / "runs").glob("*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"mean", "coarse"} <= set(metrics)
    assert all(np.isfinite(v) for stage in metrics.values() for v in stage.values())


def test_folder_config_without_root_is_one_line(tmp_path):
    res = run_module("depth_lightning.train", "data=folder", "++trainer.fast_dev_run=true",
                     *small_run_args(tmp_path / "data", tmp_path / "outputs"), cwd=tmp_path)
    assert res.returncode != 0
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "data.root" in errors[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr
