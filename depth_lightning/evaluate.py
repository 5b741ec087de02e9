"""Evaluate: `python -m depth_lightning.evaluate ckpt_path=PATH [data=nyu_v2] [eval=bts]`.

Scores a trained checkpoint on the validation frames of `data` (NYU V2: the 654 official test
frames) at full resolution, with the protocol chosen in the `eval` group (depth_lightning/
protocols.py): each 640x480 frame is downsampled to 320x240 (2x2 box mean, as the training cache
does) and centre-cropped to 304x228; the 55x74 prediction is brought back to 640x480 and scored
there against the protocol's ground truth. Columns, as in Eigen et al. 2014 Table 1:

* Mean: the per-pixel mean of the training split's depth maps, upsampled the same way;
* Coarse: the coarse network (of a fine checkpoint: its frozen coarse network);
* Coarse+Fine: the fine network's output (fine checkpoints only).

Writes into the run folder (outputs/evaluate/runs/<time>_<id>/): metrics.json
`{"mean": {...}, "coarse": {...}, "fine": {...}}` with the nine metrics, table.md (the table
printed on stdout) and figure3.png (RGB | ground truth | coarse | coarse+fine for a few frames).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from depth_lightning import resolvers  # noqa: F401  (registers ${dl_uid:} before composing)
from depth_lightning.entry import required, resolve_device, run_task, user_path, write_text_atomic
from depth_lightning.errors import DepthLightningError
from depth_lightning.metrics import METRIC_KEYS, per_image_errors
from depth_lightning.protocols import Protocol, crop_input
from depth_lightning.stages import DepthStage, FineStage, load_stage

log = logging.getLogger("depth_lightning")

# The fine stage keeps its frozen coarse network in eval mode on purpose.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")

COLUMNS = {"mean": "Mean", "coarse": "Coarse", "fine": "Coarse+Fine"}
# Eigen et al. 2014 Table 1 row names, in METRIC_KEYS order (log10 is not in that table).
ROW_NAMES = {
    "delta1": "threshold δ < 1.25 (higher is better)",
    "delta2": "threshold δ < 1.25² (higher is better)",
    "delta3": "threshold δ < 1.25³ (higher is better)",
    "abs_rel": "abs relative difference",
    "sq_rel": "sqr relative difference",
    "rmse": "RMSE (linear)",
    "rmse_log": "RMSE (log)",
    "si_rmse_log": "RMSE (log, scale inv.)",
    "log10": "log10 error",
}


@torch.inference_mode()
def predict_log_depth(module: DepthStage, images: Tensor) -> dict[str, Tensor]:
    """uint8 images (B,3,228,304) -> {"coarse": log depth (B,1,55,74), "fine": ...}; "fine"
    only for a fine-stage module. Always float32, whatever the module's precision."""
    if isinstance(module, FineStage):
        coarse, fine = module.forward_both(images)
        return {"coarse": coarse.float(), "fine": fine.float()}
    return {"coarse": module(images).float()}


# -- evaluation -------------------------------------------------------------------------------
class ImageMeans:
    """The nine metrics averaged over images, as the metric classes of metrics.py define them.

    One `per_image_errors` pass computes all nine at once; the MetricCollection would redo the
    per-pixel work once per metric (about 9x slower on 640x480 frames).
    """

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.sums = dict.fromkeys(METRIC_KEYS, 0.0)
        self.count = 0

    def update(self, pred: Tensor, target: Tensor, mask: Tensor) -> None:
        out = per_image_errors(pred, target, mask, min_depth=self.protocol.min_depth,
                               max_depth=self.protocol.max_depth)
        valid = out["valid"]
        for k in METRIC_KEYS:
            self.sums[k] += float(torch.where(valid, out[k], 0.0).sum())
        self.count += int(valid.sum())

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            return dict.fromkeys(METRIC_KEYS, math.nan)
        return {k: self.sums[k] / self.count for k in METRIC_KEYS}


def network_input(frame: dict) -> Tensor:
    """A 640x480 frame -> the uint8 (3,228,304) network input, exactly as in training: the
    cache's 2x2 box-mean downsample to 320x240, then the evaluation centre crop."""
    from depth_lightning.data.cache import downsample_frame

    image, _, _, _ = downsample_frame(frame)
    return crop_input(torch.from_numpy(image).permute(2, 0, 1)).contiguous()


def open_frames(dm: Any) -> tuple[Sequence[dict], str]:
    """The data module's frames at full resolution (640x480) and a name for them: the NYU
    layout file (SynthRooms, NYU V1 / V2), or the folder of RGB-D images (`data=folder`)."""
    if dm.source == "folder":
        from depth_lightning.data.folder import FolderRGBD

        frames = FolderRGBD(dm.root, dm.depth_scale, check=False)  # setup() checked the files
        return frames, str(frames.root)
    from depth_lightning.data.nyu import NYULabeled

    path = dm.resolve_path()
    return NYULabeled(path, version=dm.version), str(path)


def figure_positions(cfg: DictConfig, n_frames: int) -> list[int]:
    """Validation positions drawn in figure3.png: `figure.frames`, else `figure.n` spread
    evenly over the validation split."""
    fig_cfg = cfg.get("figure") or {}
    frames = fig_cfg.get("frames")
    if frames is not None:
        if isinstance(frames, int | str):
            frames = [frames]
        positions = []
        for f in frames:
            try:
                p = int(f)
            except (TypeError, ValueError):
                raise DepthLightningError(f"figure.frames: {f!r} is not a frame position") \
                    from None
            if not 0 <= p < n_frames:
                raise DepthLightningError(f"figure.frames: position {p} is out of range for "
                                          f"{n_frames} validation frames (0..{n_frames - 1})")
            positions.append(p)
        return list(dict.fromkeys(positions))
    n = int(fig_cfg.get("n", 6) or 0)
    if n <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n_frames - 1, min(n, n_frames))})


def evaluate_frames(
    module: DepthStage,
    frames: Sequence[dict],
    indices: Sequence[int],
    protocol: Protocol,
    mean_depth: Tensor,
    batch_size: int = 8,
    device: torch.device | str = "cpu",
    keep: Sequence[int] = (),
    progress: bool = True,
) -> tuple[dict[str, dict[str, float]], list[dict]]:
    """Score `module` and the mean map on frames[indices] with `protocol`.

    Returns the metrics per column ({"mean", "coarse"[, "fine"]}) and, for the positions in
    `keep`, the figure panels cropped to the scored region (ground truth NaN where not scored).
    """
    from rich.console import Console
    from rich.progress import Progress

    device = torch.device(device)
    module = module.to(device).eval()
    top, bottom, left, right = protocol.region
    mean_full = protocol.upsample_depth(mean_depth.reshape(1, 1, *mean_depth.shape[-2:])
                                        .to(device))
    columns = ["mean", "coarse"] + (["fine"] if isinstance(module, FineStage) else [])
    acc = {c: ImageMeans(protocol) for c in columns}
    keep = set(keep)
    panels: list[dict] = []
    with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task(f"evaluating {len(indices)} frames ({protocol.name})",
                            total=len(indices))
        for start in range(0, len(indices), batch_size):
            positions = range(start, min(start + batch_size, len(indices)))
            batch = [frames[int(indices[p])] for p in positions]
            images = torch.stack([network_input(f) for f in batch]).to(device)
            logs = predict_log_depth(module, images)
            preds = {c: protocol.upsample_depth(torch.exp(v)) for c, v in logs.items()}
            preds["mean"] = mean_full.expand(len(batch), -1, -1)
            target = torch.from_numpy(np.stack([f[protocol.frame_key] for f in batch]))
            target = target.to(device)
            mask = protocol.valid_mask(target)
            # Only the scored region: outside it the mask is False anyway.
            region = (..., slice(top, bottom), slice(left, right))
            for c in columns:
                acc[c].update(preds[c][region], target[region], mask[region])
            for j, p in enumerate(positions):
                if p in keep:
                    gt = torch.where(mask[j], target[j], torch.nan)[region[1:]]
                    panels.append({
                        "rgb": batch[j]["image"][top:bottom, left:right],
                        "gt": gt.cpu().numpy(),
                        **{c: preds[c][j][region[1:]].cpu().numpy() for c in logs},
                        "label": f"val {p} (frame {int(indices[p])})",
                    })
            bar.advance(task, len(batch))
    return {c: acc[c].compute() for c in columns}, panels


def markdown_table(metrics: dict[str, dict[str, float]]) -> str:
    """Eigen et al. 2014's Table 1 layout: metrics as rows, Mean | Coarse | Coarse+Fine."""
    cols = [c for c in COLUMNS if c in metrics]
    lines = ["| | " + " | ".join(COLUMNS[c] for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for key in METRIC_KEYS:
        values = " | ".join(f"{metrics[c].get(key, math.nan):.3f}" for c in cols)
        lines.append(f"| {ROW_NAMES[key]} | {values} |")
    return "\n".join(lines)


def run(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Evaluate as configured; write metrics.json, table.md and figure3.png; return the metrics."""
    from hydra.utils import instantiate

    from depth_lightning.viz import plot_depth_grid

    out_dir = Path(cfg.paths.output_dir)
    ckpt_path = user_path(required(cfg, "ckpt_path", "the checkpoint to evaluate, e.g. "
                                   "ckpt_path=outputs/train/runs/RUN/fine/checkpoints/best.ckpt"))
    protocol = Protocol.from_config(OmegaConf.to_container(cfg.eval, resolve=True))
    batch_size = int(cfg.get("batch_size") or 8)
    if batch_size < 1:
        raise DepthLightningError(f"batch_size: must be at least 1, got {batch_size}")
    device = resolve_device(str(cfg.get("device", "auto")), str(cfg.get("cpu_allocator", "reuse")))
    module = load_stage(ckpt_path)  # before the data: a wrong checkpoint fails in a second

    dm = instantiate(cfg.data)
    dm.setup("validate")
    frames, data_path = open_frames(dm)
    mean_depth = dm.depth_statistics()["mean_depth"]
    indices = [int(i) for i in dm.val_idx]
    keep = figure_positions(cfg, len(indices))
    log.info("evaluating %s (%s stage) on %d frames of %s; protocol %s", ckpt_path,
             module.stage, len(indices), data_path, protocol.describe())
    metrics, panels = evaluate_frames(module, frames, indices, protocol, mean_depth,
                                      batch_size=batch_size, device=device, keep=keep)
    if hasattr(frames, "close"):
        frames.close()

    table = markdown_table(metrics)
    header = (f"Evaluation of `{ckpt_path}` ({module.stage} stage) on the {len(indices)} "
              f"validation frames of `{data_path}`.\n\nProtocol {protocol.describe()}. Mean: "
              f"the per-pixel mean of the {len(dm.train_idx)} training depth maps.\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    write_text_atomic(out_dir / "table.md", f"{header}\n{table}\n")
    if panels:
        plot_depth_grid(panels, out_dir / "figure3.png",
                        title=f"{ckpt_path.name} ({module.stage}), protocol {protocol.name}")
    print(f"{header}\n{table}\n\nwrote {out_dir}")
    return metrics


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_task(cfg, run)


if __name__ == "__main__":
    main()
