"""Evaluate: `python -m depth_lightning.evaluate ckpt_path=PATH [data=nyu_v2] [eval=bts]`.

Scores a trained checkpoint on the validation frames of the data it was trained on (saved in
the checkpoint; `data.*` overrides change those saved settings), or of `data=NAME` when that is
given (NYU V2: the 654 official test frames), at full resolution, with the protocol chosen in
the `eval` group (depth_lightning/evaluation/protocols.py): each 640x480 frame is downsampled to
320x240 (2x2 box mean, as the training cache does) and centre-cropped to 304x228; the 55x74
prediction is brought back to 640x480 and scored there against the protocol's ground truth.
Columns, as in Eigen et al. 2014 Table 1:

* Mean: the per-pixel mean of the training split's depth maps, upsampled the same way (left out,
  with a note, when training and validation frames overlap: it would be scored on its own
  frames);
* Coarse: the coarse network (of a fine checkpoint: its frozen coarse network);
* Coarse+Fine: the fine network's output (fine checkpoints only);
Frames of sparse sources (KITTI's LiDAR) are scored at their own size, the prediction brought
to each (resizing sparse ground truth would drop measurements); a model of another frame chain
(KITTI's) sees frames through its own chain. A protocol may align each prediction to its ground
truth first (``eval.align=median``, as relative-depth models are scored).

* Constant: one depth per frame (the median of its ground truth), whose si_rmse_log is the
  frame's own log-depth spread; the table ends with each column's si_rmse_log relative to it
  (the sim-to-real measure of a SynthRooms model on real frames: 1 = knows nothing).

Writes into the run folder (outputs/evaluate/runs/<time>_<id>/): metrics.json
`{"mean": {...}, "coarse": {...}, "fine": {...}, "constant": {...}}` with the nine metrics,
table.md (the table printed on stdout) and figure3.png (RGB | ground truth | coarse |
coarse+fine for a few frames).
"""

from __future__ import annotations

import itertools
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from depth_lightning.core.files import write_json, write_text
from depth_lightning.core.hardware import resolve_device
from depth_lightning.core.plugins import build
from depth_lightning.core.settings import required, user_path, whole_number
from depth_lightning.errors import DepthLightningError
from depth_lightning.evaluation.protocols import EvalProtocol
from depth_lightning.evaluation.scoring import (
    ConstantPredictor,
    MeanPredictor,
    StagePredictor,
    score,
)
from depth_lightning.geometry import (
    NYU,
    FrameGeometry,
    network_input,
    resize_image,
    resize_nearest,
)
from depth_lightning.models.checkpoints import load_checkpoint, stage_from_checkpoint
from depth_lightning.reporting.tables import column_name, markdown_table

log = logging.getLogger("depth_lightning")

# A refining stage keeps the frozen stages below it in eval mode on purpose.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")


def frame_batches(frames: Sequence[dict], indices: Sequence[int], protocol: EvalProtocol,
                  batch_size: int, geometry: FrameGeometry = NYU, native: bool = False
                  ) -> Iterator[dict[str, Any]]:
    """Batches of full-resolution frames for scoring: the network input exactly as in
    training (NYU: the 2x2 box mean to 320x240, then the centre crop), the protocol's ground
    truth and the RGB frame at the chain's frame size (frames of another size are resized to
    it first), or, with `native`, at each frame's own size (a batch then holds frames of one
    size)."""
    batch: list[tuple[int, dict]] = []
    for i in itertools.chain((int(i) for i in indices), [None]):
        frame = frames[i] if i is not None else None
        if batch and (frame is None or len(batch) == batch_size or
                      (native and frame["image"].shape != batch[0][1]["image"].shape)):
            yield _batch(batch, protocol, geometry, native)
            batch = []
        if frame is not None:
            batch.append((i, frame))


def _batch(items: list[tuple[int, dict]], protocol: EvalProtocol, geometry: FrameGeometry,
           native: bool) -> dict[str, Any]:
    size = geometry.frame
    rgb = [f["image"] if native or f["image"].shape[:2] == size else
           resize_image(f["image"], size) for _, f in items]
    depth = [f.get(protocol.frame_key, f["depth"]) for _, f in items]
    depth = [d if native or d.shape == size else resize_nearest(d, size) for d in depth]
    return {"image": torch.stack([network_input(f["image"], geometry) for _, f in items]),
            "depth": torch.from_numpy(np.stack(depth)), "rgb": rgb,
            "index": torch.tensor([i for i, _ in items])}


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


def evaluate_frames(module: Any, frames: Sequence[dict], indices: Sequence[int],
                    protocol: EvalProtocol, mean_depth: torch.Tensor | None, batch_size: int = 8,
                    device: torch.device | str = "cpu", keep: Sequence[int] = (),
                    progress: bool = True) -> tuple[dict[str, dict[str, float]], list[dict]]:
    """Score the Mean baseline (unless `mean_depth` is None), `module` (each of its stages) and
    the Constant reference on frames[indices] with `protocol`; also the figure panels of the
    positions in `keep`."""
    from rich.console import Console
    from rich.progress import Progress

    module = module.to(device).eval()
    geometry = getattr(module, "geometry", NYU)
    native = bool(getattr(frames, "sparse_depth", False))
    predictors = [MeanPredictor(mean_depth)] if mean_depth is not None else []
    predictors += [StagePredictor(module), ConstantPredictor(geometry.output)]
    with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task(f"evaluating {len(indices)} frames ({protocol.name})",
                            total=len(indices))
        batches = frame_batches(frames, indices, protocol, batch_size, geometry, native)
        metrics, panels = score(predictors, batches, protocol, device=device, keep=keep,
                                progress=lambda n: bar.advance(task, n), geometry=geometry)
    unscored = [c for c, m in metrics.items() if not np.isfinite(m["si_rmse_log"])]
    if unscored and len(unscored) == len(metrics):
        raise DepthLightningError(
            f"eval: none of the {len(indices)} frames has a ground-truth depth inside the "
            f"protocol's region and caps ({protocol.describe(geometry)}): all 0, NaN or out "
            "of range")
    return metrics, panels


def _command_line() -> list[str]:
    """This invocation's overrides (none when not started from the command line)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return list(HydraConfig.get().overrides.task)
    except ValueError:
        return []


def data_config(cfg: DictConfig, saved: dict | None,
                overrides: Sequence[str] | None = None) -> tuple[Any, str]:
    """The data to score and where its settings come from: `data=NAME` on the command line
    (the composed config), else the checkpoint's saved settings with the command line's
    `data.*` overrides applied to them, else (a checkpoint that saved none) the default."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(
        list(_command_line() if overrides is None else overrides))
    if any(o.key_or_group == "data" for o in parsed) or not saved:
        why = "data= on the command line" if saved else "the checkpoint saves no data settings"
        return cfg.data, why
    data = OmegaConf.create(saved)
    changed = [o.key_or_group for o in parsed if o.key_or_group.startswith("data.")]
    for o in parsed:
        key = o.key_or_group[len("data."):]
        if not o.key_or_group.startswith("data."):
            continue
        if o.is_delete():
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(data, parent) if parent else data
            if isinstance(node, DictConfig) and leaf in node:
                node.pop(leaf)
        else:  # the composed value: Hydra has parsed and resolved it already
            value = OmegaConf.select(cfg, o.key_or_group)
            OmegaConf.update(data, key, OmegaConf.to_object(value) if OmegaConf.is_config(value)
                             else value, merge=False, force_add=True)
    return data, "saved in the checkpoint" + (f", with {', '.join(changed)}" if changed else "")


def mean_baseline(dm: Any) -> tuple[torch.Tensor | None, str]:
    """The Mean column's map and its note: None when training and validation frames overlap
    (data.split.kind=all, say), where a mean of the training maps would be scored on itself."""
    shared = set(map(int, dm.train_idx)) & set(map(int, dm.val_idx))
    if shared:
        return None, (f"Mean left out: {len(shared)} of the validation frames are also "
                      "training frames, so a mean of the training depth maps would be scored "
                      "on the frames it was fitted on.")
    return dm.depth_statistics()["mean_depth"], (
        f"Mean: the per-pixel mean of the {len(dm.train_idx)} training depth maps.")


def relative_to_constant(metrics: dict[str, dict[str, float]]) -> str:
    """Each column's si_rmse_log over the Constant's (a per-frame constant depth), the measure
    of how much a model trained elsewhere (SynthRooms, say) knows of these frames: 1 = nothing.

    Example:
        >>> relative_to_constant({"fine": {"si_rmse_log": 0.3}, "constant": {"si_rmse_log": 0.4}})
        'si_rmse_log relative to Constant (0.400): Coarse+Fine 0.750'
    """
    ref = metrics["constant"]["si_rmse_log"]
    parts = [f"{column_name(c)} {m['si_rmse_log'] / ref:.3f}" for c, m in metrics.items()
             if c != "constant"]
    return f"si_rmse_log relative to Constant ({ref:.3f}): " + ", ".join(parts)


def run(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Evaluate as configured; write metrics.json, table.md and figure3.png; return the metrics."""
    from depth_lightning.reporting.figures import plot_depth_grid

    out_dir = Path(cfg.paths.output_dir)
    ckpt_path = user_path(required(cfg, "ckpt_path", "the checkpoint to evaluate, e.g. "
                                   "ckpt_path=outputs/train/runs/RUN/fine/checkpoints/best.ckpt"))
    protocol = EvalProtocol.from_config(OmegaConf.to_container(cfg.eval, resolve=True))
    if protocol.resolution != "frame":
        raise DepthLightningError("eval.resolution: evaluate scores full frames (frame); the "
                                  "network's output size is what validation during training "
                                  "scores")
    batch_size = whole_number(cfg.get("batch_size"), "batch_size")
    device = resolve_device(str(cfg.get("device", "auto")), str(cfg.get("cpu_allocator", "reuse")))
    ckpt = load_checkpoint(ckpt_path)  # before the data: a wrong checkpoint fails in a second
    module = stage_from_checkpoint(ckpt, ckpt_path)
    data_cfg, data_from = data_config(cfg, ckpt["depth_lightning"].get("data"))

    dm = build(data_cfg, "data")
    dm.setup("validate")
    indices = [int(i) for i in dm.val_idx]
    keep = figure_positions(cfg, len(indices))
    log.info("evaluating %s (%s stage) on %d frames of %s (%s); protocol %s", ckpt_path,
             module.name, len(indices), dm.describe(), data_from,
             protocol.describe(module.geometry))
    mean_depth, mean_note = mean_baseline(dm)
    metrics, panels = evaluate_frames(module, dm.source, indices, protocol, mean_depth,
                                      batch_size=batch_size, device=device, keep=keep)
    table = markdown_table(metrics) + "\n\n" + relative_to_constant(metrics)
    header = (f"Evaluation of `{ckpt_path}` ({module.name} stage) on the {len(indices)} "
              f"validation frames of `{dm.describe()}` (data {data_from}).\n\nProtocol "
              f"{protocol.describe(module.geometry)}. {mean_note}\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "metrics.json", metrics)
    write_text(out_dir / "table.md", f"{header}\n{table}\n")
    if panels:
        plot_depth_grid(panels, out_dir / "figure3.png",
                        title=f"{ckpt_path.name} ({module.name}), protocol {protocol.name}")
    print(f"{header}\n{table}\n\nwrote {out_dir}")
    return metrics
