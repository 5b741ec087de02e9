"""How fast the adversarial stage's discriminator can learn, by what it sees:
`python -m depth_lightning.bench.discriminator RUN_DIR [--steps N] [--variant NAME ...]`.

Takes the last stage of a finished run (its best checkpoint and its data), predicts log depth
for `--frames` training frames once, then trains a fresh conditional PatchGAN (the
adversarial stage's, spectral norm, hinge loss, Adam) for `--steps` steps to tell the ground
truth from those fixed predictions, once per variant of what D sees. Prints, per variant, the
balanced accuracy (mean of the shares of real and fake patches called right) over each
quarter of its steps and on `--held-out` other training frames, and a last JSON line.
This is the measurement behind docs/experiments/after-2014.md, "Adversarial fine stage": with
raw log depth (``raw``) a spectrally normalised D learns slowly; centred and scaled
(``centred_x4``, the default of `model.adversarial`) it does not.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from depth_lightning.core.plugins import build
from depth_lightning.models.adversarial import (
    PatchDiscriminator,
    discriminator_loss,
    discriminator_view,
    judged_pair,
)
from depth_lightning.models.checkpoints import load_stage
from depth_lightning.reporting.compare import read_job

#: what D sees: (centre, gain) of `discriminator_view`
VARIANTS = {"raw": (False, 1.0), "centred": (True, 1.0), "centred_x4": (True, 4.0)}


def pairs(run: Path, frames: int) -> dict[str, torch.Tensor]:
    """RGB at 55x74, true and predicted log depth and valid masks of the first `frames`
    training frames (in the loader's order) of `run`'s last stage."""
    cfg = OmegaConf.load(run / "config.yaml")
    cfg.data.num_workers = 0
    dm = build(cfg.data, "data")
    dm.setup("fit")
    job = read_job(run)
    stage_name, stage = job["stage"], load_stage(job["best"]).eval()
    out: dict[str, list[torch.Tensor]] = {"rgb": [], "real": [], "fake": [], "mask": []}
    seen = 0
    with torch.no_grad():
        for batch in dm.train_dataloader():
            x = stage.prepare(batch["image"])
            for key, value in zip(("rgb", "real", "mask"), judged_pair(x, batch["depth"])):
                out[key].append(value)
            out["fake"].append(stage.log_depths(x)[stage_name].float())
            seen += x.shape[0]
            if seen >= frames:
                break
    return {k: torch.cat(v)[:frames] for k, v in out.items()}


def balanced_accuracy(real: torch.Tensor, fake: torch.Tensor) -> float:
    return float(((real > 0).float().mean() + (fake < 0).float().mean()) / 2)


def train_discriminator(data: dict[str, torch.Tensor], held_out: int, variant: str,
                        args: argparse.Namespace) -> dict[str, Any]:
    """A fresh D trained on all but the last `held_out` pairs; its accuracies."""
    centre, gain = VARIANTS[variant]
    torch.manual_seed(args.seed)
    disc = PatchDiscriminator(args.width)
    opt = torch.optim.Adam(disc.parameters(), lr=args.d_lr, betas=(0.5, 0.999))
    n_train = len(data["rgb"]) - held_out
    accs, start = [], time.perf_counter()
    for _ in range(args.steps):
        i = torch.randint(n_train, (args.batch,))
        rgb, mask = data["rgb"][i], data["mask"][i]
        real = disc(rgb, discriminator_view(data["real"][i], mask, args.noise, centre, gain))
        fake = disc(rgb, discriminator_view(data["fake"][i], mask, args.noise, centre, gain))
        loss = discriminator_loss("hinge", real, fake)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        accs.append(balanced_accuracy(real.detach(), fake.detach()))
    disc.eval()
    with torch.no_grad():
        rgb, mask = data["rgb"][n_train:], data["mask"][n_train:]
        real = disc(rgb, discriminator_view(data["real"][n_train:], mask, 0.0, centre, gain))
        fake = disc(rgb, discriminator_view(data["fake"][n_train:], mask, 0.0, centre, gain))
    q = max(1, len(accs) // 4)
    return {"variant": variant, "quarters": [sum(accs[k * q:(k + 1) * q]) / q for k in range(4)],
            "held_out": balanced_accuracy(real, fake), "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m depth_lightning.bench.discriminator",
                                description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path, help="a finished run folder (config.yaml, metrics.json)")
    p.add_argument("--variant", action="append", choices=sorted(VARIANTS),
                   help="what D sees (repeatable; default: all)")
    p.add_argument("--frames", type=int, default=960, help="training frames predicted")
    p.add_argument("--held-out", type=int, default=160, help="of those, kept for scoring")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--d-lr", type=float, default=2e-4)
    p.add_argument("--noise", type=float, default=0.0, help="instance noise while training")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    data = pairs(args.run, args.frames)
    gap = float((data["real"] - data["fake"]).abs()[data["mask"]].mean())
    print(f"{len(data['rgb'])} frames, mean |log real - log fake| {gap:.3f}")
    results = []
    for variant in args.variant or list(VARIANTS):
        r = train_discriminator(data, args.held_out, variant, args)
        results.append(r)
        print(f"{variant:11s} balanced accuracy by quarter of training "
              + " ".join(f"{a:.3f}" for a in r["quarters"])
              + f"   held out {r['held_out']:.3f}   ({r['seconds']:.0f} s)", flush=True)
    print(json.dumps({"steps": args.steps, "d_lr": args.d_lr, "noise": args.noise,
                      "results": results}))


if __name__ == "__main__":
    main()
