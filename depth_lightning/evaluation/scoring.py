"""One scoring path: a predictor on batches of frames under a protocol.

A *predictor* maps a batch to depth maps in metres at the network's output size, one per
column: a trained stage gives its own map and those of the stages it builds on
(:class:`StagePredictor`), the paper's Mean baseline the per-pixel mean of the training depth
maps (:class:`MeanPredictor`), a constant per frame the reference of sim-to-real ratios
(:class:`ConstantPredictor`). A *batch* is a dict with ``image`` (B,3,228,304) uint8 (the
network input), ``depth`` (the ground truth at the protocol's resolution), optionally
``index`` and ``rgb`` (the frame shown in panels). The *protocol*
(depth_lightning.evaluation.protocols) says how a prediction meets the ground truth.
:func:`update_metrics` is the per-batch step that validation during training calls;
:func:`score` runs it over batches for the final metrics.json, the Mean baseline and
`evaluate`; :func:`panel_rows` draws from the same maps.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from depth_lightning.evaluation.metrics import DepthMetrics
from depth_lightning.evaluation.metrics.boundary import DepthBoundaryMetrics
from depth_lightning.evaluation.protocols import EvalProtocol
from depth_lightning.geometry import NYU, FrameGeometry


class StagePredictor:
    """A trained stage (depth_lightning.models.stage.DepthStage) as a predictor: ``columns`` are its
    stages' names (default: all of them, e.g. coarse and fine), in float32 metres, under bf16
    autocast when `precision` is a bf16 setting."""

    def __init__(self, module: Any, precision: str | int | None = None,
                 columns: Sequence[str] | None = None) -> None:
        self.module = module
        self.columns = tuple(columns or module.columns)
        self.bf16 = str(precision).startswith("bf16")

    @torch.inference_mode()
    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        device = next(self.module.parameters()).device
        images = batch["image"].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logs = self.module.log_depths(self.module.prepare(images))
        return {c: torch.exp(logs[c].float()) for c in self.columns}


class MeanPredictor:
    """The paper's Mean baseline: the same depth map (1,55,74) in metres for every frame."""

    columns = ("mean",)

    def __init__(self, mean_depth: Tensor) -> None:
        self.mean_depth = mean_depth.reshape(1, 1, *mean_depth.shape[-2:])

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        n = batch["depth"].shape[0]
        return {"mean": self.mean_depth.to(batch["depth"].device).expand(n, -1, -1, -1)
                .contiguous()}


class ConstantPredictor:
    """One depth per frame, everywhere: the median of the frame's valid ground truth.

    Its scale-invariant error is the spread of the frame's own log depth (no prediction can
    be worse while knowing nothing of the image), the reference of sim-to-real ratios; the
    median makes its scale-dependent metrics those of a median-scaled constant."""

    columns = ("constant",)

    def __init__(self, size: tuple[int, int] = NYU.output) -> None:
        self.size = tuple(size)  # the map it gives: the chain's output size

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        target = batch["depth"]
        flat = target.reshape(target.shape[0], -1).float()
        flat = torch.where(torch.isfinite(flat) & (flat > 0), flat, torch.nan)
        median = torch.nanmedian(flat, dim=1).values.nan_to_num(1.0)  # no valid pixel: 1 m
        return {"constant": median.reshape(-1, 1, 1, 1).expand(-1, 1, *self.size).contiguous()}


def _resampled(pred: Tensor, target: Tensor, mask: Tensor, protocol: EvalProtocol,
               geometry: FrameGeometry) -> Tensor:
    """A prediction at the chain's output -> at the ground truth's size, aligned and clamped as
    the protocol says."""
    out = protocol.resample(pred.to(target.device), tuple(target.shape[-2:]), geometry)
    return protocol.finish(out, target, mask)


def update_metrics(metrics: Mapping[str, Any], preds: Mapping[str, Tensor],
                   batch: Mapping[str, Any], protocol: EvalProtocol,
                   geometry: FrameGeometry = NYU) -> None:
    """Add one batch to each column's metrics: the column's prediction brought to the
    protocol's resolution (and aligned, if it says so), scored on the protocol's region and
    valid pixels."""
    target = batch["depth"]
    top, bottom, left, right = protocol.region_for(tuple(target.shape[-2:]), geometry)
    region = (..., slice(top, bottom), slice(left, right))  # outside it the mask is False
    mask = protocol.valid_mask(target, geometry)
    for column, metric in metrics.items():
        pred = _resampled(preds[column], target, mask, protocol, geometry)
        metric.update(pred[region], target[region], mask[region])


def panel_rows(batch: Mapping[str, Any], preds: Mapping[str, Tensor], protocol: EvalProtocol,
               positions: Iterable[int], geometry: FrameGeometry = NYU) -> list[dict]:
    """Panel rows (RGB | ground truth | each column) of the batch's frames at `positions`,
    cropped to the protocol's region; ground truth is NaN where it is not scored."""
    target = batch["depth"]
    hw = tuple(target.shape[-2:])
    top, bottom, left, right = protocol.region_for(hw, geometry)
    mask = protocol.valid_mask(target, geometry)
    rows = []
    for j in positions:
        rgb = batch.get("rgb")
        rgb = (np.asarray(rgb[j]) if rgb is not None
               else batch["image"][j].permute(1, 2, 0).cpu().numpy())
        gt = torch.where(mask[j], target[j], torch.nan).reshape(target.shape[-2:])
        row = {"rgb": rgb[top:bottom, left:right] if rgb.shape[:2] == hw else rgb,
               "gt": gt[top:bottom, left:right].cpu().numpy()}
        for column, pred in preds.items():
            full = _resampled(pred[j:j + 1], target[j:j + 1], mask[j:j + 1], protocol, geometry)
            row[column] = full[0, top:bottom, left:right].cpu().numpy()
        index = batch.get("index")
        row["label"] = f"frame {int(index[j])}" if index is not None else f"frame {j}"
        rows.append(row)
    return rows


def score(predictors: Sequence[Any], batches: Iterable[Mapping[str, Any]], protocol: EvalProtocol,
          device: torch.device | str = "cpu", keep: Collection[int] = (),
          progress: Any = None, geometry: FrameGeometry = NYU
          ) -> tuple[dict[str, dict[str, float]], list[dict]]:
    """Score `predictors` on `batches` with `protocol`: the nine metrics and the depth-boundary
    precision, recall and F (at the protocol's resolution) per column, and the panel rows of the
    frames at positions `keep` (counted over all batches).

    `progress` is called with the number of frames of each batch scored (a progress bar);
    `geometry` is the frame chain the predictions come from.
    """
    device = torch.device(device)
    caps = {"min_depth": protocol.min_depth, "max_depth": protocol.max_depth,
            "sync_on_compute": False}  # this process sees every frame
    columns = [c for p in predictors for c in p.columns]
    metrics = {c: DepthMetrics(**caps).to(device) for c in columns}
    edges = {c: DepthBoundaryMetrics(**caps).to(device) for c in columns}
    panels: list[dict] = []
    start = 0
    for batch in batches:
        batch = {k: v.to(device) if isinstance(v, Tensor) else v for k, v in batch.items()}
        preds: dict[str, Tensor] = {}
        for predictor in predictors:
            preds.update(predictor(batch))
        update_metrics(metrics, preds, batch, protocol, geometry)
        update_metrics(edges, preds, batch, protocol, geometry)
        n = batch["depth"].shape[0]
        wanted = [p - start for p in keep if start <= p < start + n]
        panels += panel_rows(batch, preds, protocol, wanted, geometry)
        start += n
        if progress is not None:
            progress(n)
    return {c: {k: float(v) for m in (metrics[c], edges[c]) for k, v in m.compute().items()}
            for c in columns}, panels
