"""Depth metrics, functional part: the per-pixel pass and its sufficient statistics (the
error measures of Eigen et al. 2014).

Every metric is computed **per image** on that image's valid pixels and then averaged over the
images, as in Eigen et al. 2014 and the BTS / AdaBins / ZoeDepth evaluation code::

    valid = mask & (gt > min_depth) & (gt < max_depth)   # no upper test when max_depth is None
    pred  = clip(pred, min_depth, max_depth)
    e     = log(pred) - log(gt)
    thr   = max(gt / pred, pred / gt)
    delta_k     = mean(thr < 1.25 ** k)                  k = 1, 2, 3
    abs_rel     = mean(|gt - pred| / gt)
    sq_rel      = mean((gt - pred) ** 2 / gt)
    rmse        = sqrt(mean((gt - pred) ** 2))
    rmse_log    = sqrt(mean(e ** 2))
    si_rmse_log = sqrt(mean(e ** 2) - mean(e) ** 2)      # "RMSE (log, scale inv.)"
    log10       = mean(|log10(gt) - log10(pred)|)

(BTS, AdaBins and ZoeDepth report ``silog = 100 * si_rmse_log``.)

All the per-pixel work lives in :func:`per_image_errors`, one pass for all nine metrics.
:func:`_depth_metrics_update` reduces a batch to its sufficient statistics (per metric the sum
over images of the per-image value, and the number of images with a valid pixel) and
:func:`_depth_metrics_compute` turns summed statistics into the metrics, in torchmetrics' own
functional shape; :class:`depth_lightning.evaluation.metrics.DepthMetrics` only holds the summed
states.

Conventions:

* Inputs are depths in metres shaped ``(B, H, W)`` or ``(B, 1, H, W)``, any floating dtype
  (bf16 included); the arithmetic is done in float64.
* ``mask`` defaults to ``(target > 0) & isfinite(target)``; a non-finite target is never valid.
* ``pred`` need not be positive (it is clipped), and masked / invalid pixels never influence a
  result whatever they hold (nan, inf, negative). A nan *prediction at a valid pixel* is not
  hidden: it makes that image's value, and so the metric, nan.
* An image without a valid pixel is skipped: it adds nothing to the statistics.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

#: The nine metric keys, in the order papers report them.
METRIC_KEYS: tuple[str, ...] = (
    "delta1",
    "delta2",
    "delta3",
    "abs_rel",
    "sq_rel",
    "rmse",
    "rmse_log",
    "si_rmse_log",
    "log10",
)

#: Whether a larger value of each metric is better (the deltas) or worse (the errors).
HIGHER_IS_BETTER: dict[str, bool] = {k: k.startswith("delta") for k in METRIC_KEYS}

_DELTA_THRESHOLDS: dict[str, float] = {"delta1": 1.25, "delta2": 1.25**2, "delta3": 1.25**3}
_COMPUTE_DTYPE = torch.float64
_CPU_CHUNK_ELEMENTS = 1 << 19  # pixels per chunk on CPU (see per_image_errors)


def _check_depth_range(min_depth: float, max_depth: float | None) -> tuple[float, float | None]:
    """Validate the depth caps and return them as Python floats."""
    try:
        lo = float(min_depth)
        hi = None if max_depth is None else float(max_depth)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"min_depth and max_depth must be numbers (max_depth may be None), got "
            f"{min_depth!r} and {max_depth!r}"
        ) from err
    if not (math.isfinite(lo) and lo > 0):
        raise ValueError(f"min_depth must be a finite number > 0 (logs are taken), got {lo!r}")
    if hi is not None and not hi > lo:
        raise ValueError(
            f"max_depth must be None (no upper cap) or a number > min_depth={lo}, got {hi!r}"
        )
    return lo, hi


def _as_bhw(x: Tensor, name: str) -> Tensor:
    """Return ``x`` as ``(B, H, W)``, accepting ``(B, H, W)`` or ``(B, 1, H, W)``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 4 and x.shape[1] == 1:
        return x[:, 0]
    if x.ndim == 3:
        return x
    raise ValueError(f"{name} must be shaped (B, H, W) or (B, 1, H, W), got {tuple(x.shape)}")


def _checked_inputs(pred: Tensor, target: Tensor, mask: Tensor | None
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """(pred, target, bool mask) as (B, H, W) tensors of one shape, or a ValueError."""
    pred = _as_bhw(pred, "pred").detach()
    target = _as_bhw(target, "target").detach()
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)} "
            "(after dropping a singleton channel dimension)"
        )
    if pred.device != target.device:
        raise ValueError(f"pred is on {pred.device} but target is on {target.device}")
    if not (pred.is_floating_point() and target.is_floating_point()):
        raise ValueError(
            f"pred and target must be floating point depths in metres, got {pred.dtype} and "
            f"{target.dtype}"
        )
    if mask is None:
        return pred, target, target > 0
    mask = _as_bhw(mask, "mask").detach()
    if mask.shape != target.shape:
        raise ValueError(
            f"mask shape {tuple(mask.shape)} differs from target shape {tuple(target.shape)}"
        )
    return pred, target, mask if mask.dtype == torch.bool else mask != 0


def per_image_errors(
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    min_depth: float = 1e-3,
    max_depth: float | None = 10.0,
    keys: Iterable[str] | None = None,
) -> dict[str, Tensor]:
    """Per-image depth metrics (the nine of the module doc), in float64.

    Args:
        pred: predicted depth in metres, ``(B, H, W)`` or ``(B, 1, H, W)``, any float dtype.
        target: ground-truth depth in metres, same shape as ``pred`` (a ``(B, 1, H, W)`` and a
            ``(B, H, W)`` tensor are both accepted and compared as ``(B, H, W)``).
        mask: optional boolean (or 0/1) mask of pixels to evaluate, same shape; defaults to
            ``(target > 0) & isfinite(target)``. It is always combined with
            ``isfinite(target) & (target > min_depth) & (target < max_depth)``.
        min_depth: lower depth cap (> 0): ground truth at or below it is invalid and the
            prediction is clipped up to it.
        max_depth: upper depth cap, or ``None`` for no upper cap: ground truth at or above it is
            invalid and the prediction is clipped down to it.
        keys: which metrics to compute (default: all of :data:`METRIC_KEYS`).

    Returns:
        A dict mapping each requested key to a ``(B,)`` float64 tensor of per-image values
        (``nan`` for an image with no valid pixel), plus ``"valid"``, a ``(B,)`` bool tensor
        (image has at least one valid pixel) and ``"n_valid"``, the ``(B,)`` int64 count of
        valid pixels per image. Masked pixels never influence the result, whatever their value.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 0.0]]])    # the 0 is a hole
        >>> pred = torch.tensor([[[2.0, 4.0], [8.0, 123.0]]])
        >>> out = per_image_errors(pred, gt, keys=("abs_rel", "si_rmse_log"))
        >>> out["abs_rel"]   # the hole's 123 m prediction is ignored
        tensor([1.], dtype=torch.float64)
        >>> round(float(out["si_rmse_log"][0]), 12)   # a pure scale error costs nothing
        0.0
        >>> out["valid"], out["n_valid"]
        (tensor([True]), tensor([3]))
    """
    min_depth, max_depth = _check_depth_range(min_depth, max_depth)
    wanted = _wanted_keys(keys)
    pred, target, mask = _checked_inputs(pred, target, mask)
    mask = mask.to(target.device)
    batch = target.shape[0]
    pixels = target[0].numel() if batch else 0
    # On CPU, work on a few images at a time so the float64 temporaries stay in cache (about
    # 4x faster than one pass over a large batch); on accelerators one pass is best.
    if target.device.type == "cpu":
        step = max(1, _CPU_CHUNK_ELEMENTS // max(pixels, 1))
    else:
        step = max(1, batch)
    parts = [_chunk_errors(pred[i : i + step], target[i : i + step], mask[i : i + step],
                           min_depth, max_depth, wanted) for i in range(0, batch, step)]
    if not parts:  # an empty batch
        parts = [_chunk_errors(pred, target, mask, min_depth, max_depth, wanted)]
    return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}


def _wanted_keys(keys: Iterable[str] | None) -> tuple[str, ...]:
    wanted = tuple(METRIC_KEYS if keys is None else keys)
    unknown = [k for k in wanted if k not in METRIC_KEYS]
    if unknown:
        raise ValueError(f"unknown metric key(s) {unknown}; choose from {list(METRIC_KEYS)}")
    return wanted


def _flat_valid(pred: Tensor, target: Tensor, mask: Tensor, min_depth: float,
                max_depth: float | None) -> tuple[Tensor, Tensor, Tensor]:
    """Ground truth and prediction as ``(b, H*W)`` float64, and the pixels to score."""
    gt = target.flatten(1).to(_COMPUTE_DTYPE)
    pr = pred.flatten(1).to(_COMPUTE_DTYPE)
    valid = mask.flatten(1) & (gt > min_depth)  # also drops nan and -inf
    valid &= torch.isfinite(gt) if max_depth is None else gt < max_depth
    # Invalid pixels get gt = pred = 1 m: every per-pixel error is then exactly 0 there (and
    # never inf / nan, whatever garbage they held), except the delta indicator, which is
    # exactly 1 there and is corrected for by subtracting the invalid-pixel count.
    gt = torch.where(valid, gt, 1.0)
    pr = torch.where(valid, pr.clamp(min=min_depth, max=max_depth), 1.0)
    return gt, pr, valid


def _chunk_errors(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    min_depth: float,
    max_depth: float | None,
    wanted: tuple[str, ...],
) -> dict[str, Tensor]:
    """:func:`per_image_errors` on checked ``(b, H, W)`` tensors (``mask`` bool, same device)."""
    gt, pr, valid = _flat_valid(pred, target, mask, min_depth, max_depth)
    n_valid = valid.sum(dim=1)
    n_invalid = valid.shape[1] - n_valid
    has_valid = n_valid > 0
    denom = n_valid.clamp(min=1).to(_COMPUTE_DTYPE)

    def image_mean(x: Tensor) -> Tensor:  # x is 0 at invalid pixels
        return x.sum(dim=1) / denom

    out: dict[str, Tensor] = {}
    if any(k in _DELTA_THRESHOLDS for k in wanted):
        thr = torch.maximum(gt / pr, pr / gt)
        for k in wanted:
            if k in _DELTA_THRESHOLDS:
                hits = (thr < _DELTA_THRESHOLDS[k]).sum(dim=1) - n_invalid
                out[k] = hits.to(_COMPUTE_DTYPE) / denom
    if "abs_rel" in wanted or "sq_rel" in wanted or "rmse" in wanted:
        diff = gt - pr
        if "abs_rel" in wanted:
            out["abs_rel"] = image_mean(diff.abs() / gt)
        if "sq_rel" in wanted or "rmse" in wanted:
            sq = diff.square()
            if "sq_rel" in wanted:
                out["sq_rel"] = image_mean(sq / gt)
            if "rmse" in wanted:
                out["rmse"] = image_mean(sq).sqrt()
    if "rmse_log" in wanted or "si_rmse_log" in wanted or "log10" in wanted:
        e = torch.log(pr) - torch.log(gt)
        if "rmse_log" in wanted:
            out["rmse_log"] = image_mean(e.square()).sqrt()
        if "si_rmse_log" in wanted:
            # mean(e^2) - mean(e)^2 is the variance of e; the centred two-pass form is the same
            # quantity without the cancellation of the textbook form.
            centred = torch.where(valid, e - image_mean(e).unsqueeze(1), 0.0)
            out["si_rmse_log"] = image_mean(centred.square()).sqrt()
        if "log10" in wanted:
            out["log10"] = image_mean(e.abs()) / math.log(10.0)

    nan = torch.full((), float("nan"), dtype=_COMPUTE_DTYPE, device=gt.device)
    result = {k: torch.where(has_valid, out[k], nan) for k in wanted}
    result["valid"] = has_valid
    result["n_valid"] = n_valid
    return result



def _depth_metrics_update(
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    min_depth: float = 1e-3,
    max_depth: float | None = 10.0,
    keys: Iterable[str] | None = None,
) -> tuple[dict[str, Tensor], Tensor]:
    """Sufficient statistics of a batch in one pass over its pixels.

    Returns ``(sums, n_images)``: for each key the float64 sum over the batch's images of the
    per-image value (images without a valid pixel add nothing), and the int64 number of images
    with at least one valid pixel. Statistics of several batches (or processes) add up.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0]], [[0.0, 0.0]]])   # the second image is all holes
        >>> sums, n = _depth_metrics_update(2 * gt, gt, keys=("abs_rel", "delta1"))
        >>> sums["abs_rel"], sums["delta1"], n
        (tensor(1., dtype=torch.float64), tensor(0., dtype=torch.float64), tensor(1))
    """
    out = per_image_errors(pred, target, mask, min_depth=min_depth, max_depth=max_depth,
                           keys=keys)
    valid = out["valid"]
    wanted = tuple(METRIC_KEYS if keys is None else keys)
    return {k: torch.where(valid, out[k], 0.0).sum() for k in wanted}, valid.sum()


def _depth_metrics_compute(sums: dict[str, Tensor], n_images: Tensor) -> dict[str, Tensor]:
    """The metrics from summed statistics: the mean over images of each per-image value
    (``nan`` for every key when no image had a valid pixel).

    Example:
        >>> _depth_metrics_compute({"rmse": torch.tensor(3.0, dtype=torch.float64)},
        ...                        torch.tensor(2))
        {'rmse': tensor(1.5000, dtype=torch.float64)}
    """
    if int(n_images) == 0:
        return {k: torch.full_like(v, float("nan")) for k, v in sums.items()}
    return {k: v / n_images for k, v in sums.items()}
