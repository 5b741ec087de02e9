"""Train/validation splits (depth_lightning.data.splits): each kind, and NYU V2's splits.mat."""

import numpy as np
import pytest
import scipy.io
from nyu_files import require_shared_data

from depth_lightning.data.splits import SPLIT_KINDS, load_official_split, make_split
from depth_lightning.errors import DataError


def test_seed_split_is_640_160_disjoint_and_reproducible():
    tr, va = make_split("seed", 2284, subset=800, val_fraction=0.2, seed=3)
    assert len(tr) == 640 and len(va) == 160
    assert not set(tr) & set(va)
    assert (np.diff(tr) > 0).all() and (np.diff(va) > 0).all(), "sorted"
    tr2, va2 = make_split("seed", 2284, subset=800, val_fraction=0.2, seed=3)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    tr3, _ = make_split("seed", 2284, subset=800, val_fraction=0.2, seed=4)
    assert not np.array_equal(tr, tr3)
    # the chosen frames are the seeded permutation's first 800, the first 160 of them in val
    chosen = np.random.default_rng(3).permutation(2284)[:800]
    assert va.tolist() == sorted(chosen[:160].tolist())
    assert tr.tolist() == sorted(chosen[160:].tolist())


def test_seed_split_without_subset_uses_every_frame():
    tr, va = make_split("seed", 10, val_fraction=0.3)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(10)) and len(va) == 3


def test_scene_split_keeps_each_scene_on_one_side():
    scenes = [f"room_{i // 3}" for i in range(300)]
    tr, va = make_split("scene", 300, scenes=scenes, val_fraction=0.2, seed=0)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(300))
    assert not {scenes[i] for i in tr} & {scenes[i] for i in va}
    assert 55 <= len(va) <= 70
    other, _ = make_split("scene", 300, scenes=scenes, val_fraction=0.2, seed=1)
    assert not np.array_equal(tr, other)


def test_scene_split_of_frames_that_are_each_their_own_scene():
    # what a source without scene names gives: one scene per frame (data/cache.py)
    scenes = [f"frame_{i:06d}" for i in range(20)]
    tr, va = make_split("scene", 20, scenes=scenes, val_fraction=0.25, seed=0)
    assert len(va) == 5 and len(tr) == 15


def test_scene_split_needs_a_scene_per_frame():
    with pytest.raises(DataError, match="scene name for every frame"):
        make_split("scene", 4, scenes=["a", "b"])
    with pytest.raises(DataError, match="scene name for every frame"):
        make_split("scene", 4)


def test_all_and_index_splits():
    tr, va = make_split("all", 5)
    assert tr.tolist() == va.tolist() == [0, 1, 2, 3, 4]
    tr, va = make_split("indices", 5, train=[1, 0], val=[4])
    assert tr.tolist() == [0, 1] and va.tolist() == [4]
    with pytest.raises(DataError, match="data.split.val"):
        make_split("indices", 5, train=[0], val=[5])
    with pytest.raises(DataError, match="data.split.train"):
        make_split("indices", 5, train=[-1], val=[0])


def test_official_split_is_the_sources_own():
    calls = []

    def official():
        calls.append(1)
        return np.array([3, 0, 2]), np.array([4, 1])

    tr, va = make_split("official", 5, official=official)
    assert tr.tolist() == [0, 2, 3] and va.tolist() == [1, 4] and calls == [1]
    assert make_split("all", 5, official=official)[0].tolist() == list(range(5))
    assert calls == [1], "only the official kind asks the source"
    with pytest.raises(DataError, match="has no official split"):
        make_split("official", 5, official=None)


def test_bad_kinds_and_fractions():
    assert set(SPLIT_KINDS) == {"official", "seed", "scene", "all", "indices"}
    with pytest.raises(DataError, match="unknown split 'random'"):
        make_split("random", 5)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(DataError, match="val_fraction"):
            make_split("seed", 5, val_fraction=bad)
    assert len(make_split("all", 5, val_fraction=0.0)[0]) == 5, "all ignores the fraction"


def test_official_split_file():
    data = require_shared_data()
    tr, te = load_official_split(data / "nyu_v2_splits" / "splits.mat", 1449)
    assert len(tr) == 795 and len(te) == 654
    assert sorted(np.concatenate([tr, te]).tolist()) == list(range(1449))
    mat = scipy.io.loadmat(data / "nyu_v2_splits" / "splits.mat")
    assert tr.tolist() == (mat["trainNdxs"].ravel() - 1).tolist(), "1-based in the file"
    with pytest.raises(DataError, match="but the data file has 1000"):
        load_official_split(data / "nyu_v2_splits" / "splits.mat", 1000)


def test_bad_split_files(tmp_path):
    with pytest.raises(DataError, match="split file not found"):
        load_official_split(tmp_path / "nope.mat", 10)
    text = tmp_path / "text.mat"
    text.write_text("<html>503</html>")
    with pytest.raises(DataError, match="not a readable MATLAB split file"):
        load_official_split(text, 10)
    scipy.io.savemat(tmp_path / "keys.mat", {"trainNdxs": np.array([[1], [2]])})
    with pytest.raises(DataError, match="missing 'testNdxs'"):
        load_official_split(tmp_path / "keys.mat", 10)
    scipy.io.savemat(tmp_path / "overlap.mat", {"trainNdxs": np.array([[1], [2]]),
                                                "testNdxs": np.array([[2], [3]])})
    with pytest.raises(DataError, match="overlap"):
        load_official_split(tmp_path / "overlap.mat", 10)
    scipy.io.savemat(tmp_path / "zero.mat", {"trainNdxs": np.array([[0], [1]]),
                                             "testNdxs": np.array([[2]])})
    with pytest.raises(DataError, match="1-based"):
        load_official_split(tmp_path / "zero.mat", 10)
