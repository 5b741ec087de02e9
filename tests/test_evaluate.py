"""Evaluation protocols (upsampling, crops, caps, holes) and the evaluate command end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_module
from fixtures_runs import tiny_run  # noqa: F401
from nyu_files import fill_holes_nearest, real_v2_raw_frames, require_shared_data
from omegaconf import OmegaConf

from depth_lightning.errors import CheckpointError
from depth_lightning.metrics import METRIC_KEYS, per_image_errors
from depth_lightning.protocols import (
    EIGEN_CROP,
    NETWORK_REGION,
    Protocol,
    upsample_to_frame,
)

CONF = Path(__file__).resolve().parents[1] / "depth_lightning" / "conf"


def protocol(name: str) -> Protocol:
    return Protocol.from_config(OmegaConf.to_container(OmegaConf.load(CONF / "eval" /
                                                                      f"{name}.yaml")))


def test_protocol_configs():
    eigen, bts = protocol("eigen2014"), protocol("bts")
    assert (eigen.target, eigen.upsample, eigen.region) == ("depths", "nearest", NETWORK_REGION)
    assert NETWORK_REGION == (12, 468, 16, 624)  # the 304x228 crop of 320x240, at 640x480
    assert (eigen.min_depth, eigen.max_depth, eigen.frame_key) == (1e-3, None, "depth")
    assert (bts.target, bts.upsample, bts.region) == ("rawDepths", "bilinear", (45, 471, 41, 601))
    assert (bts.min_depth, bts.max_depth, bts.frame_key) == (1e-3, 10.0, "raw_depth")


def test_nearest_upsampling_copies_cells_and_replicates_edges():
    pred = torch.arange(55 * 74, dtype=torch.float32).reshape(1, 1, 55, 74) + 1
    up = upsample_to_frame(pred, (480, 640), "nearest")[0]
    assert up.shape == (480, 640)
    top, bottom, left, right = NETWORK_REGION
    region = up[top:bottom, left:right]
    # inside the region: every output pixel's value at its centre, 608/74 x 456/55 per cell
    ref = F.interpolate(pred, size=(456, 608), mode="nearest-exact")[0, 0]
    assert torch.equal(region, ref)
    assert set(up.unique().tolist()) == set(pred.flatten().tolist())
    assert up[0, 0] == pred[0, 0, 0, 0] and up[-1, -1] == pred[0, 0, -1, -1]
    # outside it: edge replication
    assert torch.equal(up[:top, left:right], region[:1].expand(top, -1))
    assert torch.equal(up[bottom:, left:right], region[-1:].expand(480 - bottom, -1))
    assert torch.equal(up[top:bottom, :left], region[:, :1].expand(-1, left))


def test_bilinear_upsampling_blends_neighbours():
    torch.manual_seed(0)
    pred = torch.rand(2, 1, 55, 74) * 4 + 0.5
    up = upsample_to_frame(pred, (480, 640), "bilinear")
    top, bottom, left, right = NETWORK_REGION
    ref = F.interpolate(pred, size=(456, 608), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(up[:, top:bottom, left:right], ref, rtol=0, atol=1e-4)
    # values between the extremes of the source, and different from nearest
    assert up.min() >= pred.min() - 1e-5 and up.max() <= pred.max() + 1e-5
    assert not torch.allclose(up, upsample_to_frame(pred, (480, 640), "nearest"))
    # a horizontal ramp stays a ramp: equal steps between pixel centres inside the region
    ramp = torch.arange(74, dtype=torch.float32).expand(1, 1, 55, 74)
    row = upsample_to_frame(ramp, (480, 640), "bilinear")[0, 240, 40:600]
    steps = row.diff()
    torch.testing.assert_close(steps, torch.full_like(steps, 74 / 608), rtol=0, atol=1e-4)
    # any photo size: (B,55,74) input, output the requested size
    assert upsample_to_frame(pred[:, 0], (123, 457), "bilinear").shape == (2, 123, 457)


def test_bts_mask_crop_caps_and_holes():
    bts, eigen = protocol("bts"), protocol("eigen2014")
    target = torch.full((1, 480, 640), 3.0)
    target[0, 100, 100] = 0.0  # Kinect hole
    target[0, 101, 100] = 12.0  # beyond the 10 m cap
    target[0, 102, 100] = float("nan")
    target[0, 469, 300] = 4.0  # inside the Eigen crop, below the network's region
    mask = bts.valid_mask(target)[0]
    expected = torch.zeros(480, 640, dtype=torch.bool)
    expected[45:471, 41:601] = True
    expected[100:103, 100] = False
    assert torch.equal(mask, expected)
    assert mask.sum() == (471 - 45) * (601 - 41) - 3
    emask = eigen.valid_mask(target)[0]
    assert emask[101, 100] and not emask[100, 100] and not emask[469, 300]  # no upper cap
    assert emask.sum() == 456 * 608 - 2
    # the padded rows of the Eigen crop are scored with the replicated bottom edge
    pred = torch.full((1, 1, 55, 74), 2.0)
    pred[0, 0, -1] = 4.0
    up = bts.upsample_depth(pred)
    assert up[0, 469, 300] == pytest.approx(4.0) and up[0, 470, 300] == pytest.approx(4.0)
    # masked pixels never reach the metrics, and predictions are capped to 10 m
    out = per_image_errors(up, torch.nan_to_num(target), mask[None], bts.min_depth, bts.max_depth)
    assert int(out["n_valid"][0]) == int(mask.sum())
    assert torch.isfinite(out["si_rmse_log"]).all()


def test_protocols_on_real_nyu_v2_raw_frames():
    require_shared_data()
    frames = real_v2_raw_frames()
    bts, eigen = protocol("bts"), protocol("eigen2014")
    raw = torch.from_numpy(np.stack([d for _, d in frames]))
    holes = raw <= 0
    assert 0.2 < float(holes.float().mean()) < 0.4
    mask = bts.valid_mask(raw)
    crop = raw[:, 45:471, 41:601]
    assert torch.equal(mask[:, 45:471, 41:601], (crop > 1e-3) & (crop < 10.0))
    assert not mask[holes].any() and not mask[:, :45].any() and not mask[:, :, 601:].any()
    # a "prediction" made from the filled depth sampled at the network's 55x74 output pixels
    filled = torch.from_numpy(np.stack([fill_holes_nearest(d.copy()) for _, d in frames]))
    ys = ((torch.arange(55) + 0.5) * 456 / 55 + 12).long()
    xs = ((torch.arange(74) + 0.5) * 608 / 74 + 16).long()
    pred = filled[:, ys][:, :, xs][:, None]
    for p in (bts, eigen):
        up = p.upsample_depth(pred)
        target = raw if p is bts else filled
        m = p.valid_mask(target)
        out = per_image_errors(up, target, m, p.min_depth, p.max_depth)
        assert torch.isfinite(out["abs_rel"]).all() and (out["delta1"] > 0.7).all()
        # abs_rel by hand on the scored pixels only
        for i in range(len(frames)):
            gt, pr = target[i][m[i]].double(), up[i][m[i]].double().clamp(1e-3, p.max_depth)
            assert float(out["abs_rel"][i]) == pytest.approx(float(((gt - pr).abs() / gt)
                                                                   .mean()), rel=1e-9)


def test_one_pass_image_means_equal_the_metric_classes():
    from depth_lightning.evaluate import ImageMeans

    torch.manual_seed(0)
    pred = torch.rand(5, 30, 40) * 12
    target = torch.rand(5, 30, 40) * 12
    target[0] = 0  # an image without ground truth is skipped by both
    mask = torch.rand(5, 30, 40) > 0.3
    for p in (protocol("bts"), protocol("eigen2014")):
        means, collection = ImageMeans(p), p.metrics()
        for i in (0, 2):
            means.update(pred[i:i + 3], target[i:i + 3], mask[i:i + 3])
            collection.update(pred[i:i + 3], target[i:i + 3], mask[i:i + 3])
        expected = {k: float(v) for k, v in collection.compute().items()}
        assert means.compute() == pytest.approx(expected, rel=1e-12)


def test_protocol_rejects_bad_settings():
    from depth_lightning.errors import DepthLightningError

    with pytest.raises(DepthLightningError, match="eval.upsample"):
        Protocol.from_config({"name": "x", "upsample": "cubic"})
    with pytest.raises(DepthLightningError, match="eval.crop"):
        Protocol.from_config({"name": "x", "crop": [0, 500, 0, 10]})
    with pytest.raises(DepthLightningError, match="eval.target"):
        Protocol.from_config({"name": "x", "target": "labels"})
    assert Protocol.from_config({"name": "x", "crop": list(EIGEN_CROP)}).region == EIGEN_CROP


# -- checkpoints ----------------------------------------------------------------------------
class Payload:
    """Stands for code pickled into a checkpoint."""


def test_checkpoints_load_weights_only_and_unsafe_ones_are_refused(tiny_run, tmp_path,  # noqa: F811
                                                                     monkeypatch):
    from depth_lightning.stages import FineStage, load_stage

    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    module = load_stage(tiny_run.fine_ckpt)
    assert isinstance(module, FineStage) and not module.training
    assert calls == [True]
    monkeypatch.undo()

    pickled = tmp_path / "pickled.ckpt"
    torch.save({"depth_lightning": {"stage": "coarse"}, "x": Payload()}, pickled)
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, plain)
    for path, words in ((pickled, "pickled code"), (plain, "not a depth_lightning checkpoint"),
                        (tmp_path / "missing.ckpt", "does not exist")):
        with pytest.raises(CheckpointError) as err:
            load_stage(path)
        message = str(err.value)
        assert "\n" not in message and message.startswith("ckpt_path: ")
        assert path.name in message and words in message


# -- the command ----------------------------------------------------------------------------
def one_error_line(res) -> str:
    assert res.returncode == 1, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    return lines[0]


def eval_runs(log_dir: Path) -> list[Path]:
    runs = log_dir / "evaluate" / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def test_evaluate_fine_checkpoint_eigen2014(tiny_run, tmp_path):  # noqa: F811
    log_dir = tmp_path / "outputs"
    res = run_module("depth_lightning.evaluate", f"ckpt_path={tiny_run.fine_ckpt}",
                     *tiny_run.data_args(log_dir), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = eval_runs(log_dir)
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics) == ["mean", "coarse", "fine"]
    for values in metrics.values():
        assert list(values) == list(METRIC_KEYS)
        assert all(np.isfinite(v) for v in values.values())
    # nearest upsampling of the prediction at 640x480 vs the training's 55x74 targets: the paper
    # found < 1 % difference; the tiny run agrees within a few percent
    trained = json.loads((tiny_run.run_dir / "metrics.json").read_text())
    for col in ("mean", "coarse", "fine"):
        assert metrics[col]["si_rmse_log"] == pytest.approx(trained[col]["si_rmse_log"], rel=0.03)
    table = (run / "table.md").read_text()
    assert "| | Mean | Coarse | Coarse+Fine |" in table and "RMSE (log, scale inv.)" in table
    assert "eigen2014" in table and table.count("\n| ") == 10
    assert "| | Mean | Coarse | Coarse+Fine |" in res.stdout  # printed too
    figure = run / "figure3.png"
    from PIL import Image

    with Image.open(figure) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert figure.stat().st_size > 50_000 and pixels.shape[0] > 500 and pixels.shape[1] > 800
    assert pixels.std() > 20  # panels drawn, not a blank canvas
    assert not list(run.glob(".*.tmp"))


def test_evaluate_coarse_checkpoint_bts_in_process(tiny_run, tmp_path, monkeypatch,  # noqa: F811
                                                   capsys):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from depth_lightning.evaluate import run

    # in this process, to spare a second start-up of torch and Lightning; a relative ckpt_path
    # is taken from the starting directory
    (tmp_path / "ckpts").mkdir()
    (tmp_path / "ckpts" / "coarse.ckpt").symlink_to(tiny_run.coarse_ckpt)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    GlobalHydra.instance().clear()
    with initialize_config_module("depth_lightning.conf", version_base="1.3"):
        cfg = compose("evaluate", overrides=[
            "ckpt_path=ckpts/coarse.ckpt", "eval=bts", "figure.frames=[0,2]",
            f"paths.output_dir={out}", *tiny_run.data_args(tmp_path / "outputs")])
    metrics = run(cfg)
    assert list(metrics) == ["mean", "coarse"]
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert all(np.isfinite(v) for c in metrics.values() for v in c.values())
    table = (out / "table.md").read_text()
    assert "bts: rawDepths, bilinear" in table and "| | Mean | Coarse |\n" in table
    assert (out / "figure3.png").is_file()
    assert "| | Mean | Coarse |" in capsys.readouterr().out


def test_evaluate_missing_checkpoint_is_one_line(tiny_run, tmp_path):  # noqa: F811
    log_dir = tmp_path / "outputs"
    res = run_module("depth_lightning.evaluate", "ckpt_path=nope/missing.ckpt",
                     *tiny_run.data_args(log_dir), cwd=tmp_path)
    line = one_error_line(res)
    assert "ckpt_path" in line and str(tmp_path / "nope" / "missing.ckpt") in line
    assert eval_runs(log_dir) == []  # nothing half-written
