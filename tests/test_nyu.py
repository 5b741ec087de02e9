"""The NYU labeled-file source (depth_lightning.data.nyu) on real NYU frames and on broken
files: frames, processes, the source contract (name, fingerprint, official split), bad input."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from nyu_files import (
    fill_holes_nearest,
    kinect_raw_from_metres,
    real_v1_frames,
    real_v1_names,
    real_v2_raw_frames,
    real_v2_raw_names,
    require_shared_data,
    write_nyu_v1,
    write_nyu_v2,
)
from PIL import Image

from depth_lightning.data import nyu
from depth_lightning.data.nyu import NYULabeled
from depth_lightning.errors import DataError, DepthLightningError

V2_SCENES = ["kitchen_0028", "bedroom_0004", "living_room_0010"]


def _png_mm(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im).astype(np.float64)


def _synthetic(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(n)]
    depths = [rng.uniform(0.5, 9.0, (480, 640)).astype(np.float32) for _ in range(n)]
    return images, depths


def _holes(shape: tuple[int, int], seed: int) -> np.ndarray:
    # A block plus scattered pixels, so holes are neither all-or-nothing nor aligned.
    rng = np.random.default_rng(seed)
    mask = rng.random(shape) < 0.05
    mask[100:160, 200:300] = True
    return mask


# -- real frames ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def v1_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list]]:
    require_shared_data()
    frames = real_v1_frames()
    images = [rgb for rgb, _ in frames]
    depths = [d for _, d in frames]
    holes = [_holes(d.shape, i) for i, d in enumerate(depths)]
    root = tmp_path_factory.mktemp("v1")
    # float32 variant: metres, raw = depth with holes as 0.
    raw_m = [np.where(h, 0.0, d).astype(np.float32) for d, h in zip(depths, holes, strict=True)]
    f32 = write_nyu_v1(root / "f32.mat", images, depths, raw_m, real_v1_names())
    # uint16 variant: millimetres, raw = Kinect disparity with 2047 holes.
    raw_k = [
        kinect_raw_from_metres(np.where(h, 0.0, d)) for d, h in zip(depths, holes, strict=True)
    ]
    u16 = write_nyu_v1(
        root / "u16.mat", images, depths, raw_k, real_v1_names(), depth_dtype="uint16"
    )
    return {"float32": (f32, holes), "uint16": (u16, holes)}


@pytest.fixture(scope="module")
def v2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_shared_data()
    frames = real_v2_raw_frames()
    path = tmp_path_factory.mktemp("v2") / "nyu_depth_v2_labeled.mat"
    return write_nyu_v2(
        path,
        [rgb for rgb, _ in frames],
        [fill_holes_nearest(d) for _, d in frames],
        [d for _, d in frames],
        V2_SCENES,
    )


@pytest.mark.parametrize("depth_dtype", ["float32", "uint16"])
def test_real_v1_frames_read_back(v1_files: dict, depth_dtype: str) -> None:
    path, holes = v1_files[depth_dtype]
    root = require_shared_data() / "nyu_v1_samples"
    names = real_v1_names()
    ds = NYULabeled(path)
    assert ds.version == "v1" and len(ds) == 17 == len(names)
    assert ds.scenes == names
    assert ds.depth_units == ("m" if depth_dtype == "float32" else "mm")
    assert ds.raw_depth_units == ("m" if depth_dtype == "float32" else "kinect")
    with ds:
        for i, name in enumerate(names):
            item = ds[i]
            assert item["index"] == i and item["scene"] == name
            with Image.open(root / "rgb" / f"{name}.png") as im:
                rgb = np.asarray(im.convert("RGB"))
            assert item["image"].dtype == np.uint8 and item["image"].flags.c_contiguous
            np.testing.assert_array_equal(item["image"], rgb)
            mm = _png_mm(root / "depth" / f"{name}.png")
            assert item["depth"].dtype == np.float32 and item["depth"].shape == (480, 640)
            np.testing.assert_allclose(item["depth"], mm / 1000.0, rtol=1e-7, atol=0)
            raw = item["raw_depth"]
            assert raw.dtype == np.float32
            np.testing.assert_array_equal(raw == 0, holes[i])
            if depth_dtype == "float32":
                np.testing.assert_array_equal(raw[~holes[i]], item["depth"][~holes[i]])
            else:
                # Disparity is quantised to whole units: depth step is d^2 / 351.3 per unit.
                d = item["depth"][~holes[i]].astype(np.float64)
                back = raw[~holes[i]].astype(np.float64)
                bound = 0.5 * np.maximum(d, back) ** 2 / 351.3 + 1e-4
                assert np.all(np.abs(back - d) <= bound)


def test_real_v2_frames_read_back(v2_file: Path) -> None:
    root = require_shared_data() / "nyu_v2_raw_samples"
    ds = NYULabeled(v2_file)
    assert ds.version == "v2" and len(ds) == 3
    assert ds.scenes == V2_SCENES
    assert (ds.depth_units, ds.raw_depth_units) == ("m", "m")
    for i, number in enumerate(real_v2_raw_names()):
        item = ds[i]
        with Image.open(root / "rgb" / f"rgb_{number}.jpg") as im:
            np.testing.assert_array_equal(item["image"], np.asarray(im.convert("RGB")))
        mm = _png_mm(root / "depth" / f"sync_depth_{number}.png")
        raw = item["raw_depth"]
        np.testing.assert_array_equal(raw == 0, mm == 0)
        np.testing.assert_allclose(raw, mm / 1000.0, rtol=1e-7, atol=0)
        assert 0.2 < (mm == 0).mean() < 0.4  # the documented 25-33 % holes
        # depths = the same frame, holes filled from neighbours.
        assert np.all(item["depth"] > 0)
        np.testing.assert_array_equal(item["depth"][mm > 0], raw[mm > 0])
        assert item["bad_values"] == 0


def test_version_detection_can_be_forced(v2_file: Path, v1_files: dict) -> None:
    assert NYULabeled(v2_file, version="v1").version == "v1"
    assert NYULabeled(v1_files["uint16"][0], version="2").version == "v2"
    with pytest.raises(DepthLightningError, match="unknown NYU version"):
        NYULabeled(v2_file, version="v3")


def test_indexing(v2_file: Path) -> None:
    ds = NYULabeled(v2_file)
    assert ds[-1]["index"] == 2
    assert ds[np.int64(1)]["index"] == 1
    for bad in (3, -4):
        with pytest.raises(IndexError):
            ds[bad]
    assert [item["index"] for item in ds] == [0, 1, 2]  # Sequence iteration stops cleanly


# -- processes -----------------------------------------------------------------------------
class _Probe(NYULabeled):
    """Reports which process read a frame and which process opened the handle it used."""

    def __getitem__(self, index: int) -> dict:  # type: ignore[override]
        item = super().__getitem__(index)
        item["pid"] = os.getpid()
        item["handle_pid"] = self._pid
        return item


def test_forked_dataloader_workers_open_their_own_handle(v2_file: Path) -> None:
    torch_data = pytest.importorskip("torch.utils.data")
    ds = _Probe(v2_file)
    expected = [ds[i] for i in range(len(ds))]  # the parent now holds an open handle
    assert ds._handle is not None
    loader = torch_data.DataLoader(
        ds, batch_size=None, num_workers=2, multiprocessing_context="fork"
    )
    got = list(loader)
    assert len(got) == len(expected)
    for want, item in zip(expected, got, strict=True):
        assert item["pid"] != os.getpid()
        assert item["handle_pid"] == item["pid"]
        assert item["index"] == want["index"] and item["scene"] == want["scene"]
        for key in ("image", "depth", "raw_depth"):
            np.testing.assert_array_equal(np.asarray(item[key]), want[key])
    # The parent's handle survived the workers.
    np.testing.assert_array_equal(ds[0]["depth"], expected[0]["depth"])


def test_inherited_handle_is_replaced(v2_file: Path) -> None:
    ds = NYULabeled(v2_file)
    ds[0]
    inherited = ds._handle
    ds._pid = -1  # as if this process were a fork of the one that opened it
    ds[1]
    assert ds._handle is not inherited and ds._pid == os.getpid()


def test_pickle_and_close(v2_file: Path) -> None:
    ds = NYULabeled(v2_file)
    first = ds[1]
    clone = pickle.loads(pickle.dumps(ds))
    assert ds._handle is not None and clone._handle is None
    assert clone.version == "v2" and clone.scenes == V2_SCENES and clone.path == ds.path
    assert clone.fingerprint() == ds.fingerprint() and clone.name == ds.name
    np.testing.assert_array_equal(clone[1]["raw_depth"], first["raw_depth"])
    with clone:
        clone[0]
    assert clone._handle is None
    np.testing.assert_array_equal(clone[1]["image"], first["image"])  # reopens after close
    ds.close()
    clone.close()


# -- bad input -----------------------------------------------------------------------------
def _tiny_h5(path: Path, **arrays: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=value)
    return path


def _assert_data_error(path: Path, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        NYULabeled(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


IMAGES_2 = np.zeros((2, 3, 640, 480), np.uint8)
DEPTHS_2 = np.ones((2, 640, 480), np.float32)


def test_missing_file(tmp_path: Path) -> None:
    message = _assert_data_error(tmp_path / "nyu_depth_v2_labeled.mat", "does not exist",
                                 "set data.download=true to fetch nyu_depth_v2_labeled.mat")
    assert message.startswith("data.path: ")
    assert not list(tmp_path.iterdir()), "nothing downloaded without data.download"
    with pytest.raises(DataError, match="fetch nyu_depth_data_labeled.mat"):
        NYULabeled(tmp_path / "v1.mat", version="v1")


def test_folder_or_no_path(tmp_path: Path) -> None:
    _assert_data_error(tmp_path, "is a folder, expected the NYU labeled .mat file")
    with pytest.raises(DataError, match="data.path: needs the path"):
        NYULabeled(None)


def test_text_file_named_mat(tmp_path: Path) -> None:
    path = tmp_path / "nyu_depth_v2_labeled.mat"
    path.write_text("<html>503 Service Unavailable</html>\n")
    _assert_data_error(path, "not an HDF5 file")


def test_matlab_v5_file(tmp_path: Path) -> None:
    from scipy.io import savemat

    path = tmp_path / "splits.mat"
    savemat(path, {"trainNdxs": np.arange(1, 5)})
    _assert_data_error(path, "MATLAB v5")


def test_truncated_file(tmp_path: Path) -> None:
    images, depths = _synthetic(2)
    good = write_nyu_v2(tmp_path / "good.mat", images, depths, depths, ["a_1", "b_2"])
    data = good.read_bytes()
    cut = tmp_path / "nyu_depth_v2_labeled.mat"
    cut.write_bytes(data[: len(data) // 2])
    _assert_data_error(cut, "truncated")


def test_missing_images(tmp_path: Path) -> None:
    path = _tiny_h5(tmp_path / "x.mat", depths=DEPTHS_2)
    _assert_data_error(path, "missing dataset 'images'", "depths")


def test_missing_depths(tmp_path: Path) -> None:
    path = _tiny_h5(tmp_path / "x.mat", images=IMAGES_2, rawDepths=DEPTHS_2)
    _assert_data_error(path, "missing dataset 'depths'")


@pytest.mark.parametrize(
    ("key", "arrays", "fragments"),
    [
        (
            "images",
            {"images": np.zeros((2, 480, 640, 3), np.uint8), "depths": DEPTHS_2},
            ["'images'", "(2, 480, 640, 3)", "(N, 3, 640, 480)"],
        ),
        (
            "depths",
            {"images": IMAGES_2, "depths": np.ones((2, 480, 640), np.float32)},
            ["'depths'", "(2, 480, 640)", "(2, 640, 480)", "transposed"],
        ),
        (
            "count",
            {"images": IMAGES_2, "depths": DEPTHS_2[:1]},
            ["'depths'", "(1, 640, 480)", "(2, 640, 480)"],
        ),
        (
            "raw",
            {"images": IMAGES_2, "depths": DEPTHS_2, "rawDepths": DEPTHS_2[:, :320]},
            ["'rawDepths'", "(2, 320, 480)"],
        ),
        (
            "dtype",
            {"images": IMAGES_2.astype(np.float32), "depths": DEPTHS_2},
            ["'images'", "float32", "uint8"],
        ),
    ],
)
def test_wrong_shapes(tmp_path: Path, key: str, arrays: dict, fragments: list[str]) -> None:
    _assert_data_error(_tiny_h5(tmp_path / f"{key}.mat", **arrays), *fragments)


def test_corrupt_chunk_names_file_and_frame(tmp_path: Path) -> None:
    images, depths = _synthetic(4)
    path = write_nyu_v2(tmp_path / "c.mat", images, depths, depths, None, compression="gzip")
    with h5py.File(path, "r") as f:
        chunk = f["images"].id.get_chunk_info_by_coord((1, 0, 0, 0))
    with open(path, "r+b") as fh:
        fh.seek(chunk.byte_offset)
        assert fh.read(1) == b"\x78"  # zlib stream header: the offset is where we think
        fh.seek(chunk.byte_offset)
        fh.write(b"\xff" * 4096)
    ds = NYULabeled(path)
    np.testing.assert_array_equal(ds[0]["image"], images[0])
    with pytest.raises(DataError) as info:
        ds[1]
    message = str(info.value)
    assert str(path) in message and "frame 1" in message and "\n" not in message
    torch_data = pytest.importorskip("torch.utils.data")
    loader = torch_data.DataLoader(
        ds, batch_size=None, num_workers=2, multiprocessing_context="fork"
    )
    with pytest.raises(DataError, match="frame 1"):
        list(loader)


# -- values and units ----------------------------------------------------------------------
def test_invalid_raw_values_become_zero(tmp_path: Path) -> None:
    images, depths = _synthetic(2)
    raw = [d.copy() for d in depths]
    raw[0][0, :4] = [np.nan, np.inf, -np.inf, -1.5]
    raw[1][10, 10] = 0.0
    path = write_nyu_v2(tmp_path / "r.mat", images, depths, raw, ["a_1", "b_2"])
    ds = NYULabeled(path)
    item = ds[0]
    np.testing.assert_array_equal(item["raw_depth"][0, :4], 0.0)
    np.testing.assert_array_equal(item["raw_depth"][1:], depths[0][1:])
    np.testing.assert_array_equal(item["depth"], depths[0])
    assert np.isfinite(item["raw_depth"]).all()
    assert item["bad_values"] == 4, "NaN, inf, -inf and -1.5 counted for the cache's log"
    assert ds[1]["raw_depth"][10, 10] == 0.0 and ds[1]["bad_values"] == 0


def test_missing_raw_depths_fall_back_to_depth(tmp_path: Path) -> None:
    images, depths = _synthetic(2)
    path = write_nyu_v1(tmp_path / "v1.mat", images, depths, None, ["a", "b"])
    ds = NYULabeled(path)
    assert not ds.has_raw_depth
    item = ds[1]
    np.testing.assert_array_equal(item["raw_depth"], item["depth"])
    assert not np.shares_memory(item["raw_depth"], item["depth"])


def test_float_millimetres_detected_and_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images, depths = _synthetic(2)
    mm = [d * np.float32(1000.0) for d in depths]  # float array in mm: max far above 100
    path = write_nyu_v1(tmp_path / "mm.mat", images, mm, mm, ["a", "b"])
    with caplog.at_level(logging.INFO, logger=nyu.__name__):
        ds = NYULabeled(path)
        NYULabeled(path)
    assert ds.depth_units == "mm" and ds.raw_depth_units == "mm"
    np.testing.assert_allclose(ds[0]["depth"], depths[0], rtol=1e-6)
    logged = [r.getMessage() for r in caplog.records if "'depths'" in r.getMessage()]
    assert len(logged) == 1 and "millimetres" in logged[0]
    forced = NYULabeled(path, depth_units="m", raw_depth_units="m")
    np.testing.assert_array_equal(forced[0]["depth"], mm[0])


def test_float_kinect_raw_detected(tmp_path: Path) -> None:
    images, depths = _synthetic(2)
    raw = [kinect_raw_from_metres(np.where(_holes(d.shape, 0), 0.0, d)) for d in depths]
    path = write_nyu_v1(tmp_path / "k.mat", images, depths, [r.astype(np.float64) for r in raw])
    with h5py.File(path, "r") as f:
        assert f["rawDepths"].dtype == np.float32  # stored as MATLAB single, not uint16
    ds = NYULabeled(path)
    assert ds.raw_depth_units == "kinect"
    np.testing.assert_array_equal(ds[0]["raw_depth"] == 0, _holes((480, 640), 0))


def test_scene_names_reach_the_frames(tmp_path: Path) -> None:
    images, depths = _synthetic(3)
    scenes = ["office_0001", "", "café_0002"]
    path = write_nyu_v2(tmp_path / "s.mat", images, depths, depths, scenes)
    ds = NYULabeled(path)
    assert ds.scenes == scenes and [ds[i]["scene"] for i in range(3)] == scenes


def test_file_without_scenes_has_empty_scene_names(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    images, depths = _synthetic(2)
    path = write_nyu_v2(tmp_path / "s.mat", images, depths, depths, ["a_1", "b_2"])
    with h5py.File(path, "r+") as f:
        del f["scenes"]
    ds = NYULabeled(path)
    assert ds.scenes == ["", ""] and ds[1]["scene"] == ""  # the cache makes them frame scenes
    assert "no 'scenes' dataset" in caplog.text


# -- the source contract -------------------------------------------------------------------
def test_name_and_fingerprint(tmp_path: Path) -> None:
    images, depths = _synthetic(2)
    path = write_nyu_v2(tmp_path / "my_file.mat", images, depths, depths, ["a_1", "b_2"])
    ds = NYULabeled(path)
    assert ds.name == "my_file"
    fp = ds.fingerprint()
    st = path.stat()
    assert fp == {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                  "units": ["m", "m"]}
    assert NYULabeled(path).fingerprint() == fp
    assert NYULabeled(path, depth_units="mm").fingerprint()["units"] == ["mm", "m"]
    os.utime(path, ns=(1, 1))
    assert ds.fingerprint() != fp, "a changed file: another fingerprint"


def _splits(path: Path, train: list[int], test: list[int]) -> Path:
    scipy.io.savemat(path, {"trainNdxs": np.array(train, np.float64)[:, None],
                            "testNdxs": np.array(test, np.float64)[:, None]})
    return path


def test_official_split(tmp_path: Path) -> None:
    images, depths = _synthetic(4)
    path = write_nyu_v2(tmp_path / "v2.mat", images, depths, depths, None)
    with pytest.raises(DataError, match="split file not found"):
        NYULabeled(path).official_split()
    _splits(tmp_path / "splits.mat", [1, 2, 4], [3])  # beside the file: the default
    tr, te = NYULabeled(path).official_split()
    assert tr.tolist() == [0, 1, 3] and te.tolist() == [2]
    other = _splits(tmp_path / "mine.mat", [4], [1, 2])
    tr, te = NYULabeled(path, split_file=other).official_split()
    assert tr.tolist() == [3] and te.tolist() == [0, 1]
    with pytest.raises(DataError, match="mine.mat: trainNdxs holds indices 5..5"):
        NYULabeled(path, split_file=_splits(other, [5], [1])).official_split()
    with pytest.raises(DataError, match="NYU V1 has no official depth split"):
        NYULabeled(path, version="v1").official_split()


def test_official_split_of_the_real_file(tmp_path: Path) -> None:
    real = require_shared_data() / "nyu_v2_splits" / "splits.mat"
    images, depths = _synthetic(2)
    path = write_nyu_v2(tmp_path / "v2.mat", images, depths, depths, None)
    with pytest.raises(DataError, match="but the data file has 2 frames"):
        NYULabeled(path, split_file=real).official_split()
