"""The scale-invariant log loss of Eigen et al. (2014), masked for Kinect holes."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from depth_lightning.errors import DepthLightningError


def valid_mask(depth: Tensor) -> Tensor:
    """Pixels with a usable depth: positive and finite (Kinect holes are 0, corrupt NaN/inf)."""
    return torch.isfinite(depth) & (depth > 0)


def scale_invariant_terms(
    log_pred: Tensor, depth: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-image (sum d^2, sum d, n) over valid pixels, d = log pred - log gt, in float32."""
    if mask is None:
        mask = valid_mask(depth)
    else:
        mask = mask & valid_mask(depth)
    m = mask.float().flatten(1)
    safe_depth = torch.where(mask, depth, torch.ones_like(depth))  # log(0) would poison the graph
    d = (log_pred.float() - torch.log(safe_depth.float())).flatten(1) * m
    return (d * d).sum(1), d.sum(1), m.sum(1)


def scale_invariant_loss(
    log_pred: Tensor, depth: Tensor, mask: Tensor | None = None, lam: float = 0.5
) -> Tensor:
    """Mean over images of L = (1/n) sum d_i^2 - (lam/n^2) (sum d_i)^2.

    `log_pred` is the network's log depth (B,1,H,W) or (B,H,W); `depth` the target in metres of
    the same shape; `mask` optional extra validity (pixels that are 0, NaN or inf are always
    excluded). lam = 0 is log-L2, lam = 1 the scale-invariant error D, training uses 0.5.
    Images without a valid pixel contribute nothing; a batch with none gives 0 (with gradient).
    """
    sq, s, n = scale_invariant_terms(log_pred, depth, mask)
    has = n > 0
    if not bool(has.any()):
        return log_pred.sum() * 0.0
    n = n[has]
    per_image = sq[has] / n - lam * (s[has] / n) ** 2
    return per_image.mean()



def no_gradient_term(weight: float | None, loss: str) -> None:
    """A loss without the gradient-matching term refuses its `weight` rather than ignoring it
    (the loss configs set it null, so that one chosen over the gradient-matching loss of
    +experiment=fine does not inherit its weight)."""
    if weight is not None:
        raise DepthLightningError(f"model.loss.weight: {loss} has no gradient-matching term "
                                  f"(got {weight!r}); leave it null")


class ScaleInvariantLoss:
    """`model.loss` default: the scale-invariant log loss with weight `lam` (see
    :func:`scale_invariant_loss`), as a callable ``(log_pred, depth, mask) -> scalar``.

    Example:
        >>> loss = ScaleInvariantLoss(lam=1.0)
        >>> depth = torch.tensor([[[[1.0, 2.0, 0.0]]]])            # the 0 is a hole
        >>> float(loss(torch.log(3 * depth.clamp_min(1)), depth))  # a pure scale error: 0
        0.0
    """

    def __init__(self, lam: float, weight: float | None = None) -> None:
        no_gradient_term(weight, "the scale-invariant loss")
        try:
            self.lam = float(lam)
        except (TypeError, ValueError):
            raise DepthLightningError(f"model.loss.lam: must be a number, got {lam!r}") from None
        if not math.isfinite(self.lam):
            raise DepthLightningError(f"model.loss.lam: must be finite, got {lam!r}")

    def __call__(self, log_pred: Tensor, depth: Tensor, mask: Tensor | None = None) -> Tensor:
        return scale_invariant_loss(log_pred, depth, mask, lam=self.lam)

    def __repr__(self) -> str:
        return f"ScaleInvariantLoss(lam={self.lam:g})"
