"""DDP with two CPU processes (gloo): training runs, and the final figures are those one process
computes for the same weights (each validation frame counted once, no sampler padding)."""

import json

import pytest
import torch
from conftest import run_module, small_run_args

pytestmark = pytest.mark.cli  # commands in subprocesses: make test-fast leaves them out


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")
def test_ddp_two_cpu_processes_match_one_process(synth_data_dir, tmp_path):
    out = tmp_path / "outputs"
    res = run_module("depth_lightning.train", "+experiment=coarse", "trainer=ddp",
                     "trainer.accelerator=cpu", "trainer.devices=2",
                     "++trainer.fast_dev_run=true", *small_run_args(synth_data_dir, out),
                     cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-4000:]
    (run,) = (out / "train" / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    ckpts = run / "coarse" / "checkpoints"
    # the checkpoint the pipeline scored: best, else last, else the one it saved itself
    ckpt = next(ckpts / n for n in ("best.ckpt", "last.ckpt", "final.ckpt")
                if (ckpts / n).is_file())

    # The same weights, scored by one plain process on the same validation frames.
    from omegaconf import OmegaConf

    from depth_lightning.core.hardware import resolve_precision
    from depth_lightning.core.plugins import build
    from depth_lightning.models.checkpoints import load_stage
    from depth_lightning.training.fit import final_scores

    cfg = OmegaConf.load(run / "config.yaml")
    dm = build(cfg.data, "data")
    dm.setup("fit")
    single = final_scores(load_stage(ckpt), dm, resolve_precision(cfg.trainer.precision))
    for key, value in single.items():
        assert metrics["coarse"][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
