"""Hydra multirun sweeps, offline W&B runs, the compare table, and jobs that fail."""

import csv
import json
from pathlib import Path

import pytest
from conftest import TEST_COARSE6_UNITS, run_module, small_run_args

# the tests' narrow coarse6 is an architecture override, so it is part of every job's name
NET = f"model.net.coarse6_units={TEST_COARSE6_UNITS}"


def multirun_root(out: Path) -> Path:
    (root,) = (out / "train" / "multiruns").iterdir()
    return root


def wandb_env(tmp_path: Path) -> dict:
    return {"WANDB_DIR": str(tmp_path / "wb"), "WANDB_CACHE_DIR": str(tmp_path / "wbc"),
            "WANDB_CONFIG_DIR": str(tmp_path / "wbcfg"), "WANDB_MODE": "offline",
            "WANDB_API_KEY": "", "WANDB_SILENT": "true"}


def test_lambda_sweep_gives_three_jobs_three_wandb_runs_one_group_and_a_compare_table(
        synth_data_dir, tmp_path):
    out = tmp_path / "outputs"
    (tmp_path / "wb").mkdir()
    res = run_module("depth_lightning.train", "-m", "+experiment=coarse",
                     "model.loss.lam=0,0.5,1", "++trainer.fast_dev_run=true", "logger=wandb",
                     *small_run_args(synth_data_dir, out), cwd=tmp_path, env=wandb_env(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    root = multirun_root(out)
    jobs = sorted(p for p in root.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == [f"0_model.loss.lam=0,{NET}", f"1_model.loss.lam=0.5,{NET}",
                                      f"2_model.loss.lam=1,{NET}"]
    for job in jobs:
        metrics = json.loads((job / "metrics.json").read_text())
        assert set(metrics) == {"mean", "coarse"}
    runs = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 3, runs
    assert len({r.parent.name.rsplit("-", 1)[1] for r in runs}) == 3, "three separate runs"
    for r in runs:  # the sweep's name is each run's group (stored in the run record)
        assert root.name.encode() in r.read_bytes()
    res = run_module("depth_lightning.compare", str(root), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((root / "compare.csv").open()))
    assert len(rows) == 3
    si = [float(r["si_rmse_log"]) for r in rows]
    assert si == sorted(si)
    lams = sorted(o for r in rows for o in r["overrides"].split()
                  if o.startswith("model.loss.lam="))
    assert lams == ["model.loss.lam=0", "model.loss.lam=0.5", "model.loss.lam=1"]
    assert (root / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert (root / "compare.md").read_text().count("\n") == 2 + 3


def test_a_failing_job_leaves_the_other_jobs_results(synth_data_dir, tmp_path):
    out = tmp_path / "outputs"
    res = run_module("depth_lightning.train", "-m", "+experiment=coarse",
                     "data.split.val_fraction=0.2,2.0", "++trainer.fast_dev_run=true",
                     *small_run_args(synth_data_dir, out), cwd=tmp_path)
    assert res.returncode != 0
    assert "val_fraction" in res.stderr
    root = multirun_root(out)
    good = root / f"0_data.split.val_fraction=0.2,{NET}" / "metrics.json"
    assert json.loads(good.read_text())["coarse"]["si_rmse_log"] > 0


@pytest.mark.parametrize("breakage", ["unwritable_dir", "bad_setting"])
def test_wandb_that_cannot_start_warns_and_training_goes_on(breakage, synth_data_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = wandb_env(tmp_path)
    if breakage == "unwritable_dir":  # a folder below a plain file cannot be created
        env["WANDB_DIR"] = str(blocker / "sub")
    else:  # wandb.init raises on an invalid setting
        env["WANDB_INIT_TIMEOUT"] = "not-a-number"
    out = tmp_path / "outputs"
    res = run_module("depth_lightning.train", "+experiment=coarse", "logger=wandb",
                     "++trainer.fast_dev_run=true", *small_run_args(synth_data_dir, out),
                     cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (out / "train" / "runs").iterdir()
    assert json.loads((run / "metrics.json").read_text())["coarse"]["si_rmse_log"] > 0
    if breakage == "bad_setting":
        assert "logger wandb could not start" in res.stdout + res.stderr
    assert not (blocker.parent / "sub").exists()


def test_unknown_override_gets_hydras_message(tmp_path):
    res = run_module("depth_lightning.train", "model.no_such_key=1", cwd=tmp_path)
    assert res.returncode != 0
    assert "no_such_key" in res.stderr and "Traceback" not in res.stderr
