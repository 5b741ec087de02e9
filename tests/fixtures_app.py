"""Small checkpoints for the tests of the API, export, point clouds, video and the demo: built in
this process from the packaged model configs (random weights, a narrow coarse6), in seconds.

Use with `from fixtures_app import tiny_ckpts  # noqa: F401`; `tiny_ckpts` is (coarse, fine).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from conftest import TEST_COARSE6_UNITS, compose, made_once, run_module

from depth_lightning.api import DepthPredictor
from depth_lightning.core.plugins import build
from depth_lightning.training.plan import plan_stages


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


@dataclass(frozen=True)
class NYUPrediction:
    cwd: Path  # where predict was started: it must hold only `preds`
    out: Path  # output_dir
    ckpt: Path
    photo_path: Path
    name: str


@pytest.fixture(scope="session")
def nyu_prediction(tmp_path_factory) -> NYUPrediction:
    """`predict ... pointcloud=true output_dir=preds` run once per test session on a real NYU
    photo, with checkpoints of its own."""
    from nyu_files import require_shared_data

    photo = require_shared_data() / "nyu_v1_samples" / "rgb" / "00040.png"

    def predict(root: Path) -> dict:
        cwd = root / "predict_cwd"
        cwd.mkdir()
        _, fine = write_tiny_checkpoints(root)
        res = run_module("depth_lightning.predict", f"ckpt_path={fine}", f"input={photo}",
                         "output_dir=preds", "pointcloud=true", cwd=cwd)
        assert res.returncode == 0, res.stderr[-3000:]
        return {"cwd": str(cwd), "ckpt": str(fine)}

    made = made_once(tmp_path_factory, "nyu_prediction", predict)
    cwd = Path(made["cwd"])
    return NYUPrediction(cwd, cwd / "preds", Path(made["ckpt"]), photo, photo.stem)
