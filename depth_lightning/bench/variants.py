"""Parameters and training speed of the comparison's networks, side by side in one process:
`python -m depth_lightning.bench.variants`.

With the bench's batch (synthetic frames at 3x228x304) and its Lightning timing
(:func:`depth_lightning.bench.__main__.lightning_rate`, the project's fast defaults), it
measures frames/s of a training step of the coarse stage, the fine stage (frozen coarse), the
adversarial fine stage (D and G steps) and the ResNet-18 U-Net, and counts each one's trainable
parameters (the adversarial stage's split into G and D). Prints a table, then a JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence

import torch

from depth_lightning.bench.__main__ import lightning_rate
from depth_lightning.bench.modules import coarse_stage, synthetic_batch, train_config
from depth_lightning.core.hardware import resolve_precision, reuse_freed_memory
from depth_lightning.core.plugins import build
from depth_lightning.training.plan import plan_stages


def stage_of(experiment: str, *overrides: str) -> torch.nn.Module:
    """The last stage of `+experiment=...` as train builds it (an untrained frozen coarse
    network below a refining stage), without a schedule."""
    cfg = train_config(f"+experiment={experiment}", "model.scheduler.name=none", *overrides)
    specs = plan_stages(cfg)
    if len(specs) == 1:
        return build(specs[0].model, "model", name=specs[0].name)
    base = [{"name": s.name, "net": s.model["net"]} for s in specs[:-1]]
    return build(specs[-1].model, "model", name=specs[-1].name, base=base)


def trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m depth_lightning.bench.variants",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6,
                        help="timed steps per measurement (>= 2 * (1 + D steps) for the "
                             "adversarial stage to time a whole batch)")
    parser.add_argument("--batch", type=int, default=16, help="frames per batch (default 16)")
    args = parser.parse_args(argv)
    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    if accelerator == "cpu":
        reuse_freed_memory()
    fast = str(resolve_precision("auto"))
    batch = synthetic_batch(args.batch)
    # no data module here, so no training mean map for the U-Net's head
    stages = {"coarse": coarse_stage(), "fine": stage_of("fine"),
              "adversarial fine": stage_of("adversarial"),
              "unet": stage_of("unet", "model.head_init=default")}
    res: dict[str, float | int | str] = {"precision": fast, "batch": args.batch}
    print(f"training frames/s, batch {args.batch}, precision {fast}")
    for name, module in stages.items():
        params = trainable(module)
        disc = getattr(module, "disc", None)
        d_params = trainable(disc) if disc is not None else 0
        rate = lightning_rate(module, batch, args.steps, fast, accelerator)
        if disc is not None:  # manual optimisation: max_steps counts D's steps as well
            per_batch = 1 + module.adversarial["d_steps"]
            timed = math.ceil((args.steps + 1) / per_batch) - 1  # batches after the warm-up
            rate *= max(timed, 1) / args.steps
        key = name.replace(" ", "_")
        res[f"{key}_params"], res[f"{key}_img_s"] = params - d_params, round(rate, 2)
        if d_params:
            res[f"{key}_disc_params"] = d_params
        extra = f" (+ D {d_params:,})" if d_params else ""
        print(f"  {name:18s} {params - d_params:>12,} parameters{extra:18s} {rate:7.1f} frames/s")
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
