"""Splits, the 320x240 cache, joint transforms and the data module, on small NYU-layout files."""

import json
import os

import numpy as np
import pytest
import torch
from nyu_files import require_shared_data, write_nyu_v2

from depth_lightning.data.cache import build_cache, cache_dir_for
from depth_lightning.data.datamodule import DepthDataModule
from depth_lightning.data.nyu import NYULabeled
from depth_lightning.data.splits import load_official_split, make_split
from depth_lightning.data.transforms import Augment, JointTransform
from depth_lightning.errors import DataError


def random_frames(n, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(n)]
    # A vertical depth gradient (near at the bottom) so flips and crops are visible.
    base = np.linspace(6.0, 1.0, 480, dtype=np.float32)[:, None] * np.ones((1, 640), np.float32)
    depths = [base * (1 + 0.1 * i) for i in range(n)]
    raws = []
    for d in depths:
        r = d.copy()
        r[:50, :100] = 0
        raws.append(r)
    return images, depths, raws


@pytest.fixture
def v2_file(tmp_path):
    images, depths, raws = random_frames(6)
    raws[2][100, 100] = np.nan
    raws[3][:] = 0  # a frame with no valid raw pixel
    scenes = ["a_0001", "a_0001", "b_0002", "b_0002", "c_0003", "d_0004"]
    path = tmp_path / "small_v2.mat"
    write_nyu_v2(path, images, depths, raws, scenes)
    return path, images, depths, raws


# -- splits -----------------------------------------------------------------------------------
def test_seed_split_is_640_160_disjoint_and_reproducible():
    tr, va = make_split("seed", 2284, subset=800, val_fraction=0.2, seed=3)
    assert len(tr) == 640 and len(va) == 160
    assert not set(tr) & set(va)
    tr2, va2 = make_split("seed", 2284, subset=800, val_fraction=0.2, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    tr3, _ = make_split("seed", 2284, subset=800, val_fraction=0.2, seed=4)
    assert not np.array_equal(tr, tr3)


def test_scene_split_keeps_each_scene_on_one_side():
    scenes = [f"room_{i // 3}" for i in range(300)]
    tr, va = make_split("scene", 300, scenes=scenes, val_fraction=0.2, seed=0)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(300))
    assert not {scenes[i] for i in tr} & {scenes[i] for i in va}
    assert 55 <= len(va) <= 70


def test_all_and_index_splits():
    tr, va = make_split("all", 5)
    assert tr.tolist() == va.tolist() == [0, 1, 2, 3, 4]
    tr, va = make_split("indices", 5, train=[0, 1], val=[4])
    assert tr.tolist() == [0, 1] and va.tolist() == [4]
    with pytest.raises(DataError, match="data.split.val"):
        make_split("indices", 5, train=[0], val=[5])


def test_official_split_file():
    data = require_shared_data()
    tr, te = load_official_split(data / "nyu_v2_splits" / "splits.mat", 1449)
    assert len(tr) == 795 and len(te) == 654
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(1449))
    with pytest.raises(DataError, match="1449 frames|exceed|but the data file has 1000"):
        load_official_split(data / "nyu_v2_splits" / "splits.mat", 1000)


# -- cache ------------------------------------------------------------------------------------
def test_cache_downsamples_masks_and_is_reused(v2_file, tmp_path):
    path, images, depths, raws = v2_file
    labeled = NYULabeled(path)
    dest = cache_dir_for(path)
    cache = build_cache(labeled, dest, labeled.scenes, progress=False)
    assert cache.images.shape == (6, 240, 320, 3) and cache.depth.shape == (6, 240, 320)
    block = images[1][:2, :2].astype(np.float64).mean(axis=(0, 1))
    assert np.allclose(cache.images[1][0, 0], np.floor(block + 0.5), atol=0.5)
    assert np.array_equal(cache.depth[4], depths[4][::2, ::2])
    assert cache.raw_depth[2][50, 50] == 0  # NaN in the file -> invalid
    assert (cache.raw_depth[0][:25, :50] == 0).all() and (cache.raw_depth[0][30:] > 0).all()
    meta = json.loads((dest / "meta.json").read_text())
    assert meta["bad_depth_values"] == 1 and meta["frames_without_valid_raw_depth"] == [3]
    assert not list(dest.parent.glob("*.tmp-*")), "no temporary folder left behind"
    stamp = os.stat(dest / "images.npy").st_mtime_ns
    again = build_cache(labeled, dest, labeled.scenes, progress=False)
    assert os.stat(dest / "images.npy").st_mtime_ns == stamp and len(again) == 6


def test_cache_key_changes_with_the_source_file(v2_file):
    path = v2_file[0]
    before = cache_dir_for(path)
    os.utime(path, ns=(1, 1))
    assert cache_dir_for(path) != before


def test_failed_cache_build_leaves_nothing(v2_file):
    path = v2_file[0]
    labeled = NYULabeled(path)

    class Broken:
        def __len__(self):
            return len(labeled)

        def __getitem__(self, i):
            if i == 3:
                raise DataError("boom")
            return labeled[i]

    dest = cache_dir_for(path)
    with pytest.raises(DataError):
        build_cache(Broken(), dest, labeled.scenes, progress=False)
    assert not dest.exists() and not list(dest.parent.glob("*.tmp-*"))


# -- transforms -------------------------------------------------------------------------------
def frame(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = np.linspace(5.0, 1.0, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    depth += np.linspace(0, 1, w, dtype=np.float32)[None]
    return img, depth


def test_eval_transform_is_an_exact_centre_crop():
    img, depth = frame()
    out, target = JointTransform(train=False)(img, depth)
    assert out.dtype == torch.uint8 and out.shape == (3, 228, 304)
    assert np.array_equal(out.permute(1, 2, 0).numpy(), img[6:234, 8:312])
    assert target.shape == (1, 55, 74)
    # nearest sample at the centre of each 4.1x4.1 block of the crop
    rows = np.floor(6 + (np.arange(55) + 0.5) * 228 / 55).astype(int)
    cols = np.floor(8 + (np.arange(74) + 0.5) * 304 / 74).astype(int)
    np.testing.assert_allclose(target[0].numpy(), depth[np.ix_(rows, cols)], rtol=1e-6)


def test_flip_mirrors_image_and_depth_together():
    img, depth = frame()
    torch.manual_seed(0)
    t = JointTransform(train=True, augment=Augment(flip=True))
    flipped = same = None
    for _ in range(20):
        p = t.params(depth.shape)
        x0, y0 = p["crop"]
        t.params = lambda hw, p=p: p  # replay these parameters
        out, target = t(img, depth)
        crop = img[y0:y0 + 228, x0:x0 + 304]
        if p["flip"]:
            flipped = np.array_equal(out.permute(1, 2, 0).numpy(), crop[:, ::-1])
            assert target[0, :, 0].mean() > target[0, :, -1].mean()  # depth grows to the right
        else:
            same = np.array_equal(out.permute(1, 2, 0).numpy(), crop)
        del t.params
    assert flipped and same


def test_rotation_marks_pixels_from_outside_invalid():
    img, depth = frame()
    t = JointTransform(train=True, augment=Augment(rotate=5.0))
    t.params = lambda hw: {"scale": 1.0, "angle": 5.0, "flip": False, "crop": (0, 0),
                           "color": None}
    _, target = t(img, depth)
    assert target[0, 0, 0] == 0 or target[0, -1, -1] == 0 or target[0, 0, -1] == 0
    assert (target > 0).float().mean() > 0.9


def test_scale_divides_depth():
    img = np.zeros((240, 320, 3), np.uint8)
    depth = np.full((240, 320), 4.0, np.float32)
    t = JointTransform(train=True, augment=Augment(scale=(1.5, 1.5)))
    _, target = t(img, depth)
    assert torch.allclose(target[target > 0], torch.tensor(4.0 / 1.5))


# -- data module ------------------------------------------------------------------------------
def test_datamodule_batches_and_mean_map(v2_file, tmp_path):
    path, _, depths, raws = v2_file
    dm = DepthDataModule(source="nyu_v2", path=str(path), batch_size=2, num_workers=0,
                         split={"kind": "indices", "train": [0, 1, 2, 3], "val": [4, 5]},
                         data_dir=str(tmp_path), augment={"flip": True, "rotate": 5.0})
    dm.prepare_data()
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 228, 304) and batch["image"].dtype == torch.uint8
    assert batch["depth"].shape == (2, 1, 55, 74)
    val = next(iter(dm.val_dataloader()))
    assert val["index"].tolist() == [4, 5]
    stats = dm.depth_statistics()
    # the filled depths are d * (1 + 0.1 i): the per-pixel mean over frames 0-3 is d * 1.15
    expected = dm.eval_targets(np.array([0])) * 1.15
    torch.testing.assert_close(stats["mean_depth"], expected[0], rtol=1e-5, atol=1e-5)


def test_datamodule_bad_paths_are_one_line_errors(tmp_path):
    dm = DepthDataModule(source="nyu_v2", path=str(tmp_path / "nope.mat"))
    with pytest.raises(DataError, match="does not exist"):
        dm.prepare_data()
    bad = tmp_path / "bad.mat"
    bad.write_text("hello")
    with pytest.raises(DataError, match="bad.mat"):
        DepthDataModule(source="nyu_v2", path=str(bad)).prepare_data()
    assert not list(tmp_path.glob("*.cache-*"))
