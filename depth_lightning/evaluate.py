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

import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from depth_lightning import resolvers  # noqa: F401  (registers ${dl_uid:} before composing)
from depth_lightning.checkpoints import load_stage
from depth_lightning.entry import hydra_main, required, resolve_device, run_task, user_path
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import FRAME_SIZE, network_input, resize_image, resize_nearest
from depth_lightning.io import write_json, write_text
from depth_lightning.plugins import build
from depth_lightning.protocols import Protocol
from depth_lightning.scoring import MeanPredictor, StagePredictor, score
from depth_lightning.settings import whole_number
from depth_lightning.tables import markdown_table

log = logging.getLogger("depth_lightning")

# A refining stage keeps the frozen stages below it in eval mode on purpose.
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode.*")


def frame_batches(frames: Sequence[dict], indices: Sequence[int], protocol: Protocol,
                  batch_size: int) -> Iterator[dict[str, Any]]:
    """Batches of full-resolution frames for scoring: the network input exactly as in
    training (the 2x2 box mean to 320x240, then the centre crop), the protocol's ground truth
    and the RGB frame at 640x480 (frames of another size are resized to it first)."""
    for start in range(0, len(indices), batch_size):
        chosen = [int(i) for i in indices[start:start + batch_size]]
        items = [frames[i] for i in chosen]
        rgb = [f["image"] if f["image"].shape[:2] == FRAME_SIZE else
               resize_image(f["image"], FRAME_SIZE) for f in items]
        depth = [f.get(protocol.frame_key, f["depth"]) for f in items]
        depth = [d if d.shape == FRAME_SIZE else resize_nearest(d, FRAME_SIZE) for d in depth]
        yield {"image": torch.stack([network_input(f["image"]) for f in items]),
               "depth": torch.from_numpy(np.stack(depth)), "rgb": rgb,
               "index": torch.tensor(chosen)}


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
                    protocol: Protocol, mean_depth: torch.Tensor, batch_size: int = 8,
                    device: torch.device | str = "cpu", keep: Sequence[int] = (),
                    progress: bool = True) -> tuple[dict[str, dict[str, float]], list[dict]]:
    """Score the Mean baseline and `module` (each of its stages) on frames[indices] with
    `protocol`; also the figure panels of the validation positions in `keep`."""
    from rich.console import Console
    from rich.progress import Progress

    module = module.to(device).eval()
    predictors = [MeanPredictor(mean_depth), StagePredictor(module)]
    with Progress(console=Console(stderr=True), disable=not progress, transient=True) as bar:
        task = bar.add_task(f"evaluating {len(indices)} frames ({protocol.name})",
                            total=len(indices))
        return score(predictors, frame_batches(frames, indices, protocol, batch_size), protocol,
                     device=device, keep=keep, progress=lambda n: bar.advance(task, n))


def run(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Evaluate as configured; write metrics.json, table.md and figure3.png; return the metrics."""
    from depth_lightning.viz import plot_depth_grid

    out_dir = Path(cfg.paths.output_dir)
    ckpt_path = user_path(required(cfg, "ckpt_path", "the checkpoint to evaluate, e.g. "
                                   "ckpt_path=outputs/train/runs/RUN/fine/checkpoints/best.ckpt"))
    protocol = Protocol.from_config(OmegaConf.to_container(cfg.eval, resolve=True))
    batch_size = whole_number(cfg.get("batch_size"), "batch_size")
    device = resolve_device(str(cfg.get("device", "auto")), str(cfg.get("cpu_allocator", "reuse")))
    module = load_stage(ckpt_path)  # before the data: a wrong checkpoint fails in a second

    dm = build(cfg.data, "data")
    dm.setup("validate")
    indices = [int(i) for i in dm.val_idx]
    keep = figure_positions(cfg, len(indices))
    log.info("evaluating %s (%s stage) on %d frames of %s; protocol %s", ckpt_path,
             module.name, len(indices), dm.describe(), protocol.describe())
    metrics, panels = evaluate_frames(module, dm.source, indices, protocol,
                                      dm.depth_statistics()["mean_depth"],
                                      batch_size=batch_size, device=device, keep=keep)
    table = markdown_table(metrics)
    header = (f"Evaluation of `{ckpt_path}` ({module.name} stage) on the {len(indices)} "
              f"validation frames of `{dm.describe()}`.\n\nProtocol {protocol.describe()}. "
              f"Mean: the per-pixel mean of the {len(dm.train_idx)} training depth maps.\n")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "metrics.json", metrics)
    write_text(out_dir / "table.md", f"{header}\n{table}\n")
    if panels:
        plot_depth_grid(panels, out_dir / "figure3.png",
                        title=f"{ckpt_path.name} ({module.name}), protocol {protocol.name}")
    print(f"{header}\n{table}\n\nwrote {out_dir}")
    return metrics


@hydra_main("evaluate")
def main(cfg: DictConfig) -> None:
    run_task(cfg, run)


if __name__ == "__main__":
    main()
