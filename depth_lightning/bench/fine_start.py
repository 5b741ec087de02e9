"""How the fine stage starts: `python -m depth_lightning.bench.fine_start COARSE_CKPT [overrides]`.

Builds the fine stage of `+experiment=seed_paper` (or of the experiment given with
``--experiment``) on a trained coarse checkpoint and trains it for ``--steps`` optimiser steps
with the stage's own optimiser, loss and data, printing per step the loss and the gradient norm
of each fine layer, and once at the start the scales the fine network mixes: the normalised
input, the pooled fine1 features, the concatenated coarse map and the first output. Hydra
overrides after the checkpoint change the fine stage (``model.clip_grad_norm=1``,
``model.net.fine4_gain=linear``, ...). The last line is a JSON object with the figures.
This is the measurement behind docs/training.md, "Why the fine stage diverged at the seed's
settings".
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from typing import Any

import torch

from depth_lightning.api import compose
from depth_lightning.core.plugins import build
from depth_lightning.evaluation.protocols import TRAINING_TARGET
from depth_lightning.evaluation.scoring import update_metrics
from depth_lightning.losses import valid_mask
from depth_lightning.models.optim import build_optimizer
from depth_lightning.training.job import prepare
from depth_lightning.training.plan import plan_stages


def fine_stage(experiment: str, ckpt: str, overrides: Sequence[str]) -> tuple[Any, Any]:
    """The fine stage module and the data module of `experiment` built on `ckpt`."""
    cfg = compose("train", [f"+experiment={experiment}", f"model.coarse_ckpt={ckpt}",
                            *overrides])
    torch.manual_seed(int(cfg.seed))
    spec = plan_stages(cfg)[-1]
    dm = prepare(cfg)
    module = build(spec.model, "model", name=spec.name, base_ckpt=ckpt)
    return module, dm


def start_scales(module: Any, batch: dict) -> dict[str, float]:
    """RMS of what the fine network mixes at its first step."""
    net = module.net
    with torch.no_grad():
        x = module.prepare(batch["image"])
        coarse = module.base(x)[module.base.names[-1]]
        f = net.pool(net.relu(net.fine1(x)))
        out = net(x, coarse)
        target = torch.log(batch["depth"].clamp_min(1e-3))
        mask = valid_mask(batch["depth"])

    def rms(t: torch.Tensor) -> float:
        return float(t.float().pow(2).mean().sqrt())
    return {"input_rms": rms(x), "fine1_rms": rms(f), "coarse_rms": rms(coarse),
            "coarse_std": float(coarse.std()), "output_rms": rms(out),
            "target_rms": rms(target[mask]), "loss": float(module.loss_fn(out, batch["depth"],
                                                                          mask))}


def layer_norms(net: torch.nn.Module) -> dict[str, float]:
    """Gradient norm of each named child with parameters."""
    norms = {}
    for name, child in net.named_children():
        grads = [p.grad.norm() for p in child.parameters() if p.grad is not None]
        if grads:
            norms[name] = float(torch.stack(grads).norm())
    return norms


def train_steps(module: Any, dm: Any, steps: int) -> list[dict[str, float]]:
    """`steps` optimiser steps as the stage's own training does them; the record of each."""
    opt = build_optimizer(module.net, module.hparams.optim)  # the schedule: its first rates
    clip = module.hparams.get("clip_grad_norm")
    module.train()
    rows: list[dict[str, float]] = []
    while len(rows) < steps:
        for batch in dm.train_dataloader():
            depth = batch["depth"]
            loss = module.loss_fn(module(batch["image"]), depth, valid_mask(depth))
            opt.zero_grad()
            loss.backward()
            norms = layer_norms(module.net)
            if clip:
                torch.nn.utils.clip_grad_norm_(module.net.parameters(), float(clip))
            opt.step()
            rows.append({"step": len(rows), "loss": float(loss), **norms})
            if len(rows) == steps:
                break
    return rows


def val_si(module: Any, dm: Any) -> float:
    """Validation scale-invariant error (si_rmse_log at the 55x74 target)."""
    module.eval()
    module.val_metrics.reset()
    with torch.no_grad():
        for batch in dm.val_dataloader():
            logs = module.log_depths(module.prepare(batch["image"]))
            update_metrics({module.name: module.val_metrics},
                           {k: torch.exp(v.float()) for k, v in logs.items()}, batch,
                           TRAINING_TARGET, module.geometry)
    return float(module.val_metrics.compute()["val/si_rmse_log"])


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("coarse_ckpt")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--experiment", default="seed_paper")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--no-val", action="store_true", help="skip the validation scores")
    a = p.parse_intermixed_args(argv)
    module, dm = fine_stage(a.experiment, a.coarse_ckpt, a.overrides)
    scales = start_scales(module, next(iter(dm.train_dataloader())))
    print(" ".join(f"{k}={v:.4g}" for k, v in scales.items()))
    before = float("nan") if a.no_val else val_si(module, dm)
    rows = train_steps(module, dm, a.steps)
    for r in rows:
        print(" ".join(f"{k}={v:.4g}" for k, v in r.items()))
    after = float("nan") if a.no_val else val_si(module, dm)
    losses = [r["loss"] for r in rows]
    print(f"val si_rmse_log: {before:.4f} before, {after:.4f} after {a.steps} steps")
    print(json.dumps({"overrides": a.overrides, **scales, "val_si_before": before,
                      "val_si_after": after, "max_loss": max(losses),
                      "last_loss": losses[-1], "finite": all(map(math.isfinite, losses))}))


if __name__ == "__main__":
    main()
