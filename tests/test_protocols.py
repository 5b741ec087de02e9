"""Evaluation protocols: the ground truth, region, caps and upsampling a prediction meets."""

from pathlib import Path

import numpy as np
import pytest
import torch
from nyu_files import fill_holes_nearest, real_v2_raw_frames, require_shared_data
from omegaconf import OmegaConf

from depth_lightning.errors import DepthLightningError
from depth_lightning.evaluation.metrics import per_image_errors
from depth_lightning.evaluation.protocols import TRAINING_TARGET, EvalProtocol
from depth_lightning.geometry import EIGEN_CROP, NETWORK_REGION

CONF = Path(__file__).resolve().parents[1] / "depth_lightning" / "conf"


def protocol(name: str) -> EvalProtocol:
    return EvalProtocol.from_config(OmegaConf.to_container(OmegaConf.load(CONF / "eval" /
                                                                      f"{name}.yaml")))


def test_protocol_configs():
    eigen, bts = protocol("eigen2014"), protocol("bts")
    assert (eigen.target, eigen.upsample, eigen.region) == ("depths", "nearest", NETWORK_REGION)
    assert NETWORK_REGION == (12, 468, 16, 624)  # the 304x228 crop of 320x240, at 640x480
    assert (eigen.min_depth, eigen.max_depth, eigen.frame_key) == (1e-3, None, "depth")
    assert (bts.target, bts.upsample, bts.region) == ("rawDepths", "bilinear", (45, 471, 41, 601))
    assert (bts.min_depth, bts.max_depth, bts.frame_key) == (1e-3, 10.0, "raw_depth")


def test_the_training_target_is_scored_as_predicted():
    t = TRAINING_TARGET
    assert (t.size, t.region, t.min_depth, t.max_depth) == ((55, 74), (0, 55, 0, 74), 1e-3, 10.0)
    pred = torch.rand(2, 1, 55, 74) + 1
    assert torch.equal(t.resample(pred), pred[:, 0])
    target = torch.full((2, 1, 55, 74), 2.0)
    target[0, 0, 0, 0], target[1, 0, 3, 3] = 0.0, 11.0
    mask = t.valid_mask(target)
    assert mask.shape == target.shape and int(mask.sum()) == 2 * 55 * 74 - 2
    with pytest.raises(ValueError, match="55x74"):
        t.valid_mask(torch.ones(1, 480, 640))


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
    up = bts.resample(pred)
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
        up = p.resample(pred)
        target = raw if p is bts else filled
        m = p.valid_mask(target)
        out = per_image_errors(up, target, m, p.min_depth, p.max_depth)
        assert torch.isfinite(out["abs_rel"]).all() and (out["delta1"] > 0.7).all()
        # abs_rel by hand on the scored pixels only
        for i in range(len(frames)):
            gt, pr = target[i][m[i]].double(), up[i][m[i]].double().clamp(1e-3, p.max_depth)
            assert float(out["abs_rel"][i]) == pytest.approx(float(((gt - pr).abs() / gt)
                                                                   .mean()), rel=1e-9)


def test_protocol_rejects_bad_settings():
    with pytest.raises(DepthLightningError, match="eval.upsample"):
        EvalProtocol.from_config({"name": "x", "upsample": "cubic"})
    outside = EvalProtocol.from_config({"name": "x", "crop": [0, 500, 0, 10]})
    with pytest.raises(DepthLightningError, match="eval.crop: .* not inside a 480x640 frame"):
        outside.region_for((480, 640))  # checked on each frame's size, here NYU's
    with pytest.raises(DepthLightningError, match="eval.target"):
        EvalProtocol.from_config({"name": "x", "target": "labels"})
    assert EvalProtocol.from_config({"name": "x", "crop": list(EIGEN_CROP)}).region == EIGEN_CROP


