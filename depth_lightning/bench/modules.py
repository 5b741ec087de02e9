"""Stage modules and a batch for the benchmarks, built from the packaged configs as `train`
builds them (so a benchmark measures what training runs)."""

from __future__ import annotations

import torch
from omegaconf import OmegaConf

from depth_lightning.api import compose
from depth_lightning.core.plugins import build
from depth_lightning.models import DepthStage


def train_config(*overrides: str):
    """The composed `train` config with `overrides` (Hydra syntax)."""
    return compose("train", overrides)


def coarse_stage(*overrides: str) -> DepthStage:
    """The coarse stage at the paper's settings (no schedule), plus `overrides`."""
    cfg = train_config("model.scheduler.name=none", *overrides)
    return build(cfg.model, "model", name="coarse")


def fine_stage(*overrides: str) -> DepthStage:
    """The fine stage on an (untrained) frozen coarse network, plus `overrides`."""
    cfg = train_config("stages=coarse_fine", "model.scheduler.name=none", *overrides)
    net = OmegaConf.to_container(cfg.coarse_stage.model.net, resolve=True)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    model.pop("coarse_ckpt")  # the frozen coarse comes untrained, from its config
    return build(model, "model", name="fine", base=[{"name": "coarse", "net": net}])


def synthetic_batch(n: int = 32, seed: int = 0) -> dict:
    """n random uint8 images (3,228,304) and depths (1,55,74) in 0.5-6.5 m."""
    g = torch.Generator().manual_seed(seed)
    return {"image": torch.randint(0, 256, (n, 3, 228, 304), dtype=torch.uint8, generator=g),
            "depth": torch.rand(n, 1, 55, 74, generator=g) * 6 + 0.5,
            "index": torch.arange(n)}
