"""The losses after 2014 (gradient matching, berHu, L1 / L2 in log depth) against hand
computations written out pixel by pixel with NumPy, their masking, and their config files."""

import numpy as np
import pytest
import torch
from conftest import compose

from depth_lightning.core.plugins import build, check_loss
from depth_lightning.errors import DepthLightningError
from depth_lightning.losses import ScaleInvariantLoss
from depth_lightning.losses.field import BerHuLoss, GradientMatchingLoss, LogL1Loss


def _valid(d):
    return np.isfinite(d) & (d > 0)


def hand_gradient_matching(log_pred, depth, lam, weight):
    """Eigen & Fergus 2015, eq. 4, with explicit loops over adjacent pixel pairs."""
    out = []
    for lp, gt in zip(log_pred[:, 0], depth[:, 0]):
        valid = _valid(gt)
        n = valid.sum()
        if n == 0:
            continue
        d = np.where(valid, lp - np.log(np.where(valid, gt, 1.0)), 0.0)
        grad = 0.0
        h, w = d.shape
        for i in range(h):
            for j in range(w):
                if j + 1 < w and valid[i, j] and valid[i, j + 1]:
                    grad += (d[i, j + 1] - d[i, j]) ** 2
                if i + 1 < h and valid[i, j] and valid[i + 1, j]:
                    grad += (d[i + 1, j] - d[i, j]) ** 2
        s = d[valid]
        out.append((s**2).sum() / n - lam * s.sum() ** 2 / n**2 + weight * grad / n)
    return float(np.mean(out))


def hand_berhu(log_pred, depth, fraction=0.2):
    valid = _valid(depth)
    x = np.exp(log_pred[valid]) - depth[valid]
    c = fraction * np.abs(x).max()
    return float(np.mean([abs(v) if abs(v) <= c else (v * v + c * c) / (2 * c) for v in x]))


def hand_log_l1(log_pred, depth):
    out = [np.abs(lp[_valid(gt)] - np.log(gt[_valid(gt)])).mean()
           for lp, gt in zip(log_pred, depth) if _valid(gt).any()]
    return float(np.mean(out))


@pytest.fixture
def batch():
    """Three 12x15 images with a Kinect hole, a NaN and an inf."""
    g = torch.Generator().manual_seed(1)
    depth = torch.rand(3, 1, 12, 15, generator=g, dtype=torch.float64) * 8 + 0.5
    depth[0, 0, :3] = 0
    depth[1, 0, 5, 5] = float("nan")
    depth[2, 0, 7, :3] = float("inf")
    log_pred = torch.log(depth.nan_to_num(1.0, 1.0).clamp_min(0.1)) + 0.3 * torch.randn(
        3, 1, 12, 15, generator=g, dtype=torch.float64)
    return log_pred.float(), depth.float()


@pytest.mark.parametrize("lam,weight", [(0.5, 1.0), (1.0, 0.0), (0.0, 2.5)])
def test_gradient_matching_matches_hand_computation(batch, lam, weight):
    log_pred, depth = batch
    got = GradientMatchingLoss(lam, weight)(log_pred, depth).item()
    want = hand_gradient_matching(log_pred.double().numpy(), depth.double().numpy(), lam,
                                  weight)
    assert got == pytest.approx(want, rel=1e-5)


def test_gradient_matching_of_a_tiny_image_by_hand():
    # d = [[0.1, 0.3], [hole, 0.0]]: x pairs (0.1, 0.3) -> 0.04; y pairs (0.3, 0.0) -> 0.09
    depth = torch.tensor([[[[1.0, 1.0], [0.0, 1.0]]]])
    log_pred = torch.tensor([[[[0.1, 0.3], [7.0, 0.0]]]])
    si = (0.01 + 0.09 + 0.0) / 3 - 0.5 * (0.4 / 3) ** 2
    got = GradientMatchingLoss(0.5, 1.0)(log_pred, depth).item()
    assert got == pytest.approx(si + (0.04 + 0.09) / 3, rel=1e-6)


def test_berhu_matches_hand_computation(batch):
    log_pred, depth = batch
    got = BerHuLoss()(log_pred, depth).item()
    assert got == pytest.approx(hand_berhu(log_pred.double().numpy(),
                                           depth.double().numpy()), rel=1e-5)
    # both branches are used on this batch: some |x| <= c, some above
    x = (log_pred.exp() - depth)[torch.isfinite(depth) & (depth > 0)].abs()
    assert 0 < int((x <= 0.2 * x.max()).sum()) < x.numel()


def test_log_l1_and_log_l2_match_hand_computation(batch):
    log_pred, depth = batch
    lp, gt = log_pred.double().numpy(), depth.double().numpy()
    assert LogL1Loss()(log_pred, depth).item() == pytest.approx(hand_log_l1(lp, gt), rel=1e-5)
    l2 = np.mean([((p[_valid(g)] - np.log(g[_valid(g)])) ** 2).mean() for p, g in zip(lp, gt)])
    log_l2 = build(compose("train", "+model/loss=log_l2").model.loss, "model.loss")
    assert log_l2(log_pred, depth).item() == pytest.approx(float(l2), rel=1e-5)


LOSSES = [GradientMatchingLoss(0.5, 1.0), BerHuLoss(), LogL1Loss()]


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_holes_are_ignored_whatever_the_prediction_there(batch, loss):
    log_pred, depth = batch
    garbage = log_pred.clone()
    garbage[~(torch.isfinite(depth) & (depth > 0))] = 1e4
    torch.testing.assert_close(loss(garbage, depth), loss(log_pred, depth))
    # an extra mask is the same as holes there
    keep = torch.zeros_like(depth, dtype=torch.bool)
    keep[..., :6, :] = True
    holed = torch.where(keep, depth, 0.0)
    torch.testing.assert_close(loss(log_pred, depth, keep), loss(log_pred, holed))


@pytest.mark.parametrize("loss", LOSSES, ids=repr)
def test_all_invalid_image_gives_no_nan(batch, loss):
    log_pred, depth = batch
    depth = depth.clone()
    depth[1] = 0
    log_pred = log_pred.clone().requires_grad_(True)
    value = loss(log_pred, depth)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(log_pred.grad).all()
    assert float(log_pred.grad[1].abs().sum()) == 0.0
    # a batch with no valid pixel at all: 0, with a finite gradient
    empty = log_pred.detach().clone().requires_grad_(True)
    zero = loss(empty, torch.zeros_like(depth))
    zero.backward()
    assert zero.item() == 0.0 and torch.isfinite(empty.grad).all()


def test_a_perfect_prediction_costs_nothing_and_has_finite_gradients(batch):
    _, depth = batch
    log_pred = torch.log(depth.nan_to_num(1.0, 1.0).clamp_min(0.1)).requires_grad_(True)
    for loss in LOSSES:
        value = loss(log_pred, depth)
        value.backward()
        assert abs(value.item()) < 1e-6 and torch.isfinite(log_pred.grad).all()


@pytest.mark.parametrize("name,cls", [("gradient_matching", GradientMatchingLoss),
                                      ("berhu", BerHuLoss), ("log_l1", LogL1Loss),
                                      ("log_l2", ScaleInvariantLoss),
                                      ("scale_invariant", ScaleInvariantLoss)])
def test_each_config_builds_and_keeps_the_contract(name, cls):
    cfg = compose("train", "+experiment=fine", f"+model/loss={name}")
    loss = build(cfg.model.loss, "model.loss")
    assert type(loss) is cls
    check_loss(loss, "model.loss", (55, 74))
    # the coarse stage keeps the paper's loss unless chosen too
    assert cfg.coarse_stage.model.loss._target_.endswith("ScaleInvariantLoss")


def test_settings_are_checked():
    with pytest.raises(DepthLightningError, match=r"model.loss.lam: berHu has no lambda"):
        BerHuLoss(lam=0.5)
    with pytest.raises(DepthLightningError, match=r"model.loss.weight: must be a number >= 0"):
        GradientMatchingLoss(weight=-1)
    with pytest.raises(DepthLightningError, match=r"model.loss.fraction"):
        BerHuLoss(fraction=0)
    with pytest.raises(DepthLightningError, match=r"model.loss.lam: log L1 has no lambda"):
        LogL1Loss(lam=1)
    for loss in (lambda: ScaleInvariantLoss(0.5, weight=1.0), lambda: BerHuLoss(weight=1.0),
                 lambda: LogL1Loss(weight=0.5)):  # the gradient-matching term's weight
        with pytest.raises(DepthLightningError, match=r"model.loss.weight: .* has no gradient"):
            loss()
