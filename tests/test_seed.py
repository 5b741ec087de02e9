"""Reproducibility: seed=0 is honoured, the same seed gives the same metrics, another seed not."""

import json

import pytest
from conftest import run_job, small_run_args


def run_metrics(seed, synth_data_dir, tmp_path, name):
    out = tmp_path / name
    # one DataLoader worker: its augmentation randomness must be seeded too
    args = [a for a in small_run_args(synth_data_dir, out) if not a.startswith("data.num_work")]
    res = run_job("train", "+experiment=coarse", f"seed={seed}",
                     "++trainer.fast_dev_run=true", "data.num_workers=1", *args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (out / "train" / "runs").iterdir()
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.slow
def test_same_seed_same_metrics_other_seed_other_metrics(synth_data_dir, tmp_path):
    a = run_metrics(0, synth_data_dir, tmp_path, "a")
    b = run_metrics(0, synth_data_dir, tmp_path, "b")
    c = run_metrics(1, synth_data_dir, tmp_path, "c")
    assert a == b
    assert a["coarse"] != c["coarse"]
    assert a["mean"] == c["mean"]  # same data and split: only the training changed
