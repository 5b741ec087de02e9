"""The NYU labeled files' format (depth_lightning.data.nyu_format): opening, MATLAB strings,
depth units and their conversion to metres."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from nyu_files import kinect_metres, kinect_raw_from_metres, write_nyu_v1, write_nyu_v2

from depth_lightning.data.nyu_format import (
    one_line,
    open_h5,
    read_depth_units,
    sanitise,
    scene_names,
    to_metres,
)
from depth_lightning.errors import DataError


def _synthetic(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(n)]
    depths = [rng.uniform(0.5, 9.0, (480, 640)).astype(np.float32) for _ in range(n)]
    return images, depths


# -- opening -----------------------------------------------------------------------------------
def test_open_h5_reads_a_labeled_file(tmp_path: Path) -> None:
    images, depths = _synthetic(2)
    path = write_nyu_v2(tmp_path / "v2.mat", images, depths, depths, ["a_1", "b_2"])
    with open_h5(path) as f:
        assert f.mode == "r" and f["images"].shape == (2, 3, 640, 480)
        np.testing.assert_array_equal(f["images"][1].T, images[1])


def test_open_h5_failures_are_one_line_data_errors(tmp_path: Path) -> None:
    from scipy.io import savemat

    images, depths = _synthetic(2)
    good = write_nyu_v2(tmp_path / "good.mat", images, depths, depths, ["a_1", "b_2"])
    cut = tmp_path / "cut.mat"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "text.mat"
    text.write_text("<html>503 Service Unavailable</html>\n")
    savemat(tmp_path / "v5.mat", {"trainNdxs": np.arange(1, 5)})
    cases = {
        tmp_path / "nope.mat": "file not found",
        tmp_path: "is a directory",
        text: "not an HDF5 file",
        tmp_path / "v5.mat": "MATLAB v5 .mat file, not MATLAB v7.3",
        cut: "truncated HDF5 file",
    }
    for path, fragment in cases.items():
        with pytest.raises(DataError) as info:
            open_h5(path)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and fragment in message, message
        assert "\n" not in message


def test_one_line() -> None:
    assert one_line(ValueError("a\n  b\tc ")) == "a b c"
    assert one_line(KeyError()) == "KeyError"


# -- MATLAB strings ----------------------------------------------------------------------------
def test_scene_names_decode_empty_and_unicode(tmp_path: Path) -> None:
    images, depths = _synthetic(3)
    scenes = ["office_0001", "", "café_0002"]
    path = write_nyu_v2(tmp_path / "s.mat", images, depths, depths, scenes,
                        scene_types=["office", "", "café"])
    with h5py.File(path, "r") as f:
        assert f["scenes"].shape == (1, 3)
        assert scene_names(f) == scenes
        assert scene_names(f, "sceneTypes") == ["office", "", "café"]
        assert scene_names(f, "names") == ["wall", "floor"]
        with pytest.raises(DataError, match="missing dataset 'nope'"):
            scene_names(f, "nope")
        with pytest.raises(DataError, match="'images' is not a MATLAB cell array"):
            scene_names(f, "images")


def test_scene_names_of_a_column_cell_array(tmp_path: Path) -> None:
    images, depths = _synthetic(2)
    path = write_nyu_v1(tmp_path / "v1.mat", images, depths, None, ["kitchen_0001", "bath_2"])
    with h5py.File(path, "r+") as f:  # MATLAB may store a cell array as (N, 1)
        refs = f["scenes"][()]
        del f["scenes"]
        f.create_dataset("scenes", data=refs.T)
    with h5py.File(path, "r") as f:
        assert f["scenes"].shape == (2, 1)
        assert scene_names(f) == ["kitchen_0001", "bath_2"]


def test_a_null_scene_reference_is_a_data_error(tmp_path: Path) -> None:
    images, depths = _synthetic(2)
    path = write_nyu_v2(tmp_path / "d.mat", images, depths, depths, ["a_1", "b_2"])
    with h5py.File(path, "r+") as f:
        refs = f["scenes"][()]
        refs[0, 1] = h5py.Reference()  # a null reference: points nowhere
        f["scenes"][...] = refs
    with h5py.File(path, "r") as f, pytest.raises(DataError, match="'scenes' entry 1"):
        scene_names(f)


# -- units -------------------------------------------------------------------------------------
def _units_file(path: Path, key: str, frames: np.ndarray) -> h5py.File:
    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=frames)
    return h5py.File(path, "r")


@pytest.mark.parametrize(
    ("key", "frames", "units"),
    [
        ("depths", np.full((3, 8, 6), 3.5, np.float32), "m"),
        ("depths", np.full((3, 8, 6), 3500.0, np.float32), "mm"),
        ("depths", np.full((3, 8, 6), 3, np.uint16), "mm"),  # integers are never metres
        ("rawDepths", np.full((3, 8, 6), 900, np.uint16), "kinect"),
        ("rawDepths", np.full((3, 8, 6), 2047, np.uint16), "kinect"),
        ("rawDepths", np.full((3, 8, 6), 4000, np.uint16), "mm"),  # above 2047: millimetres
        ("depths", np.full((3, 8, 6), 900, np.uint16), "mm"),  # disparity only in rawDepths
        ("rawDepths", np.full((3, 8, 6), 2047.0, np.float32), "kinect"),  # the hole marker
        ("rawDepths", np.full((3, 8, 6), 1500.0, np.float32), "mm"),
        ("rawDepths", np.full((3, 8, 6), 2047.5, np.float32), "mm"),  # not whole numbers
        ("rawDepths", np.full((3, 8, 6), 4.25, np.float32), "m"),
        ("depths", np.full((3, 8, 6), np.nan, np.float32), "m"),  # no finite value
    ],
)
def test_read_depth_units(tmp_path: Path, key: str, frames: np.ndarray, units: str) -> None:
    with _units_file(tmp_path / "u.mat", key, frames) as f:
        assert read_depth_units(f, key) == units


def test_read_depth_units_looks_at_three_frames(tmp_path: Path) -> None:
    frames = np.full((5, 8, 6), 2.0, np.float32)
    frames[1] = 5000.0  # frames 0, 2 and 4 are read: this one is not
    with _units_file(tmp_path / "u.mat", "depths", frames) as f:
        assert read_depth_units(f) == "m"
    frames[4, 0, 0] = 5000.0
    with _units_file(tmp_path / "v.mat", "depths", frames) as f:
        assert read_depth_units(f) == "mm"


def test_to_metres() -> None:
    metres = np.array([[0.5, 3.25]], np.float32)
    assert to_metres(metres, "m") is metres, "float32 metres are not copied"
    assert to_metres(metres.astype(np.float64), "m").dtype == np.float32
    mm = np.array([[0, 1, 1234, 65535]], np.uint16)
    got = to_metres(mm, "mm")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, mm.astype(np.float32) / np.float32(1000.0))
    assert got[0, 2] == np.float32(1.234)
    with pytest.raises(ValueError, match="unknown depth units 'cm'"):
        to_metres(mm, "cm")


def test_kinect_conversion_matches_toolbox_formula() -> None:
    raw = np.array([[0, 500, 1000, 1057, 1060, 1092, 1093, 2047, 3000]], np.uint16)
    got = to_metres(raw, "kinect")
    assert got.dtype == np.float32
    want = kinect_metres(raw)
    valid = np.isfinite(want) & (want <= 10.0)
    np.testing.assert_allclose(got[valid], want[valid], rtol=1e-6)
    np.testing.assert_array_equal(got[~valid], 0.0)  # beyond 10 m, 2047 and past the pole
    assert valid.tolist() == [[True, True, True, True, False, False, False, False, False]]


def test_kinect_round_trip() -> None:
    depth = np.array([[0.0, 0.7, 1.5, 3.0, 6.0]], np.float64)
    raw = kinect_raw_from_metres(depth)
    assert raw[0, 0] == 2047
    back = to_metres(raw, "kinect")
    assert back[0, 0] == 0
    # disparity is whole units: depth step d^2 / 351.3 per unit
    bound = 0.5 * depth[0, 1:] ** 2 / 351.3 + 1e-4
    assert np.all(np.abs(back[0, 1:] - depth[0, 1:]) <= bound)


def test_sanitise_counts_and_zeroes_bad_values() -> None:
    depth = np.array([[1.0, np.nan, np.inf, -np.inf, -0.5, 0.0, 2.0]], np.float32)
    clean, bad = sanitise(depth)
    assert bad == 4
    assert clean.tolist() == [[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0]]
    assert np.isnan(depth[0, 1]), "the input is not changed"
    good = np.ones((2, 2), np.float32)
    same, none = sanitise(good)
    assert none == 0 and same is good
