"""Depth-boundary precision, recall and F (after Koch et al., ECCV-W 2018, iBims-1): the tenth
metric, in the torchmetrics shape of the nine (a functional pass to summed sufficient
statistics, a ``Metric`` holding only those sums).

Edges are depth discontinuities: between two 4-adjacent pixels p, q that are both valid in the
ground truth, there is an edge when their depths differ by more than `threshold` relative to
the nearer one, and it is marked on the nearer (occluding) pixel::

    edge(p)   = exists q in N4(p), valid(p) & valid(q):  D(q) / D(p) > 1 + threshold
    near(A,B) = A & (B dilated by a (2r+1)x(2r+1) square)  # within r pixels (chessboard)
    precision = sum near(E_pred, E_gt) / sum E_pred         # predicted edges that are true
    recall    = sum near(E_gt, E_pred) / sum E_gt           # true edges that are found
    edge_f1   = 2 P R / (P + R)

with E_gt from the ground truth, E_pred from the prediction on the ground truth's valid pixels
(so Kinect holes make no edges). The counts are summed over every image before dividing (one
precision for the whole set: an image without edges needs no special case). Koch et al. score
Canny edges by truncated distances (accuracy, completeness); thresholded relative depth steps
matched within r pixels are the precision / recall form of the same question.

It is not part of :class:`~depth_lightning.evaluation.metrics.DepthMetrics` (metrics.json's nine
keys): its threshold and radius are in pixels of the grid it is given, so its value depends on the
resolution a protocol scores at, unlike the nine per-pixel means.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.nn import functional as F
from torchmetrics import Metric

from depth_lightning.evaluation.metrics.functional import _check_depth_range, _checked_inputs

#: Keys of :class:`DepthBoundaryMetrics`.compute, in order.
BOUNDARY_KEYS: tuple[str, ...] = ("edge_precision", "edge_recall", "edge_f1")
_COUNTS = ("pred_edges", "pred_matched", "gt_edges", "gt_matched")


def depth_edges(depth: Tensor, valid: Tensor, threshold: float = 0.1) -> Tensor:
    """Boolean (B,H,W) map of the pixels on the near side of a relative depth step larger
    than `threshold` to a valid 4-neighbour (both pixels valid).

    Example (a 1 m box in front of a 2 m wall; the 1.05 m pixel is a slope, not an edge):
        >>> d = torch.tensor([[[1.0, 1.05, 2.0, 2.0]]])
        >>> depth_edges(d, d > 0).int()
        tensor([[[0, 1, 0, 0]]], dtype=torch.int32)
    """
    ln = torch.log(torch.where(valid, depth, 1.0).double())
    jump = torch.log1p(torch.tensor(float(threshold), dtype=torch.float64))
    edges = torch.zeros_like(valid)
    for dim in (-1, -2):  # horizontal, then vertical neighbours
        n = valid.shape[dim] - 1
        a, b = ln.narrow(dim, 0, n), ln.narrow(dim, 1, n)
        both = valid.narrow(dim, 0, n) & valid.narrow(dim, 1, n)
        step = both & ((a - b).abs() > jump)
        edges.narrow(dim, 0, n).logical_or_(step & (a < b))  # the nearer pixel is the edge
        edges.narrow(dim, 1, n).logical_or_(step & (b < a))
    return edges


def _near(edges: Tensor, other: Tensor, radius: int) -> Tensor:
    """`edges` pixels with an `other` pixel within `radius` (chessboard distance)."""
    if radius == 0:
        return edges & other
    grown = F.max_pool2d(other.unsqueeze(1).float(), 2 * radius + 1, stride=1, padding=radius)
    return edges & (grown[:, 0] > 0)


def _boundary_update(pred: Tensor, target: Tensor, mask: Tensor | None = None,
                     min_depth: float = 1e-3, max_depth: float | None = 10.0,
                     threshold: float = 0.1, radius: int = 2) -> dict[str, Tensor]:
    """Sufficient statistics of a batch: int64 counts of predicted edges, of those near a true
    edge, of true edges and of those near a predicted one. Counts of batches add up.

    Example (the prediction's edge is one pixel off: found within radius 1, not 0):
        >>> gt = torch.tensor([[[1.0, 1.0, 3.0, 3.0]]])
        >>> pred = torch.tensor([[[1.0, 3.0, 3.0, 3.0]]])
        >>> {k: int(v) for k, v in _boundary_update(pred, gt, radius=1).items()}
        {'pred_edges': 1, 'pred_matched': 1, 'gt_edges': 1, 'gt_matched': 1}
        >>> int(_boundary_update(pred, gt, radius=0)["pred_matched"])
        0
    """
    lo, hi = _check_depth_range(min_depth, max_depth)
    pred, target, mask = _checked_inputs(pred, target, mask)
    gt = target.double()
    valid = mask.to(gt.device) & (gt > lo) & (torch.isfinite(gt) if hi is None else gt < hi)
    pr = torch.nan_to_num(pred.double(), nan=lo, posinf=hi or lo).clamp(min=lo, max=hi)
    e_gt = depth_edges(gt, valid, threshold)
    e_pred = depth_edges(pr, valid, threshold)
    return {"pred_edges": e_pred.sum(), "pred_matched": _near(e_pred, e_gt, radius).sum(),
            "gt_edges": e_gt.sum(), "gt_matched": _near(e_gt, e_pred, radius).sum()}


def _boundary_compute(counts: dict[str, Tensor]) -> dict[str, Tensor]:
    """Precision, recall and F from summed counts (nan where a count it divides by is 0).

    Example:
        >>> c = {"pred_edges": torch.tensor(4), "pred_matched": torch.tensor(3),
        ...      "gt_edges": torch.tensor(6), "gt_matched": torch.tensor(3)}
        >>> {k: round(float(v), 4) for k, v in _boundary_compute(c).items()}
        {'edge_precision': 0.75, 'edge_recall': 0.5, 'edge_f1': 0.6}
    """
    f64 = {k: v.double() for k, v in counts.items()}
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=f64["gt_edges"].device)
    p = torch.where(f64["pred_edges"] > 0, f64["pred_matched"] / f64["pred_edges"], nan)
    r = torch.where(f64["gt_edges"] > 0, f64["gt_matched"] / f64["gt_edges"], nan)
    f1 = torch.where(p + r > 0, 2 * p * r / (p + r), torch.zeros_like(p))
    return {"edge_precision": p, "edge_recall": r, "edge_f1": torch.where(p.isnan() | r.isnan(),
                                                                           nan, f1)}


class DepthBoundaryMetrics(Metric):
    """Depth-boundary precision, recall and F over every image seen (formula: module doc).

    Args:
        threshold: relative depth step between neighbours that makes an edge (0.1 = 10 %).
        radius: how many pixels (chessboard distance) an edge may be off and still match.
        prefix: prepended to every key of ``compute``'s dict, e.g. ``"val/"``.
        min_depth, max_depth: depth caps in metres, as for the nine metrics.

    Example (a 2 m step found one pixel late: matched within 1 pixel):
        >>> m = DepthBoundaryMetrics(radius=1)
        >>> gt = torch.tensor([[[1.0, 1.0, 3.0, 3.0], [1.0, 1.0, 3.0, 3.0]]])
        >>> m.update(torch.tensor([[[1.0, 3.0, 3.0, 3.0], [1.0, 1.0, 1.0, 3.0]]]), gt)
        >>> {k: round(float(v), 4) for k, v in m.compute().items()}
        {'edge_precision': 1.0, 'edge_recall': 1.0, 'edge_f1': 1.0}
    """

    is_differentiable: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True
    full_state_update: ClassVar[bool] = False

    def __init__(self, threshold: float = 0.1, radius: int = 2, prefix: str | None = None,
                 min_depth: float = 1e-3, max_depth: float | None = 10.0,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (isinstance(radius, int) and radius >= 0):
            raise ValueError(f"radius must be a whole number >= 0, got {radius!r}")
        if not float(threshold) > 0:
            raise ValueError(f"threshold must be a number > 0, got {threshold!r}")
        self.threshold, self.radius = float(threshold), radius
        self.prefix = prefix or ""
        self.min_depth, self.max_depth = _check_depth_range(min_depth, max_depth)
        for name in _COUNTS:
            self.add_state(f"edge_{name}", default=torch.tensor(0, dtype=torch.long),
                           dist_reduce_fx="sum")

    def update(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        """Add a batch: depths in metres, ``(B, H, W)`` or ``(B, 1, H, W)``; optional mask."""
        counts = _boundary_update(pred, target, mask, self.min_depth, self.max_depth,
                                  self.threshold, self.radius)
        for name, value in counts.items():
            state = getattr(self, f"edge_{name}")
            setattr(self, f"edge_{name}", state + value.to(state.device))

    def compute(self) -> dict[str, Tensor]:
        """``{prefix + key: value}`` for :data:`BOUNDARY_KEYS`, float64."""
        counts = {name: getattr(self, f"edge_{name}") for name in _COUNTS}
        return {self.prefix + k: v for k, v in _boundary_compute(counts).items()}


class EdgeF1(DepthBoundaryMetrics):
    """The tenth metric class: depth-boundary F score (:class:`DepthBoundaryMetrics`'s
    ``edge_f1``) as a scalar, for ``MetricCollection`` users and Lightning's ``log``.

    Example (half the true edges found, every predicted edge true: P 1, R 0.5, F 2/3):
        >>> gt = torch.tensor([[[1.0, 3.0], [1.0, 3.0]]])
        >>> m = EdgeF1(radius=0)
        >>> m.update(torch.tensor([[[1.0, 3.0], [3.0, 3.0]]]), gt)
        >>> round(float(m.compute()), 4)
        0.6667
    """

    plot_lower_bound: ClassVar[float] = 0.0
    plot_upper_bound: ClassVar[float] = 1.0

    def compute(self) -> Tensor:  # type: ignore[override]
        return super().compute()[self.prefix + "edge_f1"]
