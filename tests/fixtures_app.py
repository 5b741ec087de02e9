"""Small checkpoints for the tests of the API, export, point clouds, video and the demo: built in
this process from the packaged model configs (random weights, a narrow coarse6), in seconds.

Use with `from fixtures_app import tiny_ckpts  # noqa: F401`; `tiny_ckpts` is (coarse, fine).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import TEST_COARSE6_UNITS, compose

from depth_lightning.api import DepthPredictor
from depth_lightning.plugins import build
from depth_lightning.pipeline import plan_stages


def write_tiny_checkpoints(folder: Path, data: dict | None = None) -> tuple[Path, Path]:
    """A coarse checkpoint and a fine one on top of it, as `DepthPredictor.save` writes them."""
    torch.manual_seed(0)
    cfg = compose("train", "stages=coarse_fine", "model.scheduler.name=none",
                  f"coarse_stage.model.net.coarse6_units={TEST_COARSE6_UNITS}")
    models = {s.name: s.model for s in plan_stages(cfg)}
    coarse = build(models["coarse"], "model", name="coarse")
    coarse_path = DepthPredictor(coarse, data=data).save(folder / "coarse.ckpt")
    fine = build(models["fine"], "model", name="fine", base_ckpt=str(coarse_path))
    with torch.no_grad():  # a fine stage that visibly differs from its coarse input
        fine.net.fine4.bias.fill_(0.3)
    return coarse_path, DepthPredictor(fine, data=data).save(folder / "fine.ckpt")


@pytest.fixture(scope="session")
def tiny_ckpts(tmp_path_factory) -> tuple[Path, Path]:
    return write_tiny_checkpoints(tmp_path_factory.mktemp("ckpts"))
