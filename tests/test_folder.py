"""The folder source (depth_lightning.data.folder) on real NYU frames laid out as DenseDepth
nyu2_test, BTS and rgb/+depth/, and frames of other sizes."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import compose, run_job, small_run_args
from nyu_files import require_shared_data
from PIL import Image

from depth_lightning.core.plugins import build
from depth_lightning.data.folder import FolderRGBD, discover_pairs
from depth_lightning.errors import DataError
from depth_lightning.geometry import to_input_frame


def folder_module(root: Path, data_dir: Path, *overrides: str):
    """The data module of `data=folder` on `root`, its caches under `data_dir`/cache."""
    cfg = compose("train", "data=folder", f"data.root={root}", f"paths.data_dir={data_dir}",
                  "data.num_workers=0", "data.cache_workers=1", *overrides)
    return build(cfg.data, "data")


def caches(data_dir: Path) -> list[Path]:
    root = data_dir / "cache"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def folder_run_args(data_dir: Path, out_dir: Path) -> list[str]:
    """small_run_args for a source that is not SynthRooms (data=folder)."""
    return small_run_args(data_dir, out_dir, synthetic=False)


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


def write_frame(root: Path, name: str, size_hw: tuple[int, int], seed: int = 0,
                ext: str = "png") -> tuple[np.ndarray, np.ndarray]:
    """rgb/NAME.EXT and depth/NAME.png of the given size; returns (rgb, 16-bit depth)."""
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    (root / "depth").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (*size_hw, 3), dtype=np.uint8)
    depth = rng.integers(0, 20000, size_hw).astype(np.uint16)
    depth[:10] = 0
    Image.fromarray(rgb).save(root / "rgb" / f"{name}.{ext}", quality=95)
    Image.fromarray(depth).save(root / "depth" / f"{name}.png")
    return rgb, depth


def test_frames_keep_their_size_and_depth_scale(tmp_path, caplog):
    root = tmp_path / "mine"
    _, depth = write_frame(root, "a", (240, 320), ext="jpg")
    ds = FolderRGBD(root, depth_scale=5000.0)
    assert "1 of 1 frames are not 640x480" in caplog.text
    item = ds[0]
    assert item["image"].shape == (240, 320, 3) and item["depth"].shape == (240, 320)
    assert np.array_equal(item["image"], read_rgb(root / "rgb" / "a.jpg"))
    assert item["depth"].dtype == np.float32
    assert np.array_equal(item["depth"], depth.astype(np.float32) / np.float32(5000.0))
    assert (item["depth"][:10] == 0).all() and np.array_equal(item["raw_depth"], item["depth"])
    assert item["bad_values"] == 0 and item["name"] == "a" and item["scene"] == "a"


def test_frames_of_other_sizes_come_through_the_cache_at_320x240(tmp_path):
    root = tmp_path / "mine"
    sizes = {"a": (240, 320), "b": (300, 400), "c": (120, 160)}
    files = {name: write_frame(root, name, size, seed=i)
             for i, (name, size) in enumerate(sizes.items())}
    dm = folder_module(root, tmp_path / "data", "data.depth_scale=5000")
    dm.prepare_data()
    dm.setup("fit")
    assert dm.cache.images.shape == (3, 240, 320, 3) and dm.cache.depth.shape == (3, 240, 320)
    for i, name in enumerate(sorted(sizes)):
        rgb, mm = files[name]
        depth = mm.astype(np.float32) / np.float32(5000.0)
        image, small = to_input_frame(rgb, depth)
        assert np.array_equal(dm.cache.images[i], image)
        assert np.array_equal(dm.cache.depth[i], small)
        assert np.array_equal(dm.cache.raw_depth[i], small)
    # a 320x240 frame is the cache's size already: kept as it is
    assert np.array_equal(dm.cache.images[0], files["a"][0])
    assert np.array_equal(dm.cache.depth[0], files["a"][1] / np.float32(5000.0))
    # depth by nearest neighbour: 400x300 -> 320x240 takes rows / columns floor((k + 0.5) 1.25)
    idx_r = np.floor((np.arange(240) + 0.5) * 1.25).astype(int)
    idx_c = np.floor((np.arange(320) + 0.5) * 1.25).astype(int)
    want = files["b"][1][np.ix_(idx_r, idx_c)].astype(np.float32) / np.float32(5000.0)
    assert np.array_equal(dm.cache.depth[1], want)
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (3, 3, 228, 304) and batch["depth"].shape == (3, 1, 55, 74)


def test_size_mismatch_in_a_frame_is_an_error(tmp_path):
    root = tmp_path / "mine"
    write_frame(root, "a", (240, 320))
    Image.fromarray(np.zeros((200, 320), np.uint16)).save(root / "depth" / "a.png")
    with pytest.raises(DataError, match="RGB is 320x240 but its depth map depth/a.png is 320x200"):
        FolderRGBD(root)
    ds = FolderRGBD(root, check=False)  # the frame itself says so as well
    with pytest.raises(DataError, match="a.png: depth map is 320x200 but its RGB image is 320x240"):
        ds[0]


def test_name_and_fingerprint(tmp_path):
    root = tmp_path / "my_frames"
    write_frame(root, "a", (240, 320))
    write_frame(root, "b", (240, 320), seed=1)
    ds = FolderRGBD(root)
    assert ds.name == "my_frames"
    fp = ds.fingerprint()
    st = (root / "depth" / "b.png").stat()
    assert fp["root"] == str(root.resolve()) and fp["scale"] == 1000.0
    assert [f[0] for f in fp["files"]] == ["rgb/a.png", "depth/a.png", "rgb/b.png", "depth/b.png"]
    assert fp["files"][3] == ("depth/b.png", st.st_size, st.st_mtime_ns)
    assert FolderRGBD(root).fingerprint() == fp
    assert FolderRGBD(root, depth_scale=5000.0).fingerprint() != fp
    os.utime(root / "rgb" / "a.png", ns=(1, 1))
    assert FolderRGBD(root).fingerprint() != fp
    write_frame(root, "c", (240, 320), seed=2)
    assert len(FolderRGBD(root).fingerprint()["files"]) == 6, "a new frame: a new listing"


def test_bad_folders_are_one_line_errors(tmp_path, caplog):
    with pytest.raises(DataError, match="does not exist"):
        FolderRGBD(tmp_path / "nope")
    with pytest.raises(DataError, match="data.root: the folder source needs the folder"):
        FolderRGBD(None)
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
    dm = folder_module(nyu2_test, tmp_path / "data", "data.cache_workers=2")
    with pytest.raises(DataError, match="00040_depth.png") as err:
        dm.prepare_data()
    assert "\n" not in str(err.value)
    assert caches(tmp_path / "data") == [], "no cache left behind"


def test_datamodule_caches_the_folder_and_notices_changes(nyu2_test, tmp_path):
    data = tmp_path / "data"
    dm = folder_module(nyu2_test, data, "data.batch_size=4", "data.eval_batch_size=4")
    assert dm.split_cfg["kind"] == "all" and dm.describe() == str(nyu2_test)
    dm.prepare_data()
    dm.setup("fit")
    assert len(dm.train_idx) == len(dm.val_idx) == 17
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape == (4, 3, 228, 304) and batch["depth"].shape == (4, 1, 55, 74)
    (cache,) = caches(data)
    assert cache.name.startswith("nyu2_test.cache-") and dm.cache.root == cache
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["frames"] == 17 and meta["scenes"] == FolderRGBD(nyu2_test).names
    first = FolderRGBD(nyu2_test)[0]
    assert np.array_equal(dm.cache.depth[0], first["depth"][::2, ::2])
    stamp = (cache / "images.npy").stat().st_mtime_ns
    folder_module(nyu2_test, data).prepare_data()
    assert (cache / "images.npy").stat().st_mtime_ns == stamp, "an unchanged folder is reused"
    os.utime(nyu2_test / "00040_depth.png", ns=(1, 1))
    folder_module(nyu2_test, data).prepare_data()
    assert len(caches(data)) == 2, "a changed file: a new cache"


@pytest.mark.slow
def test_train_on_a_folder_fast_dev_run(nyu2_test, tmp_path):
    out = tmp_path / "outputs"
    res = run_job("train", "data=folder", f"data.root={nyu2_test}",
                     "data.split.kind=scene", "++trainer.fast_dev_run=true",
                     *folder_run_args(tmp_path / "data", out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = sorted((out / "train" / "runs").glob("*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"mean", "coarse"} <= set(metrics)
    assert all(np.isfinite(v) for stage in metrics.values() for v in stage.values())


def test_folder_config_without_root_is_one_line(tmp_path):
    res = run_job("train", "data=folder", "++trainer.fast_dev_run=true",
                     *folder_run_args(tmp_path / "data", tmp_path / "outputs"), cwd=tmp_path)
    assert res.returncode != 0
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "data.root" in errors[0], res.stderr[-2000:]
    assert "Traceback" not in res.stderr
