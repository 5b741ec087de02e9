"""The 320x240 frame cache (depth_lightning.data.cache) of any data source."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from nyu_files import write_nyu_v2

from depth_lightning.data.cache import (
    CorruptCache,
    FrameCache,
    build_cache,
    cache_dir_for,
    input_frame,
    run_cache,
)
from depth_lightning.data.nyu import NYULabeled
from depth_lightning.errors import DataError, DepthLightningError
from depth_lightning.geometry import to_input_frame


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


SCENES = ["a_0001", "a_0001", "b_0002", "b_0002", "c_0003", "d_0004"]


@pytest.fixture
def v2_file(tmp_path):
    images, depths, raws = random_frames(6)
    raws[2][100, 100] = np.nan
    raws[3][:] = 0  # a frame with no valid raw pixel
    path = tmp_path / "small_v2.mat"
    write_nyu_v2(path, images, depths, raws, SCENES)
    return path, images, depths, raws


class ListSource:
    """A data source of given frames, without a fingerprint."""

    def __init__(self, frames):
        self.frames = frames

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, i):
        return self.frames[i]


def small_frame(i, h=240, w=320, scene=None):
    rng = np.random.default_rng(i)
    out = {"image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
           "depth": rng.uniform(0.5, 8.0, (h, w)).astype(np.float32)}
    if scene is not None:
        out["scene"] = scene
    return out


def box_mean(image):
    """The 2x2 block mean of a uint8 image, rounded half up, in float arithmetic."""
    h, w = image.shape[0] // 2, image.shape[1] // 2
    blocks = image.astype(np.float64).reshape(h, 2, w, 2, 3).mean(axis=(1, 3))
    return np.floor(blocks + 0.5).astype(np.uint8)


# -- one frame --------------------------------------------------------------------------------
def test_input_frame_of_a_640x480_frame_is_the_2x2_chain():
    images, depths, raws = random_frames(1)
    raw = raws[0].copy()
    raw[0, :6] = [np.nan, np.inf, -np.inf, -1.0, 0.0, 2.0]  # even columns survive subsampling
    frame = {"image": images[0], "depth": depths[0], "raw_depth": raw, "bad_values": 7}
    image, depth, raw_small, bad = input_frame(frame)
    assert image.shape == (240, 320, 3) and image.dtype == np.uint8
    assert np.array_equal(image, box_mean(images[0]))
    assert depth.dtype == raw_small.dtype == np.float32 and depth.shape == (240, 320)
    assert np.array_equal(depth, depths[0][::2, ::2])
    # NaN at column 0, -inf at 2 and 0.0 at 4 are kept by the subsampling; the first two count
    assert raw_small[0, :3].tolist() == [0.0, 0.0, 0.0] and bad == 7 + 2
    assert np.array_equal(raw_small[1:], raw[2::2, ::2])


def test_input_frame_without_raw_depth_uses_depth():
    frame = small_frame(0, 480, 640)
    frame["depth"][0, 0] = np.nan
    _, depth, raw, bad = input_frame(frame)
    assert np.array_equal(depth, raw) and depth[0, 0] == 0
    assert bad == 2, "a bad value counts once in each of depth and raw depth"


@pytest.mark.parametrize("size", [(240, 320), (300, 400), (150, 200), (480, 720)])
def test_input_frame_of_any_size_is_320x240(size):
    frame = small_frame(1, *size)
    image, depth, raw, bad = input_frame(frame)
    want_image, want_depth = to_input_frame(frame["image"], frame["depth"])
    assert image.shape == (240, 320, 3) and depth.shape == raw.shape == (240, 320)
    assert np.array_equal(image, want_image) and np.array_equal(depth, want_depth)
    # depth by nearest neighbour: each output pixel centre takes the pixel it falls in
    rows = np.floor((np.arange(240) + 0.5) * size[0] / 240).astype(int)
    cols = np.floor((np.arange(320) + 0.5) * size[1] / 320).astype(int)
    assert np.array_equal(depth, frame["depth"][np.ix_(rows, cols)]) and bad == 0
    if size == (240, 320):
        assert np.array_equal(image, frame["image"]), "a 320x240 frame is kept as it is"


# -- building and reusing ---------------------------------------------------------------------
def test_cache_downsamples_masks_and_is_reused(v2_file, tmp_path):
    path, images, depths, raws = v2_file
    labeled = NYULabeled(path)
    dest = cache_dir_for(labeled, tmp_path / "cache")
    assert dest.parent == tmp_path / "cache" and dest.name.startswith("small_v2.cache-")
    cache = build_cache(labeled, dest, progress=False)
    assert cache.images.shape == (6, 240, 320, 3) and cache.depth.shape == (6, 240, 320)
    assert cache.raw_depth.shape == (6, 240, 320) and len(cache) == 6
    for i in (1, 5):
        assert np.array_equal(cache.images[i], box_mean(images[i]))
    assert np.array_equal(cache.depth[4], depths[4][::2, ::2])
    assert cache.raw_depth[2][50, 50] == 0  # NaN in the file -> invalid
    assert (cache.raw_depth[0][:25, :50] == 0).all() and (cache.raw_depth[0][30:] > 0).all()
    assert cache.scenes == SCENES, "each frame's scene is recorded"
    meta = json.loads((dest / "meta.json").read_text())
    assert meta["bad_depth_values"] == 1 and meta["frames_without_valid_raw_depth"] == [3]
    assert meta["scenes"] == SCENES and meta["frames"] == 6
    assert not list(dest.parent.glob(".*.tmp-*")), "no temporary folder left behind"
    stamp = os.stat(dest / "images.npy").st_mtime_ns
    again = build_cache(labeled, dest, progress=False)
    assert os.stat(dest / "images.npy").st_mtime_ns == stamp and len(again) == 6
    assert np.array_equal(again.depth, cache.depth)


def test_parallel_build_equals_the_serial_one(v2_file, tmp_path):
    labeled = NYULabeled(v2_file[0])
    serial = build_cache(labeled, tmp_path / "serial", workers=1, progress=False)
    parallel = build_cache(labeled, tmp_path / "parallel", workers=2, progress=False)
    for key in ("images", "depth", "raw_depth"):
        assert np.array_equal(getattr(serial, key), getattr(parallel, key), equal_nan=True)
    assert serial.scenes == parallel.scenes and serial.meta == parallel.meta


def test_cache_key_changes_with_the_source_file(v2_file, tmp_path):
    path = v2_file[0]
    before = cache_dir_for(NYULabeled(path), tmp_path)
    assert cache_dir_for(NYULabeled(path), tmp_path) == before, "the same file: the same cache"
    assert cache_dir_for(NYULabeled(path, depth_units="mm"), tmp_path) != before
    os.utime(path, ns=(1, 1))
    assert cache_dir_for(NYULabeled(path), tmp_path) != before


def test_cache_key_is_the_sources_fingerprint(tmp_path):
    class Named(ListSource):
        name = "mine"

        def __init__(self, frames, version):
            super().__init__(frames)
            self.version = version

        def fingerprint(self):
            return {"version": self.version}

    frames = [small_frame(0)]
    a = cache_dir_for(Named(frames, 1), tmp_path)
    assert a.name.startswith("mine.cache-") and a.parent == tmp_path
    assert cache_dir_for(Named([], 1), tmp_path) == a, "only the fingerprint counts"
    assert cache_dir_for(Named(frames, 2), tmp_path) != a

    class Unnamed(ListSource):
        def fingerprint(self):
            return "x"

    assert cache_dir_for(Unnamed(frames), tmp_path).name.startswith("Unnamed.cache-")


def test_frames_of_other_sizes_are_cached_at_320x240(tmp_path):
    frames = [small_frame(0, 240, 320), small_frame(1, 300, 400), small_frame(2, 120, 160)]
    cache = build_cache(ListSource(frames), tmp_path / "c", progress=False)
    assert cache.images.shape == (3, 240, 320, 3)
    for i, frame in enumerate(frames):
        image, depth = to_input_frame(frame["image"], frame["depth"])
        assert np.array_equal(cache.images[i], image)
        assert np.array_equal(cache.depth[i], depth)
        assert np.array_equal(cache.raw_depth[i], depth)
    assert np.array_equal(cache.images[0], frames[0]["image"])


def test_frames_without_a_scene_are_their_own_scenes(tmp_path):
    frames = [small_frame(0, scene="kitchen_1"), small_frame(1), small_frame(2, scene=""),
              small_frame(3, scene="kitchen_1")]
    cache = build_cache(ListSource(frames), tmp_path / "c", progress=False)
    assert cache.scenes == ["kitchen_1", "frame_000001", "frame_000002", "kitchen_1"]
    assert json.loads((tmp_path / "c" / "meta.json").read_text())["scenes"] == cache.scenes


def test_failed_cache_build_leaves_nothing(v2_file, tmp_path):
    labeled = NYULabeled(v2_file[0])

    class Broken:
        def __len__(self):
            return len(labeled)

        def __getitem__(self, i):
            if i == 3:
                raise DataError("boom")
            return labeled[i]

    for workers in (1, 2):
        dest = tmp_path / "cache" / f"broken{workers}"
        with pytest.raises(DataError, match="boom"):
            build_cache(Broken(), dest, workers=workers, progress=False)
        assert not dest.exists() and not list(dest.parent.glob("*"))


def test_empty_source_is_refused(tmp_path):
    with pytest.raises(DataError, match="data.source: the source holds no frames"):
        build_cache(ListSource([]), tmp_path / "c", progress=False)
    assert not (tmp_path / "c").exists()


def bad_frames():
    good = small_frame(0)
    return {
        "no depth": ({"image": good["image"]}, "has no 'depth'"),
        "integer depth": ({**good, "depth": (good["depth"] * 1000).astype(np.uint16)},
                          "'depth' is uint16"),
        "float image": ({**good, "image": good["image"].astype(np.float32)},
                        "'image' is float32"),
        "depth of another size": ({**good, "depth": good["depth"][:100]}, "(100, 320)"),
        "raw depth of another size": ({**good, "raw_depth": good["depth"][:, :10]},
                                      "'raw_depth'"),
        "scene not a string": ({**good, "scene": 3}, "'scene' is int"),
        "not a dict": ([good["image"], good["depth"]], "is a list"),
    }


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("case", list(bad_frames()))
def test_frames_breaking_the_contract_are_refused(tmp_path, case, workers):
    bad, fragment = bad_frames()[case]
    frames = [small_frame(0), small_frame(1), bad, small_frame(3)]
    with pytest.raises(DepthLightningError) as err:
        build_cache(ListSource(frames), tmp_path / "c", workers=workers, progress=False)
    message = str(err.value)
    assert message.startswith("data.source: frame 2") and fragment in message, message
    assert "\n" not in message
    assert not list(tmp_path.iterdir()), "nothing left behind"


# -- corrupt caches ---------------------------------------------------------------------------
@pytest.fixture
def built(tmp_path):
    frames = [small_frame(i) for i in range(4)]
    build_cache(ListSource(frames), tmp_path / "c", progress=False)
    return tmp_path / "c", frames


def test_a_complete_cache_opens(built):
    root, frames = built
    cache = FrameCache.open(root)
    assert len(cache) == 4 and cache.meta["frames"] == 4 and "scenes" not in cache.meta
    assert np.array_equal(cache.depth[3], frames[3]["depth"])


def truncate(path, keep):
    data = path.read_bytes()
    path.write_bytes(data[:keep(len(data))])


CORRUPTIONS = {
    "meta.json missing": lambda root: (root / "meta.json").unlink(),
    "meta.json not JSON": lambda root: (root / "meta.json").write_text("{\"frames\": 4,"),
    "images.npy missing": lambda root: (root / "images.npy").unlink(),
    "depth.npy truncated": lambda root: truncate(root / "depth.npy", lambda n: n // 2),
    "raw_depth.npy header cut": lambda root: truncate(root / "raw_depth.npy", lambda n: 40),
    "meta.json of other frames": lambda root: (root / "meta.json").write_text(json.dumps(
        {"frames": 5, "scenes": ["a"] * 5})),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_cache_is_detected(built, corruption):
    root, frames = built
    CORRUPTIONS[corruption](root)
    with pytest.raises(CorruptCache, match=str(root)):
        FrameCache.open(root)
    # build_cache opens an existing folder rather than building over it: the caller decides
    with pytest.raises(CorruptCache):
        build_cache(ListSource(frames), root, progress=False)


# -- caches of sources without a fingerprint --------------------------------------------------
def test_source_without_fingerprint_has_no_cache_folder(tmp_path):
    assert cache_dir_for(ListSource([small_frame(0)]), tmp_path) is None


@pytest.mark.cli
def test_run_cache_is_built_for_the_run_and_removed_at_exit(tmp_path):
    frames = [small_frame(i) for i in range(3)]
    a = run_cache(ListSource(frames), tmp_path / "cache")
    assert a.root.parent == tmp_path / "cache" and "ListSource.run-cache" in a.root.name
    assert np.array_equal(a.depth[2], frames[2]["depth"])
    other = [small_frame(i + 10) for i in range(2)]
    b = run_cache(ListSource(other), tmp_path / "cache")
    assert b.root != a.root and len(b) == 2, "another source of the same class: its own cache"
    assert np.array_equal(b.depth[1], other[1]["depth"])
    assert np.array_equal(a.depth[2], frames[2]["depth"])

    code = f"""
import numpy as np
from depth_lightning.data.cache import run_cache
class Source:
    def __len__(self):
        return 2
    def __getitem__(self, i):
        return {{"image": np.zeros((240, 320, 3), np.uint8),
                 "depth": np.full((240, 320), 1.0 + i, np.float32)}}
cache = run_cache(Source(), {str(tmp_path / "sub")!r})
print(cache.root, (cache.root / "meta.json").is_file(), float(cache.depth[1].max()))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    root, existed, value = res.stdout.split()
    assert existed == "True" and float(value) == 2.0
    assert not os.path.exists(root) and list((tmp_path / "sub").iterdir()) == []


def test_run_cache_removes_leftovers_of_killed_runs(tmp_path):
    dead = 2**22 + 12345  # above the default pid_max: no such process
    left = tmp_path / f".ListSource.run-cache-0123abcd.tmp-{dead}"
    (left / "x").mkdir(parents=True)
    building = tmp_path / f"..ListSource.run-cache-0123abcd.tmp-{dead}.tmp-{dead}"
    building.mkdir()
    cache = run_cache(ListSource([small_frame(0)]), tmp_path)
    assert sorted(tmp_path.iterdir()) == [cache.root]
