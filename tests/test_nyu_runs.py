"""The train and evaluate commands on NYU-layout files built from the real frames in
../shared/data.

The seed's setting on V1 and the official V2 setting run a fast_dev_run (V2's checkpoint is
then evaluated on the same file); bad input (a split that exceeds the file, a truncated file,
wrong shapes, a missing file) is one line and a non-zero exit; NaN, negative and missing depths
are masked and counted, and never reach the metrics as NaN.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from conftest import assert_one_line_error, run_job, run_module, small_run_args
from nyu_files import (
    fill_holes_nearest,
    kinect_raw_from_metres,
    real_v1_frames,
    real_v1_names,
    real_v2_raw_frames,
    require_shared_data,
    write_nyu_v1,
    write_nyu_v2,
)

from depth_lightning.evaluation.metrics import METRIC_KEYS

V2_SCENES = ["bedroom_0001", "bedroom_0001", "kitchen_0003", "office_0004", "office_0004",
             "living_room_0005", "living_room_0005", "bathroom_0006"]


def run_dirs(out: Path) -> list[Path]:
    return sorted(p for p in (out / "train" / "runs").glob("*") if p.is_dir())


def run_args(data_dir: Path, out: Path, two_stage: bool = False) -> list[str]:
    """small_run_args for the NYU sources (not SynthRooms)."""
    return small_run_args(data_dir, out, two_stage=two_stage, synthetic=False)


def train(tmp_path: Path, *args: str, command_line: bool = True) -> tuple:
    """The train command with a tiny setting on NYU data (`command_line=False`: its job in this
    process, for refusals whose message is the point)."""
    out = tmp_path / "outputs"
    two_stage = any(a in ("+experiment=fine", "+experiment=seed_paper") for a in args)
    args = (*args, "++trainer.fast_dev_run=true",
            *run_args(tmp_path / "data", out, two_stage=two_stage))
    res = run_module("depth_lightning.train", *args, cwd=tmp_path) if command_line else \
        run_job("train", *args, cwd=tmp_path)
    return res, out


def frame_caches(tmp_path: Path) -> list[Path]:
    """The frame caches the runs built (data.cache_dir = paths.data_dir/cache)."""
    root = tmp_path / "data" / "cache"
    return sorted(p for p in root.glob("*.cache-*") if p.is_dir())


def finite_metrics(out: Path) -> dict:
    (run,) = run_dirs(out)
    metrics = json.loads((run / "metrics.json").read_text())
    for stage, values in metrics.items():
        for key, v in values.items():
            assert math.isfinite(v), f"{stage}/{key} = {v}"
    return metrics


def v2_frames() -> tuple[list, list, list]:
    """8 real frames: the 3 V2 raw frames (holes) and 5 V1 frames (raw = depth)."""
    require_shared_data()
    v2 = real_v2_raw_frames()
    v1 = real_v1_frames()[:5]
    images = [rgb for rgb, _ in v2] + [rgb for rgb, _ in v1]
    raws = [d for _, d in v2] + [d for _, d in v1]
    depths = [fill_holes_nearest(d) for d in raws]
    return images, depths, raws


def write_splits(path: Path, train: list[int], test: list[int]) -> Path:
    # MATLAB column vectors of 1-based indices, as in the official splits.mat
    scipy.io.savemat(path, {"trainNdxs": np.array(train, np.float64)[:, None],
                            "testNdxs": np.array(test, np.float64)[:, None]})
    return path


@pytest.fixture
def v1_file(tmp_path) -> Path:
    require_shared_data()
    frames = real_v1_frames()
    depths = [d for _, d in frames]
    # the layout one source reports for V1: uint16 millimetres, raw Kinect disparity
    return write_nyu_v1(tmp_path / "nyu_depth_data_labeled.mat", [rgb for rgb, _ in frames],
                        depths, [kinect_raw_from_metres(d) for d in depths], real_v1_names(),
                        depth_dtype="uint16")


@pytest.mark.slow
def test_seed_setting_on_v1_fast_dev_run(v1_file, tmp_path):
    res, out = train(tmp_path, "+experiment=seed_paper", "data=nyu_v1", f"data.path={v1_file}")
    assert res.returncode == 0, res.stderr[-3000:]
    metrics = finite_metrics(out)
    assert set(metrics) == {"mean", "coarse", "fine"}
    (run,) = run_dirs(out)
    cfg = (run / "config.yaml").read_text()
    assert "kind: seed" in cfg and "subset: 800" in cfg
    (cache,) = frame_caches(tmp_path)
    assert cache.name.startswith("nyu_depth_data_labeled.cache-")
    assert json.loads((cache / "meta.json").read_text())["scenes"] == real_v1_names()


@pytest.mark.slow
def test_official_v2_setting_fast_dev_run_and_evaluate(tmp_path):
    images, depths, raws = v2_frames()
    path = write_nyu_v2(tmp_path / "nyu_depth_v2_labeled.mat", images, depths, raws, V2_SCENES)
    splits = write_splits(tmp_path / "splits.mat", [1, 2, 4, 5, 6], [3, 7, 8])
    data = ("data=nyu_v2", f"data.path={path}", f"data.split.file={splits}")
    res, out = train(tmp_path, *data)
    assert res.returncode == 0, res.stderr[-3000:]
    finite_metrics(out)
    (run,) = run_dirs(out)
    assert "5 train / 3 val frames" in (run / "train.log").read_text()
    (cache,) = frame_caches(tmp_path)
    assert json.loads((cache / "meta.json").read_text())["scenes"] == V2_SCENES
    # evaluate the checkpoint on the official test frames of the same file
    ckpt = sorted(run.glob("coarse/checkpoints/*.ckpt"))[0]
    log_dir = tmp_path / "eval_outputs"
    res = run_job("evaluate", f"ckpt_path={ckpt}", *data,
                     f"paths.data_dir={tmp_path / 'data'}", f"paths.log_dir={log_dir}",
                     "data.num_workers=0", "figure.n=0", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (eval_run,) = sorted((log_dir / "evaluate" / "runs").iterdir())
    metrics = json.loads((eval_run / "metrics.json").read_text())
    assert set(metrics) == {"mean", "coarse", "constant"}
    assert all(math.isfinite(values[k]) for values in metrics.values() for k in METRIC_KEYS)
    assert "on the 3 validation frames" in res.stdout and str(path) in res.stdout
    assert frame_caches(tmp_path) == [cache], "the training's cache is reused"


def test_missing_file_is_one_line(tmp_path):
    res, out = train(tmp_path, "data=nyu_v2", f"data.path={tmp_path / 'nope.mat'}",
                     command_line=False)
    assert_one_line_error(res, "data.path", "nope.mat does not exist", "data.download=true")
    assert run_dirs(out) == []


def test_split_indices_beyond_the_file_are_one_line(tmp_path):
    images, depths, raws = v2_frames()
    path = write_nyu_v2(tmp_path / "v2.mat", images, depths, raws, V2_SCENES)
    real = require_shared_data() / "nyu_v2_splits" / "splits.mat"  # indexes 1449 frames
    res, out = train(tmp_path, "data=nyu_v2", f"data.path={path}", f"data.split.file={real}",
                     command_line=False)
    assert_one_line_error(res, "splits.mat", "8 frames")
    assert run_dirs(out) == []


def test_truncated_file_is_one_line(tmp_path):
    images, depths, raws = v2_frames()
    path = write_nyu_v2(tmp_path / "v2.mat", images, depths, raws, V2_SCENES)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    res, _ = train(tmp_path, "data=nyu_v2", f"data.path={path}", "data.split.kind=all",
                   command_line=False)
    assert_one_line_error(res, "v2.mat", "truncated")


def test_wrong_shapes_are_one_line(tmp_path):
    path = tmp_path / "transposed.mat"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 3, 480, 640), np.uint8)
        f["depths"] = np.zeros((2, 480, 640), np.float32)
    res, _ = train(tmp_path, "data=nyu_v2", f"data.path={path}", "data.split.kind=all",
                   command_line=False)
    assert_one_line_error(res, "transposed.mat", "images", "shape")


@pytest.mark.slow
def test_nan_negative_and_empty_frames_are_masked_and_counted(tmp_path):
    images, depths, raws = v2_frames()
    depths = [d.copy() for d in depths]
    depths[0][:] = 0.0  # a frame with no valid pixel
    raws[0] = np.zeros_like(raws[0])
    depths[1][:100] = np.nan
    depths[1][100:110] = -1.0
    depths[2][0, :5] = np.inf
    path = write_nyu_v2(tmp_path / "v2.mat", images, depths, raws, V2_SCENES)
    # every frame in training and validation: the empty and NaN frames are in the first
    # (and only) batch of each
    res, out = train(tmp_path, "data=nyu_v2", f"data.path={path}", "data.split.kind=all",
                     "data.augment.flip=false", "data.augment.rotate=0")
    assert res.returncode == 0, res.stderr[-3000:]
    finite_metrics(out)
    (cache,) = frame_caches(tmp_path)
    assert cache.name.startswith("v2.cache-")
    meta = json.loads((cache / "meta.json").read_text())
    assert meta["bad_depth_values"] == 100 * 640 + 10 * 640 + 5
    assert meta["frames_without_valid_raw_depth"] == [0]
    log = (run_dirs(out)[0] / "train.log").read_text()
    assert "depth values masked" in log
