"""Depth metrics (Eigen et al. 2014's error measures): functional pass and torchmetrics classes."""

from depth_lightning.evaluation.metrics.depth import (
    METRIC_CLASSES,
    RMSE,
    AbsRel,
    Delta1,
    Delta2,
    Delta3,
    DepthMetrics,
    Log10,
    PerImageDepthMetric,
    RMSELog,
    SIRMSELog,
    SqRel,
    depth_metrics,
)
from depth_lightning.evaluation.metrics.functional import (
    HIGHER_IS_BETTER,
    METRIC_KEYS,
    per_image_errors,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "METRIC_CLASSES",
    "METRIC_KEYS",
    "RMSE",
    "AbsRel",
    "Delta1",
    "Delta2",
    "Delta3",
    "DepthMetrics",
    "Log10",
    "PerImageDepthMetric",
    "RMSELog",
    "SIRMSELog",
    "SqRel",
    "depth_metrics",
    "per_image_errors",
]
