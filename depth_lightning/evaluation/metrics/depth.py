"""Depth metrics as torchmetrics ``Metric`` classes: one single-pass metric and nine views.

:class:`DepthMetrics` holds only summed states, ``<key>_sum_value`` per metric and
``valid_images``, all reduced with ``dist_reduce_fx="sum"``, so under DDP the result equals the
single-process result over the same images exactly (up to float64 summation order). Its
``update`` makes one pass over the pixels for all its keys
(:func:`~depth_lightning.evaluation.metrics.functional._depth_metrics_update`); ``compute``
returns a dict.
The nine classes (:class:`Delta1` ... :class:`Log10`) are views of it restricted to one key,
whose ``compute`` returns a scalar, for ``MetricCollection`` users and Lightning's ``log``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import rank_zero_warn

from depth_lightning.evaluation.metrics.functional import (
    METRIC_KEYS,
    _check_depth_range,
    _depth_metrics_compute,
    _depth_metrics_update,
)

_STATE_DTYPE = torch.float64


class DepthMetrics(Metric):
    """The depth metrics of ``keys`` (default: all nine), averaged over images, in one pass.

    Args:
        keys: a subset of :data:`METRIC_KEYS`, in the order ``compute`` returns them.
        prefix: prepended to every key of ``compute``'s dict, e.g. ``"val/"``.
        min_depth: lower depth cap in metres (> 0), default 1e-3.
        max_depth: upper depth cap in metres, default 10.0; ``None`` for no upper cap.
        kwargs: passed on to :class:`torchmetrics.Metric` (``sync_on_compute``, ...).

    Example:
        >>> m = DepthMetrics(keys=("abs_rel", "si_rmse_log"), prefix="val/")
        >>> gt = torch.tensor([[[1.0, 2.0], [4.0, 0.0]]])          # the 0 is a hole
        >>> m.update(2 * gt, gt)
        >>> {k: round(float(v), 6) for k, v in m.compute().items()}
        {'val/abs_rel': 1.0, 'val/si_rmse_log': 0.0}
    """

    is_differentiable: ClassVar[bool] = False
    higher_is_better: ClassVar[bool | None] = None
    full_state_update: ClassVar[bool] = False

    def __init__(self, keys: Iterable[str] | None = None, prefix: str | None = None,
                 min_depth: float = 1e-3, max_depth: float | None = 10.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric_keys = tuple(METRIC_KEYS if keys is None else keys)
        unknown = [k for k in self.metric_keys if k not in METRIC_KEYS]
        if unknown or not self.metric_keys:
            raise ValueError(f"unknown metric key(s) {unknown}; choose from {list(METRIC_KEYS)}")
        self.prefix = prefix or ""
        self.min_depth, self.max_depth = _check_depth_range(min_depth, max_depth)
        for key in self.metric_keys:
            self.add_state(f"{key}_sum_value", default=torch.tensor(0.0, dtype=_STATE_DTYPE),
                           dist_reduce_fx="sum")
        self.add_state(self._count_name, default=torch.tensor(0, dtype=torch.long),
                       dist_reduce_fx="sum")

    @property
    def _count_name(self) -> str:
        return "valid_images"

    @property
    def n_images(self) -> Tensor:
        """Number of images seen that had at least one valid pixel."""
        return getattr(self, self._count_name)

    def update(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Add a batch: depths in metres, ``(B, H, W)`` or ``(B, 1, H, W)``; optional mask."""
        sums, n = _depth_metrics_update(pred, target, mask, self.min_depth, self.max_depth,
                                        self.metric_keys)
        for key, value in sums.items():
            state = getattr(self, f"{key}_sum_value")
            setattr(self, f"{key}_sum_value", state + value.to(state.device, state.dtype))
        setattr(self, self._count_name, self.n_images + n.to(self.n_images.device))

    def compute(self) -> dict[str, Tensor]:
        """``{prefix + key: mean over images}``, float64; ``nan`` (with a warning) if no image
        with a valid pixel was seen."""
        if int(self.n_images) == 0:
            keys = ", ".join(self.metric_keys)
            rank_zero_warn(f"{type(self).__name__} ({keys}): no image with a valid pixel was "
                           "seen; returning nan.", UserWarning)
        sums = {k: getattr(self, f"{k}_sum_value") for k in self.metric_keys}
        return {self.prefix + k: v for k, v in _depth_metrics_compute(sums, self.n_images).items()}


class PerImageDepthMetric(DepthMetrics):
    """A view of :class:`DepthMetrics` restricted to one key, whose ``compute`` returns a
    scalar. Subclasses set :attr:`key` and the plotting / ordering attributes; states are
    ``<key>_sum_value`` and ``<key>_n_images`` (unique per key, so a ``MetricCollection`` with
    ``compute_groups=True`` never merges two different metrics).

    Args:
        min_depth: lower depth cap in metres (> 0), default 1e-3.
        max_depth: upper depth cap in metres, default 10.0; ``None`` for no upper cap.
        kwargs: passed on to :class:`torchmetrics.Metric`.
    """

    key: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = False
    plot_lower_bound: ClassVar[float | None] = 0.0
    plot_upper_bound: ClassVar[float | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.key:
            cls.plot_legend_name = cls.key

    def __init__(self, min_depth: float = 1e-3, max_depth: float | None = 10.0,
                 **kwargs: Any) -> None:
        if self.key not in METRIC_KEYS:
            raise TypeError(f"{type(self).__name__}.key must be one of {METRIC_KEYS}, got "
                            f"{self.key!r}")
        super().__init__(keys=(self.key,), min_depth=min_depth, max_depth=max_depth, **kwargs)

    @property
    def _count_name(self) -> str:
        return f"{self.key}_n_images"

    @property
    def sum_value(self) -> Tensor:
        """Sum over the images seen of the per-image metric value."""
        return getattr(self, f"{self.key}_sum_value")

    def compute(self) -> Tensor:
        """Mean over images of the per-image value; ``nan`` (with a warning) if none was seen."""
        return super().compute()[self.key]


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


def depth_metrics(
    prefix: str | None = None,
    min_depth: float = 1e-3,
    max_depth: float | None = 10.0,
    keys: Iterable[str] | None = None,
    **metric_kwargs: Any,
) -> DepthMetrics:
    """The depth metrics (all nine, or ``keys``) as one single-pass :class:`DepthMetrics`.

    Args:
        prefix: prepended to every key, e.g. ``"val/"`` gives ``"val/delta1"``, ...
        min_depth: lower depth cap in metres.
        max_depth: upper depth cap in metres (``None``: no upper cap).
        keys: a subset of :data:`METRIC_KEYS` (default: all nine, in the order papers report).
        metric_kwargs: further :class:`torchmetrics.Metric` keyword arguments.

    Example:
        >>> metrics = depth_metrics(prefix="val/")
        >>> gt = torch.tensor([[[0.5, 1.0], [2.0, 4.0]]])
        >>> metrics.update(2 * gt, gt)
        >>> out = metrics.compute()
        >>> list(out) == ["val/" + k for k in METRIC_KEYS]
        True
        >>> round(float(out["val/abs_rel"]), 4), round(float(out["val/delta3"]), 4)
        (1.0, 0.0)
    """
    return DepthMetrics(keys=keys, prefix=prefix, min_depth=min_depth, max_depth=max_depth,
                        **metric_kwargs)
