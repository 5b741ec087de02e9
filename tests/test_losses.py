import numpy as np
import pytest
import torch

from depth_lightning.losses import scale_invariant_loss


def hand_loss(log_pred, depth, lam):
    """The paper's formula written out per image with NumPy."""
    out = []
    for lp, d in zip(log_pred, depth):
        valid = np.isfinite(d) & (d > 0)
        if not valid.any():
            continue
        diff = lp[valid] - np.log(d[valid])
        n = diff.size
        out.append((diff**2).sum() / n - lam * diff.sum() ** 2 / n**2)
    return float(np.mean(out))


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    depth = torch.rand(3, 1, 55, 74, generator=g) * 8 + 0.5
    depth[0, 0, :10] = 0  # a Kinect hole
    depth[1, 0, 5, 5] = float("nan")
    depth[2, 0, 7, :3] = float("inf")
    log_pred = torch.log(depth.nan_to_num(1.0, 1.0).clamp_min(0.1)) + 0.3 * torch.randn(
        3, 1, 55, 74, generator=g)
    return log_pred, depth


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_loss_matches_hand_computation(batch, lam):
    log_pred, depth = batch
    got = scale_invariant_loss(log_pred, depth, lam=lam).item()
    assert got == pytest.approx(hand_loss(log_pred.numpy(), depth.numpy(), lam), rel=1e-5)


def test_lambda_one_is_invariant_to_scaling_the_prediction(batch):
    log_pred, depth = batch
    a = scale_invariant_loss(log_pred, depth, lam=1.0)
    b = scale_invariant_loss(log_pred + np.log(3.7), depth, lam=1.0)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # and lambda = 0.5 is not
    assert abs(scale_invariant_loss(log_pred + 1.3, depth, lam=0.5).item()
               - scale_invariant_loss(log_pred, depth, lam=0.5).item()) > 1e-3


def test_masked_pixels_are_ignored(batch):
    log_pred, depth = batch
    garbage = log_pred.clone()
    invalid = ~(torch.isfinite(depth) & (depth > 0))
    garbage[invalid] = 1e6
    torch.testing.assert_close(scale_invariant_loss(garbage, depth),
                               scale_invariant_loss(log_pred, depth))
    extra = torch.zeros_like(depth, dtype=torch.bool)
    extra[:, :, :20] = True
    masked = depth.clone()
    masked[~extra] = 0
    torch.testing.assert_close(scale_invariant_loss(log_pred, depth, mask=extra),
                               scale_invariant_loss(log_pred, masked))


def test_all_invalid_image_gives_no_nan_and_contributes_nothing(batch):
    log_pred, depth = batch
    depth = depth.clone()
    depth[1] = 0
    log_pred = log_pred.clone().requires_grad_(True)
    loss = scale_invariant_loss(log_pred, depth)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(log_pred.grad).all()
    assert float(log_pred.grad[1].abs().sum()) == 0.0
    only = scale_invariant_loss(log_pred[[0, 2]], depth[[0, 2]])
    torch.testing.assert_close(loss, only)


def test_batch_without_any_valid_pixel_is_zero_with_gradient():
    log_pred = torch.randn(2, 1, 55, 74, requires_grad=True)
    loss = scale_invariant_loss(log_pred, torch.zeros(2, 1, 55, 74))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(log_pred.grad).all()
