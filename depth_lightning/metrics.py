"""Depth-estimation metrics as torchmetrics ``Metric`` classes (REFERENCE.md section 3).

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

All the per-pixel work lives in :func:`per_image_errors`; each ``Metric`` class only keeps two
summed states, ``<key>_sum_value`` (the sum over images of the per-image value) and
``<key>_n_images`` (the number of images with at least one valid pixel), both reduced with
``dist_reduce_fx="sum"``, so the result under DDP equals the single-process result over the same
images exactly (up to float64 summation order). State names carry the metric's key, so a
``MetricCollection`` with ``compute_groups=True`` never merges two different metrics.

Conventions:

* Inputs are depths in metres shaped ``(B, H, W)`` or ``(B, 1, H, W)``, any floating dtype
  (bf16 included); the arithmetic is done in float64.
* ``mask`` defaults to ``(target > 0) & isfinite(target)``; a non-finite target is never valid.
* ``pred`` need not be positive (it is clipped), and masked / invalid pixels never influence a
  result whatever they hold (nan, inf, negative). A nan *prediction at a valid pixel* is not
  hidden: it makes that image's value, and so the metric, nan.
* An image without a valid pixel is skipped: it adds nothing to either state.
* ``compute()`` returns a float64 scalar tensor. If no image with a valid pixel has been seen it
  returns ``nan`` and emits a (rank-zero) warning, rather than raising.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities import rank_zero_warn

__all__ = [
    "HIGHER_IS_BETTER",
    "METRIC_CLASSES",
    "METRIC_KEYS",
    "AbsRel",
    "Delta1",
    "Delta2",
    "Delta3",
    "Log10",
    "PerImageDepthMetric",
    "RMSE",
    "RMSELog",
    "SIRMSELog",
    "SqRel",
    "depth_metrics",
    "per_image_errors",
]

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


def per_image_errors(
    pred: Tensor,
    target: Tensor,
    mask: Tensor | None = None,
    min_depth: float = 1e-3,
    max_depth: float | None = 10.0,
    keys: Iterable[str] | None = None,
) -> dict[str, Tensor]:
    """Per-image depth metrics of REFERENCE.md section 3, in float64.

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
    wanted = tuple(METRIC_KEYS if keys is None else keys)
    unknown = [k for k in wanted if k not in METRIC_KEYS]
    if unknown:
        raise ValueError(f"unknown metric key(s) {unknown}; choose from {list(METRIC_KEYS)}")

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
        mask = target > 0
    else:
        mask = _as_bhw(mask, "mask").detach()
        if mask.shape != target.shape:
            raise ValueError(
                f"mask shape {tuple(mask.shape)} differs from target shape {tuple(target.shape)}"
            )
        mask = mask if mask.dtype == torch.bool else mask != 0

    mask = mask.to(target.device)
    batch = target.shape[0]
    pixels = target[0].numel() if batch else 0
    # On CPU, work on a few images at a time so the float64 temporaries stay in cache (about
    # 4x faster than one pass over a large batch); on accelerators one pass is best.
    if target.device.type == "cpu":
        step = max(1, _CPU_CHUNK_ELEMENTS // max(pixels, 1))
    else:
        step = max(1, batch)
    parts = [
        _chunk_errors(
            pred[i : i + step],
            target[i : i + step],
            mask[i : i + step],
            min_depth,
            max_depth,
            wanted,
        )
        for i in range(0, batch, step)
    ]
    if not parts:  # an empty batch
        parts = [_chunk_errors(pred, target, mask, min_depth, max_depth, wanted)]
    return {k: torch.cat([part[k] for part in parts]) for k in parts[0]}


def _chunk_errors(
    pred: Tensor,
    target: Tensor,
    mask: Tensor,
    min_depth: float,
    max_depth: float | None,
    wanted: tuple[str, ...],
) -> dict[str, Tensor]:
    """:func:`per_image_errors` on checked ``(b, H, W)`` tensors (``mask`` bool, same device)."""
    gt = target.flatten(1).to(_COMPUTE_DTYPE)
    pr = pred.flatten(1).to(_COMPUTE_DTYPE)
    valid = mask.flatten(1) & (gt > min_depth)  # also drops nan and -inf
    valid &= torch.isfinite(gt) if max_depth is None else gt < max_depth
    # Invalid pixels get gt = pred = 1 m: every per-pixel error below is then exactly 0 there
    # (and never inf / nan, whatever garbage they held), except the delta indicator, which is
    # exactly 1 there and is corrected for by subtracting the invalid-pixel count.
    gt = torch.where(valid, gt, 1.0)
    pr = torch.where(valid, pr.clamp(min=min_depth, max=max_depth), 1.0)

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


class PerImageDepthMetric(Metric):
    """Base class: the mean over images of one per-image depth metric (see the module doc).

    Subclasses only set :attr:`key` (one of :data:`METRIC_KEYS`) and the plotting / ordering
    attributes. States (summed over processes under DDP):

    * ``<key>_sum_value``: float64 sum over images of the per-image value;
    * ``<key>_n_images``: int64 count of images with at least one valid pixel.

    Args:
        min_depth: lower depth cap in metres (> 0), default 1e-3.
        max_depth: upper depth cap in metres, default 10.0; ``None`` for no upper cap.
        kwargs: passed on to :class:`torchmetrics.Metric` (``dist_sync_on_step``, ...).
    """

    key: ClassVar[str] = ""
    is_differentiable: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = False
    full_state_update: ClassVar[bool] = False
    plot_lower_bound: ClassVar[float | None] = 0.0
    plot_upper_bound: ClassVar[float | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.key:
            cls.plot_legend_name = cls.key

    def __init__(
        self, min_depth: float = 1e-3, max_depth: float | None = 10.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if self.key not in METRIC_KEYS:
            raise TypeError(
                f"{type(self).__name__}.key must be one of {METRIC_KEYS}, got {self.key!r}"
            )
        self.min_depth, self.max_depth = _check_depth_range(min_depth, max_depth)
        self._sum_state = f"{self.key}_sum_value"
        self._count_state = f"{self.key}_n_images"
        self.add_state(
            self._sum_state, default=torch.tensor(0.0, dtype=_COMPUTE_DTYPE), dist_reduce_fx="sum"
        )
        self.add_state(
            self._count_state, default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum"
        )

    @property
    def sum_value(self) -> Tensor:
        """Sum over the images seen of the per-image metric value."""
        return getattr(self, self._sum_state)

    @property
    def n_images(self) -> Tensor:
        """Number of images seen that had at least one valid pixel."""
        return getattr(self, self._count_state)

    def update(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Add a batch: depths in metres, ``(B, H, W)`` or ``(B, 1, H, W)``; optional mask."""
        out = per_image_errors(
            pred,
            target,
            mask,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            keys=(self.key,),
        )
        valid = out["valid"]
        batch_sum = torch.where(valid, out[self.key], 0.0).sum()
        state = self.sum_value
        setattr(self, self._sum_state, state + batch_sum.to(device=state.device, dtype=state.dtype))
        count = self.n_images
        setattr(self, self._count_state, count + valid.sum().to(count.device))

    def compute(self) -> Tensor:
        """Mean over images of the per-image value; ``nan`` (with a warning) if none was seen."""
        total, count = self.sum_value, self.n_images
        if int(count) == 0:
            rank_zero_warn(
                f"{type(self).__name__} ({self.key}): no image with a valid pixel was seen; "
                "returning nan.",
                UserWarning,
            )
            return torch.full((), float("nan"), dtype=total.dtype, device=total.device)
        return total / count

    def extra_repr(self) -> str:
        return f"min_depth={self.min_depth}, max_depth={self.max_depth}"


class Delta1(PerImageDepthMetric):
    """Threshold accuracy ``delta1 = mean(max(gt/pred, pred/gt) < 1.25)``, averaged over images.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> pred = torch.tensor([[[1.1, 2.0], [5.0, 4.2]]])   # ratios 1.1, 1, 1.25, 1.905
        >>> m = Delta1()
        >>> m.update(pred, gt)
        >>> m.compute()
        tensor(0.5000, dtype=torch.float64)
    """

    key = "delta1"
    higher_is_better = True
    plot_upper_bound = 1.0


class Delta2(PerImageDepthMetric):
    """Threshold accuracy ``delta2 = mean(max(gt/pred, pred/gt) < 1.25**2)``, averaged over images.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> pred = torch.tensor([[[1.1, 2.0], [5.0, 4.2]]])   # ratios 1.1, 1, 1.25, 1.905
        >>> m = Delta2()
        >>> m.update(pred, gt)
        >>> m.compute()
        tensor(0.7500, dtype=torch.float64)
    """

    key = "delta2"
    higher_is_better = True
    plot_upper_bound = 1.0


class Delta3(PerImageDepthMetric):
    """Threshold accuracy ``delta3 = mean(max(gt/pred, pred/gt) < 1.25**3)``, averaged over images.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> pred = torch.tensor([[[1.1, 2.0], [5.0, 4.2]]])   # ratios 1.1, 1, 1.25, 1.905
        >>> m = Delta3()
        >>> m.update(pred, gt)
        >>> m.compute()
        tensor(1., dtype=torch.float64)
    """

    key = "delta3"
    higher_is_better = True
    plot_upper_bound = 1.0


class AbsRel(PerImageDepthMetric):
    """Absolute relative error ``abs_rel = mean(|gt - pred| / gt)``, averaged over images.

    Example (the second image has no valid pixel and is skipped):
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]], [[0.0, 0.0], [0.0, 0.0]]])
        >>> pred = torch.tensor([[[1.5, 2.0], [3.0, 8.0]], [[1.0, 1.0], [1.0, 1.0]]])
        >>> m = AbsRel()
        >>> m.update(pred, gt)
        >>> m.compute()   # (0.5 + 0 + 0.25 + 0) / 4
        tensor(0.1875, dtype=torch.float64)
        >>> int(m.n_images)
        1
    """

    key = "abs_rel"


class SqRel(PerImageDepthMetric):
    """Squared relative error ``sq_rel = mean((gt - pred)**2 / gt)``, averaged over images.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> pred = torch.tensor([[[1.5, 2.0], [3.0, 8.0]]])
        >>> m = SqRel()
        >>> m.update(pred, gt)
        >>> m.compute()   # (0.25 + 0 + 0.25 + 0) / 4
        tensor(0.1250, dtype=torch.float64)
    """

    key = "sq_rel"


class RMSE(PerImageDepthMetric):
    """Root mean squared error ``rmse = sqrt(mean((gt - pred)**2))`` (metres), averaged over images.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> pred = torch.tensor([[[2.0, 3.0], [5.0, 9.0]]])
        >>> m = RMSE()
        >>> m.update(pred, gt)
        >>> m.compute()
        tensor(1., dtype=torch.float64)
    """

    key = "rmse"


class RMSELog(PerImageDepthMetric):
    """Log RMSE ``rmse_log = sqrt(mean((log gt - log pred)**2))``, averaged over images.

    Example (a prediction twice the ground truth everywhere gives ``log 2``):
        >>> gt = torch.tensor([[[0.5, 1.0], [2.0, 4.0]]])
        >>> m = RMSELog()
        >>> m.update(2 * gt, gt)
        >>> m.compute()
        tensor(0.6931, dtype=torch.float64)
    """

    key = "rmse_log"


class SIRMSELog(PerImageDepthMetric):
    """Scale-invariant log RMSE, Eigen et al. 2014's "RMSE (log, scale inv.)".

    ``si_rmse_log = sqrt(mean(e**2) - mean(e)**2)`` with ``e = log pred - log gt``, averaged over
    images; it is the per-image standard deviation of ``e``, so a global rescaling of the
    prediction leaves it unchanged (when clipping does not interfere).
    BTS / AdaBins / ZoeDepth report ``silog = 100 * si_rmse_log``.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> pred = torch.tensor([[[1.0, 1.0], [1.0, 1.0]]])  # e = 0, -log 2, -2 log 2, -3 log 2
        >>> m = SIRMSELog()
        >>> m.update(pred, gt)
        >>> m.compute()   # log(2) * std([0, 1, 2, 3]) = 0.6931 * 1.1180
        tensor(0.7750, dtype=torch.float64)
        >>> m.reset()
        >>> m.update(1.2 * gt, gt)
        >>> round(float(m.compute()), 12)   # a pure scale error costs nothing
        0.0
    """

    key = "si_rmse_log"


class Log10(PerImageDepthMetric):
    """Mean absolute log10 error ``log10 = mean(|log10 gt - log10 pred|)``, averaged over images.

    Example:
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 8.0]]])
        >>> m = Log10(max_depth=None)   # no upper cap: 80 m is not clipped to 10 m
        >>> m.update(10 * gt, gt)
        >>> m.compute()
        tensor(1., dtype=torch.float64)
        >>> m = Log10()                 # default cap 10 m: 20, 40, 80 m are clipped to 10 m
        >>> m.update(10 * gt, gt)
        >>> m.compute()   # (1 + log10(5) + log10(2.5) + log10(1.25)) / 4
        tensor(0.5485, dtype=torch.float64)
    """

    key = "log10"


#: Metric class of each key.
METRIC_CLASSES: dict[str, type[PerImageDepthMetric]] = {
    cls.key: cls for cls in (Delta1, Delta2, Delta3, AbsRel, SqRel, RMSE, RMSELog, SIRMSELog, Log10)
}
assert tuple(METRIC_CLASSES) == METRIC_KEYS
assert all(cls.higher_is_better == HIGHER_IS_BETTER[k] for k, cls in METRIC_CLASSES.items())


def depth_metrics(
    prefix: str | None = None,
    min_depth: float = 1e-3,
    max_depth: float | None = 10.0,
    keys: Iterable[str] | None = None,
    **metric_kwargs: Any,
) -> MetricCollection:
    """All nine depth metrics in a ``MetricCollection``, keyed by :data:`METRIC_KEYS`.

    Args:
        prefix: prepended to every key, e.g. ``"val/"`` gives ``"val/delta1"``, ...
        min_depth: lower depth cap in metres, passed to every metric.
        max_depth: upper depth cap in metres (``None``: no upper cap), passed to every metric.
        keys: a subset of :data:`METRIC_KEYS` (default: all nine).
        metric_kwargs: further :class:`torchmetrics.Metric` keyword arguments for every metric.

    The collection is built with ``compute_groups=False``: each metric keeps its own uniquely
    named states, so there is nothing to share and nothing can be merged by mistake.
    torchmetrics sorts a collection's keys alphabetically; use :data:`METRIC_KEYS` for the
    order papers report.

    Example:
        >>> metrics = depth_metrics(prefix="val/")
        >>> gt = torch.tensor([[[0.5, 1.0], [2.0, 4.0]]])
        >>> metrics.update(2 * gt, gt)
        >>> out = metrics.compute()
        >>> sorted(out) == sorted("val/" + k for k in METRIC_KEYS)
        True
        >>> round(float(out["val/abs_rel"]), 4), round(float(out["val/delta3"]), 4)
        (1.0, 0.0)
    """
    return MetricCollection(
        {
            key: METRIC_CLASSES[key](min_depth=min_depth, max_depth=max_depth, **metric_kwargs)
            for key in (METRIC_KEYS if keys is None else tuple(keys))
        },
        prefix=prefix,
        compute_groups=False,
    )
