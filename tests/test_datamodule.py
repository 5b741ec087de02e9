"""The data module (depth_lightning.data.datamodule) built from the packaged configs: sources,
caches, splits, loaders and depth statistics.

The small sources below are `_target_`s of `data.source` (this module is importable as
`test_datamodule`, tests/ being on sys.path).
"""

import logging

import numpy as np
import pytest
import scipy.io
import torch
from conftest import compose
from nyu_files import write_nyu_v2
from omegaconf import open_dict

from depth_lightning.core.plugins import build
from depth_lightning.data.cache import FrameCache, input_frame
from depth_lightning.errors import DataError, DepthLightningError

H, W = 240, 320


class Frames:
    """`n` random 320x240 frames, depth `1 + i` metres (twice that on the left half, 0 for
    frames in `empty` and in the first `hole` rows); scenes of two frames each unless `scenes`
    is false. No fingerprint: the data module caches it per run."""

    def __init__(self, n=6, seed=0, scenes=True, empty=(), hole=0):
        self.n, self.seed, self.scenes, self.empty = n, seed, scenes, set(empty)
        self.hole = hole

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, i])
        depth = np.full((H, W), 0.0 if i in self.empty else 1.0 + i, np.float32)
        depth[:, : W // 2] *= 2  # the left half twice as far
        depth[: self.hole] = 0  # rows without a reading
        frame = {"image": rng.integers(0, 256, (H, W, 3), dtype=np.uint8), "depth": depth}
        if self.scenes:
            frame["scene"] = f"room_{i // 2}"
        return frame


class Fingerprinted(Frames):
    """Frames with a fingerprint (its `version` stands for the files' identity)."""

    name = "fingerprinted"

    def __init__(self, n=6, seed=0, version=0):
        super().__init__(n, seed)
        self.version = version
        self.reads = 0

    def __getitem__(self, i):
        self.reads += 1
        return super().__getitem__(i)

    def fingerprint(self):
        return {"n": self.n, "seed": self.seed, "version": self.version}


class BadFrames(Frames):
    """Frames that break the contract from frame `at` on."""

    def __init__(self, breaks, at=1):
        super().__init__(4)
        self.breaks, self.at = breaks, at

    def __getitem__(self, i):
        frame = super().__getitem__(i)
        if i >= self.at:
            if self.breaks == "no depth":
                del frame["depth"]
            elif self.breaks == "integer depth":
                frame["depth"] = (frame["depth"] * 1000).astype(np.uint16)
            elif self.breaks == "grey image":
                frame["image"] = frame["image"][..., 0]
        return frame


class NotASequence:
    def __init__(self):
        self.frames = 3


def source(cls, **kwargs):
    return {"_target_": f"{__name__}.{cls.__name__}", **kwargs}


def module(tmp_path, *overrides, src=None):
    """The data module of the packaged train config (SynthRooms by default, or `src`), its data
    and caches under `tmp_path / "data"`, not yet prepared."""
    cfg = compose("train", f"paths.data_dir={tmp_path / 'data'}", "data.num_workers=0",
                  "data.cache_workers=1", *overrides)
    if src is not None:
        with open_dict(cfg):
            cfg.data.source = src
    return build(cfg.data, "data")


def caches(tmp_path):
    root = tmp_path / "data" / "cache"
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


# -- NYU V2 files -----------------------------------------------------------------------------
@pytest.fixture
def v2_file(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(6)]
    # A vertical gradient (near at the bottom), frame i scaled by 1 + 0.1 i.
    base = np.linspace(6.0, 1.0, 480, dtype=np.float32)[:, None] * np.ones((1, 640), np.float32)
    depths = [base * np.float32(1 + 0.1 * i) for i in range(6)]
    raws = [d.copy() for d in depths]
    for r in raws:
        r[:50, :100] = 0
    scenes = ["a_0001", "a_0001", "b_0002", "b_0002", "c_0003", "d_0004"]
    path = tmp_path / "small_v2.mat"
    write_nyu_v2(path, images, depths, raws, scenes)
    return path, base


def nyu_module(tmp_path, path, *overrides):
    return module(tmp_path, "data=nyu_v2", f"data.path={path}", "data.batch_size=2",
                  "data.eval_batch_size=4", *overrides)


INDICES = ("data.split.kind=indices", "+data.split.train=[0,1,2,3]", "+data.split.val=[4,5]")


def test_datamodule_batches_and_mean_map(v2_file, tmp_path):
    path, base = v2_file
    dm = nyu_module(tmp_path, path, *INDICES)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.train_idx.tolist() == [0, 1, 2, 3] and dm.val_idx.tolist() == [4, 5]
    (cache,) = caches(tmp_path)
    assert cache.name.startswith("small_v2.cache-") and dm.cache.root == cache
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 228, 304) and batch["image"].dtype == torch.uint8
    assert batch["depth"].shape == (2, 1, 55, 74) and batch["depth"].dtype == torch.float32
    assert set(batch["index"].tolist()) <= {0, 1, 2, 3}
    val = next(iter(dm.val_dataloader()))
    assert val["index"].tolist() == [4, 5]
    # the validation targets: nearest samples of the 320x240 frame's centre crop
    rows = np.floor(6 + (np.arange(55) + 0.5) * 228 / 55).astype(int)
    small = base[::2, ::2][rows, 0]
    np.testing.assert_allclose(val["depth"][1, 0, :, 0].numpy(), small * np.float32(1.5),
                               rtol=1e-6)
    stats = dm.depth_statistics()
    # the filled depths are d * (1 + 0.1 i): the per-pixel mean over frames 0-3 is d * 1.15
    d = torch.from_numpy(np.ascontiguousarray(small))[:, None].expand(55, 74)
    torch.testing.assert_close(stats["mean_depth"][0], d * 1.15, rtol=1e-5, atol=1e-5)
    log_mean = np.mean(np.log([1.0, 1.1, 1.2, 1.3]))
    torch.testing.assert_close(stats["mean_log_depth"][0], torch.log(d) + log_mean,
                               rtol=1e-5, atol=1e-5)
    assert dm.depth_statistics() is stats, "computed once"


def test_eval_targets_are_the_validation_targets(v2_file, tmp_path):
    path, _ = v2_file
    targets = {}
    for target in ("depths", "rawDepths"):
        dm = nyu_module(tmp_path, path, *INDICES, f"data.target={target}")
        dm.setup("fit")
        targets[target] = torch.cat([b["depth"] for b in dm.val_dataloader()])
        assert torch.equal(dm.eval_targets(dm.val_idx), targets[target])
    # raw depth: the 100x50 hole at the top left of the 640x480 frames (50x25 at 320x240)
    # covers the first 10 columns of the first 5 rows of the 74x55 targets; filled depth has none
    filled, raw = targets["depths"], targets["rawDepths"]
    hole = raw == 0
    assert (filled > 0).all() and hole[:, 0, :5, :10].all() and int(hole.sum()) == 2 * 50
    assert torch.equal(raw[~hole], filled[~hole])


def test_official_split_comes_from_the_source(v2_file, tmp_path):
    path, _ = v2_file
    scipy.io.savemat(path.parent / "splits.mat", {"trainNdxs": np.array([[1], [3], [5]]),
                                                  "testNdxs": np.array([[2], [6]])})
    dm = nyu_module(tmp_path, path)
    dm.setup("fit")
    assert dm.split_cfg["kind"] == "official"
    assert dm.train_idx.tolist() == [0, 2, 4] and dm.val_idx.tolist() == [1, 5]
    other = tmp_path / "other_splits.mat"
    scipy.io.savemat(other, {"trainNdxs": np.array([[4]]), "testNdxs": np.array([[1]])})
    dm = nyu_module(tmp_path, path, f"data.split.file={other}")
    dm.setup("fit")
    assert dm.train_idx.tolist() == [3] and dm.val_idx.tolist() == [0]


def test_bad_paths_are_one_line_errors(tmp_path):
    dm = nyu_module(tmp_path, tmp_path / "nope.mat")
    with pytest.raises(DataError, match="data.path: .*nope.mat does not exist") as err:
        dm.prepare_data()
    assert "data.download=true" in str(err.value) and "\n" not in str(err.value)
    bad = tmp_path / "bad.mat"
    bad.write_text("hello")
    with pytest.raises(DataError, match="bad.mat") as err:
        nyu_module(tmp_path, bad).prepare_data()
    assert "\n" not in str(err.value)
    assert not (tmp_path / "data" / "cache").exists(), "nothing cached, not even a lock"


def test_describe_names_the_source(v2_file, tmp_path):
    path, _ = v2_file
    assert nyu_module(tmp_path, path).describe() == str(path)
    dm = module(tmp_path, src=source(Frames, n=2))
    assert dm.describe().startswith(f"<{__name__}.Frames object")


# -- any source -------------------------------------------------------------------------------
def test_the_source_is_built_on_first_use(tmp_path):
    dm = module(tmp_path, src=source(Fingerprinted, n=4, seed=3))
    assert dm._source is None
    src = dm.source
    assert isinstance(src, Fingerprinted) and (src.n, src.seed) == (4, 3)
    assert dm.source is src


def test_source_without_fingerprint_gets_a_run_cache(tmp_path):
    dm = module(tmp_path, "data.split.kind=all", src=source(Frames, n=5))
    dm.prepare_data()
    dm.setup("fit")
    root = dm.cache.root
    assert root.parent == tmp_path / "data" / "cache" and "Frames.run-cache" in root.name
    assert caches(tmp_path) == [root], "built once for prepare_data and setup, no .cache- folder"
    for i in range(5):
        image, depth, _, _ = input_frame(dm.source[i])
        assert np.array_equal(dm.cache.images[i], image)
        assert np.array_equal(dm.cache.depth[i], depth)
    other = module(tmp_path, "data.split.kind=all", src=source(Frames, n=3, seed=1))
    other.setup("fit")
    assert other.cache.root != root and len(other.cache) == 3, "another source, another cache"
    assert np.array_equal(other.cache.images[2], input_frame(other.source[2])[0])


def test_cache_is_keyed_by_the_fingerprint_and_reused(tmp_path):
    dm = module(tmp_path, src=source(Fingerprinted, n=4))
    dm.prepare_data()
    (cache,) = caches(tmp_path)
    assert cache.name.startswith("fingerprinted.cache-")
    assert (cache.parent / f"{cache.name}.lock").is_file()
    assert dm.source.reads == 4
    stamp = (cache / "images.npy").stat().st_mtime_ns
    again = module(tmp_path, src=source(Fingerprinted, n=4))
    again.setup("fit")
    assert again.cache.root == cache and again.source.reads == 0, "not read again"
    assert (cache / "images.npy").stat().st_mtime_ns == stamp
    module(tmp_path, src=source(Fingerprinted, n=4, version=1)).prepare_data()
    assert len(caches(tmp_path)) == 2, "a changed fingerprint: a new cache"


def test_frames_without_scene_are_their_own_scenes(tmp_path):
    dm = module(tmp_path, "data.split.kind=scene", "data.split.val_fraction=0.25",
                src=source(Frames, n=8, scenes=False))
    dm.setup("fit")
    assert dm.cache.scenes == [f"frame_{i:06d}" for i in range(8)]
    assert len(dm.val_idx) == 2 and len(dm.train_idx) == 6
    with_scenes = module(tmp_path, "data.split.kind=scene", "data.split.val_fraction=0.25",
                         src=source(Frames, n=8))
    with_scenes.setup("fit")
    assert with_scenes.cache.scenes[:3] == ["room_0", "room_0", "room_1"]
    val_rooms = {with_scenes.cache.scenes[i] for i in with_scenes.val_idx}
    assert not val_rooms & {with_scenes.cache.scenes[i] for i in with_scenes.train_idx}


def corrupt_meta(root):
    (root / "meta.json").unlink()


def corrupt_npy(root):
    data = (root / "depth.npy").read_bytes()
    (root / "depth.npy").write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("corrupt", [corrupt_meta, corrupt_npy], ids=["meta.json", "npy"])
def test_corrupt_cache_is_rebuilt_with_a_warning(tmp_path, caplog, corrupt):
    module(tmp_path, src=source(Fingerprinted, n=4)).prepare_data()
    (cache,) = caches(tmp_path)
    corrupt(cache)
    dm = module(tmp_path, "data.split.kind=all", src=source(Fingerprinted, n=4))
    with caplog.at_level(logging.WARNING, logger="depth_lightning.data.datamodule"):
        dm.setup("fit")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("rebuilding a corrupt frame cache" in w and str(cache) in w for w in warnings)
    assert dm.source.reads == 4 and dm.cache.root == cache
    reopened = FrameCache.open(cache)
    for i in range(4):
        assert np.array_equal(reopened.depth[i], dm.source[i]["depth"])
    assert len(next(iter(dm.val_dataloader()))["index"]) == 4
    assert caches(tmp_path) == [cache], "rebuilt in place, no temporary folder left"


@pytest.mark.parametrize(("breaks", "fragment"), [
    ("no depth", "frame 1 has no 'depth'"),
    ("integer depth", "frame 1: 'depth' is uint16 (240, 320), expected float metres"),
    ("grey image", "frame 1: 'image' is uint8 (240, 320), expected uint8 (H, W, 3)"),
])
@pytest.mark.parametrize("workers", [1, 2])
def test_frames_breaking_the_contract_are_refused(tmp_path, breaks, fragment, workers):
    dm = module(tmp_path, f"data.cache_workers={workers}", src=source(BadFrames, breaks=breaks))
    with pytest.raises(DepthLightningError) as err:
        dm.prepare_data()
    message = str(err.value)
    assert message.startswith("data.source: ") and fragment in message, message
    assert "\n" not in message
    assert caches(tmp_path) == [], "no cache left behind"


def test_a_source_that_is_not_a_sequence_is_refused(tmp_path):
    with pytest.raises(DepthLightningError, match="data.source: NotASequence is not a sequence"):
        module(tmp_path, src=source(NotASequence)).prepare_data()
    with pytest.raises(DepthLightningError, match="data.source: .*cannot import"):
        module(tmp_path, src={"_target_": "no_such_module.Source"}).prepare_data()


def test_training_split_without_valid_depth_is_a_data_error(tmp_path):
    dm = module(tmp_path, "data.split.kind=indices", "+data.split.train=[0,1]",
                "+data.split.val=[2,3]", src=source(Frames, n=4, empty=[0, 1]))
    dm.setup("fit")  # the frames load; validation frames have depth
    assert (dm.eval_targets(dm.val_idx) > 0).all()
    with pytest.raises(DataError, match="the 2 training frames of .* hold no valid depth"):
        dm.depth_statistics()


def test_pixels_never_valid_in_training_take_the_global_mean(tmp_path):
    dm = module(tmp_path, "data.split.kind=indices", "+data.split.train=[0,1]",
                "+data.split.val=[2]", src=source(Frames, n=3, hole=60))
    dm.setup("fit")
    stats = dm.depth_statistics()
    # frames 0 and 1: 1 and 2 m on the right half, twice that on the left; rows < 60 of the
    # 320x240 frames are holes in every frame: the first 13 target rows
    rows = np.floor(6 + (np.arange(55) + 0.5) * 228 / 55).astype(int)
    cols = np.floor(8 + (np.arange(74) + 0.5) * 304 / 74).astype(int)
    never = torch.from_numpy(rows < 60)
    assert int(never.sum()) == 13
    left = torch.from_numpy(cols < W // 2)
    mean = stats["mean_depth"][0]
    seen = mean[~never]
    torch.testing.assert_close(seen[:, left], torch.full_like(seen[:, left], 3.0))
    torch.testing.assert_close(seen[:, ~left], torch.full_like(seen[:, ~left], 1.5))
    p = float(left.double().mean())
    torch.testing.assert_close(mean[never], torch.full_like(mean[never], 1.5 * (1 + p)))
    logs = np.log([2.0, 4.0]) * p + np.log([1.0, 2.0]) * (1 - p)
    mean_log = stats["mean_log_depth"][0]
    torch.testing.assert_close(mean_log[never], torch.full_like(mean_log[never], logs.mean()))


def test_bad_settings_are_one_line_errors(tmp_path):
    with pytest.raises(DataError, match="data.target: must be one of"):
        module(tmp_path, "data.target=disparity", src=source(Frames))
    with pytest.raises(DepthLightningError, match="data.batch_size"):
        module(tmp_path, "data.batch_size=0", src=source(Frames))
    dm = module(tmp_path, "data.split.kind=indices", "+data.split.train=[0,1]",
                "+data.split.val=[]", src=source(Frames, n=2))
    with pytest.raises(DataError, match="left no training or no validation frames .2 / 0."):
        dm.setup("fit")
    dm = module(tmp_path, "data.split.kind=official", src=source(Frames, n=2))
    with pytest.raises(DataError, match="has no official split"):
        dm.setup("fit")
