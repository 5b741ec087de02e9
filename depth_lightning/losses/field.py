"""Losses from after Eigen 2014, each a `model.loss` choice:
the scale-invariant loss plus gradient matching (Eigen & Fergus 2015), berHu (Laina et al.
2016) and the L1 error of log depth (L2 is `ScaleInvariantLoss` with lam = 0). They keep the
loss contract (depth_lightning.losses), ``(log_pred, depth, mask) -> scalar``: holes masked,
an image without a valid pixel adds nothing, a batch without one gives 0 with a gradient.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from depth_lightning.errors import DepthLightningError
from depth_lightning.losses.scale_invariant import (
    ScaleInvariantLoss,
    no_gradient_term,
    valid_mask,
)


def _no_lambda(lam: float | None, loss: str) -> None:
    """A loss without a scale-invariant term refuses a λ rather than silently ignoring it."""
    if lam is not None:
        raise DepthLightningError(f"model.loss.lam: {loss} has no lambda (got {lam!r}); "
                                  "leave it null")


def _log_error_map(log_pred: Tensor, depth: Tensor, mask: Tensor | None
                   ) -> tuple[Tensor, Tensor]:
    """(d, valid): d = log pred - log gt as a float32 (B,H,W) map that is 0 at invalid pixels
    (holes never reach the graph as log 0), and the (B,H,W) bool mask of valid pixels."""
    valid = valid_mask(depth) if mask is None else mask & valid_mask(depth)
    valid = valid.reshape(depth.shape[0], *depth.shape[-2:])
    gt = torch.where(valid, depth.reshape(valid.shape).float(), 1.0)
    d = log_pred.reshape(valid.shape).float() - torch.log(gt)
    return torch.where(valid, d, 0.0), valid


def _image_mean(per_pixel_sums: Tensor, counts: Tensor, log_pred: Tensor) -> Tensor:
    """Mean over images with a valid pixel of (sum / count); 0 with gradient when none has."""
    has = counts > 0
    if not bool(has.any()):
        return log_pred.sum() * 0.0
    return (per_pixel_sums[has] / counts[has]).mean()


def gradient_matching_term(d: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """Per image, sum over pixels of (grad_x d)^2 + (grad_y d)^2 (forward differences between
    horizontally / vertically adjacent pixels, counted only where both are valid), and the
    number of valid pixels n it is divided by (Eigen & Fergus 2015, eq. 4)."""
    both_x = valid[..., :, 1:] & valid[..., :, :-1]
    both_y = valid[..., 1:, :] & valid[..., :-1, :]
    gx = torch.where(both_x, d[..., :, 1:] - d[..., :, :-1], 0.0)
    gy = torch.where(both_y, d[..., 1:, :] - d[..., :-1, :], 0.0)
    return gx.square().flatten(1).sum(1) + gy.square().flatten(1).sum(1), valid.flatten(1).sum(1)


class GradientMatchingLoss:
    """Eigen & Fergus (ICCV 2015): the scale-invariant loss plus first-order matching of the
    log-depth error's gradients, per image over its n valid pixels::

        L = (1/n) sum d_i^2 - (lam/n^2) (sum d_i)^2 + w/n sum [(grad_x d)_i^2 + (grad_y d)_i^2]

    (the paper: lam = 1/2, w = 1), averaged over images with a valid pixel.

    Example (a constant error has no gradient: only the scale-invariant part is left):
        >>> depth = torch.tensor([[[[1.0, 2.0], [4.0, 0.0]]]])       # the 0 is a hole
        >>> loss = GradientMatchingLoss(lam=0.5, weight=1.0)
        >>> round(float(loss(torch.log(depth.clamp_min(1)) + 0.3, depth)), 6)  # 0.09 - 0.045
        0.045
    """

    def __init__(self, lam: float = 0.5, weight: float = 1.0) -> None:
        self.si = ScaleInvariantLoss(lam)
        try:
            self.weight = float(weight)
        except (TypeError, ValueError):
            raise DepthLightningError(f"model.loss.weight: must be a number, got {weight!r}"
                                      ) from None
        if not (math.isfinite(self.weight) and self.weight >= 0):
            raise DepthLightningError(f"model.loss.weight: must be a number >= 0, got {weight!r}")

    def __call__(self, log_pred: Tensor, depth: Tensor, mask: Tensor | None = None) -> Tensor:
        d, valid = _log_error_map(log_pred, depth, mask)
        grad_sq, n = gradient_matching_term(d, valid)
        return self.si(log_pred, depth, mask) + self.weight * _image_mean(grad_sq, n, log_pred)

    def __repr__(self) -> str:
        return f"GradientMatchingLoss(lam={self.si.lam:g}, weight={self.weight:g})"


class BerHuLoss:
    """The reverse Huber loss of Laina et al. (3DV 2016) on depth in metres (not log depth),
    x = pred - gt over the batch's valid pixels::

        B(x) = |x|                     if |x| <= c
               (x^2 + c^2) / (2 c)     otherwise,      c = fraction * max |x| (batch, no grad)

    averaged over all valid pixels of the batch (as in the paper; fraction = 0.2).

    Example (errors 0.1 and 1.0 m: c = 0.2, B = 0.1 and (1 + 0.04) / 0.4 = 2.6):
        >>> depth = torch.tensor([[[[1.0, 2.0, 0.0]]]])
        >>> pred = torch.tensor([[[[1.1, 3.0, 9.0]]]])
        >>> round(float(BerHuLoss()(torch.log(pred), depth)), 6)
        1.35
    """

    def __init__(self, fraction: float = 0.2, lam: float | None = None,
                 weight: float | None = None) -> None:
        _no_lambda(lam, "berHu")
        no_gradient_term(weight, "berHu")
        self.fraction = float(fraction)
        if not (math.isfinite(self.fraction) and self.fraction > 0):
            raise DepthLightningError(f"model.loss.fraction: must be a number > 0, got "
                                      f"{fraction!r}")

    def __call__(self, log_pred: Tensor, depth: Tensor, mask: Tensor | None = None) -> Tensor:
        d, valid = _log_error_map(log_pred, depth, mask)
        if not bool(valid.any()):
            return log_pred.sum() * 0.0
        gt = torch.where(valid, depth.reshape(valid.shape).float(), 1.0)
        x = torch.where(valid, gt * torch.expm1(d), 0.0)  # pred - gt = gt (e^d - 1)
        c = (self.fraction * x.detach().abs().max()).clamp_min(1e-6)  # 0 only if x is all 0
        berhu = torch.where(x.abs() <= c, x.abs(), (x.square() + c * c) / (2 * c))
        return berhu[valid].mean()

    def __repr__(self) -> str:
        return f"BerHuLoss(fraction={self.fraction:g})"


class LogL1Loss:
    """Mean absolute log-depth error over each image's valid pixels, averaged over images:
    L = (1/n) sum |d_i|. (L2 in log depth is ScaleInvariantLoss with lam = 0.)

    Example:
        >>> depth = torch.tensor([[[[1.0, 2.0, 0.0]]]])
        >>> float(LogL1Loss()(torch.log(depth.clamp_min(1)) + torch.tensor([0.2, -0.4, 5.0]),
        ...                   depth))
        0.30000001192092896
    """

    def __init__(self, lam: float | None = None, weight: float | None = None) -> None:
        _no_lambda(lam, "log L1")
        no_gradient_term(weight, "log L1")

    def __call__(self, log_pred: Tensor, depth: Tensor, mask: Tensor | None = None) -> Tensor:
        d, valid = _log_error_map(log_pred, depth, mask)
        return _image_mean(d.abs().flatten(1).sum(1), valid.flatten(1).sum(1), log_pred)

    def __repr__(self) -> str:
        return "LogL1Loss()"
