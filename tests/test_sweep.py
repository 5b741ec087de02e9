"""Hydra multirun sweeps, offline W&B runs, the compare table, and jobs that fail."""

import csv
import json
from pathlib import Path

import pytest
import yaml
from conftest import TEST_COARSE6_UNITS, run_module, small_run_args

from depth_lightning.evaluation.metrics import METRIC_KEYS

pytestmark = pytest.mark.cli  # commands in subprocesses: make test-fast leaves them out

# the tests' narrow coarse6 is an architecture override, so it is part of every job's name
NET = f"model.net.coarse6_units={TEST_COARSE6_UNITS}"


def multirun_root(out: Path) -> Path:
    (root,) = (out / "train" / "multiruns").iterdir()
    return root


def wandb_env(tmp_path: Path) -> dict:
    return {"WANDB_DIR": str(tmp_path / "wb"), "WANDB_CACHE_DIR": str(tmp_path / "wbc"),
            "WANDB_CONFIG_DIR": str(tmp_path / "wbcfg"), "WANDB_MODE": "offline",
            "WANDB_API_KEY": "", "WANDB_SILENT": "true"}


def test_lambda_sweep_gives_three_wandb_runs_one_group_named_by_the_swept_setting(
        synth_data_dir, tmp_path):
    """An offline W&B sweep, read back from the run files: one group (the sweep's folder), the
    swept setting as each run's name, the stage as job type and tag, the config once, the
    summary = the best epoch's validation metrics and the final table of metrics.json, and
    the checkpoints as artifacts (log_model=true)."""
    from wandb_files import read_run

    out = tmp_path / "outputs"
    (tmp_path / "wb").mkdir()
    res = run_module("depth_lightning.train", "-m", "+experiment=coarse",
                     "model.loss.lam=0,0.5,1", "debug=limit", "++debug.trainer.max_epochs=2",
                     "++debug.trainer.limit_train_batches=1",
                     "++debug.trainer.limit_val_batches=1", "logger=wandb",
                     "logger.wandb.log_model=true", *small_run_args(synth_data_dir, out),
                     cwd=tmp_path, env=wandb_env(tmp_path))
    assert res.returncode == 0, res.stderr[-3000:]
    (root,) = (out / "debug" / "multiruns").iterdir()
    jobs = sorted(p for p in root.iterdir() if p.is_dir())
    assert len(jobs) == 3 and all(f"model.loss.lam={v}," in j.name
                                  for j, v in zip(jobs, ("0", "0.5", "1")))
    files = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*/run-*.wandb"))
    runs = sorted((read_run(f) for f in files), key=lambda r: r["name"])
    assert [r["name"] for r in runs] == ["model.loss.lam=0 (coarse)",
                                         "model.loss.lam=0.5 (coarse)",
                                         "model.loss.lam=1 (coarse)"]
    for job, run in zip(jobs, runs):
        assert run["group"] == root.name and run["job_type"] == "coarse"
        assert run["tags"] == ["coarse", "experiment=coarse"]
        # the config once: the run config, no second copy of the module's hyper-parameters
        lam = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())["model"]["loss"]["lam"]
        assert run["config"]["model"]["loss"]["lam"] == lam
        assert not {"net", "loss", "optim", "name"} & set(run["config"])
        metrics = json.loads((job / "metrics.json").read_text())
        final = {f"final/{c}/{k}": v for c, vs in metrics.items() for k, v in vs.items()
                 if v == v}  # W&B keeps a nan (a constant map's boundary precision) as None
        assert {k: run["summary"][k] for k in final} == final
        nine = {k: metrics["coarse"][k] for k in METRIC_KEYS}  # what validation logs per epoch
        assert {k: run["summary"][f"val/{k}"] for k in nine} == nine
        epochs = list(csv.DictReader((job / "coarse" / "epochs.csv").open()))
        best = min(epochs, key=lambda r: float(r["val/si_rmse_log"]))
        assert run["summary"]["best/epoch"] == int(best["epoch"])
        assert run["summary"]["best/checkpoint"] == str(job / "coarse/checkpoints/best.ckpt")
        assert "artifact" in run["kinds"], "log_model=true: the checkpoints as artifacts"
    res = run_module("depth_lightning.compare", str(root), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((root / "compare.csv").open()))
    si = [float(r["si_rmse_log"]) for r in rows]
    assert len(rows) == 3 and si == sorted(si)
    lams = sorted(o for r in rows for o in r["overrides"].split()
                  if o.startswith("model.loss.lam="))
    assert lams == ["model.loss.lam=0", "model.loss.lam=0.5", "model.loss.lam=1"]
    assert (root / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert (root / "compare.md").read_text().count("\n") == 2 + 3


def test_a_seed_list_joins_a_preset_sweep_and_compare_gives_mean_and_std(synth_data_dir,
                                                                         tmp_path):
    """`seed=0,1` on the command line multiplies a preset's sweep (+hparams_search=lambda: 3
    values of lambda), and compare folds each lambda's two seeds into one row of seeds.md."""
    out = tmp_path / "outputs"
    res = run_module("depth_lightning.train", "+experiment=coarse", "+hparams_search=lambda",
                     "seed=0,1", "debug=limit", "++debug.trainer.max_epochs=1",
                     "++debug.trainer.limit_train_batches=1",
                     "++debug.trainer.limit_val_batches=1", "callbacks.depth_panels=null",
                     "callbacks.epoch_table.plot_every=0",
                     *small_run_args(synth_data_dir, out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (root,) = (out / "debug" / "multiruns").iterdir()
    assert len([p for p in root.iterdir() if p.is_dir()]) == 6
    res = run_module("depth_lightning.compare", str(root), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((root / "seeds.csv").open()))
    lam_of = {r["variant"]: next(o for o in r["variant"].split()
                                 if o.startswith("model.loss.lam=")) for r in rows}
    assert sorted(lam_of.values()) == [
        "model.loss.lam=0", "model.loss.lam=0.5", "model.loss.lam=1"]
    assert {r["n"] for r in rows} == {"2"}
    jobs = {}
    for job in root.iterdir():
        if (job / "metrics.json").is_file():
            given = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
            lam = next(o for o in given if o.startswith("model.loss.lam="))
            jobs.setdefault(lam, []).append(
                json.loads((job / "metrics.json").read_text())["coarse"]["si_rmse_log"])
    for r in rows:
        values = jobs[lam_of[r["variant"]]]
        assert float(r["coarse/si_rmse_log_mean"]) == pytest.approx(sum(values) / 2)
        assert float(r["coarse/si_rmse_log_std"]) == pytest.approx(
            abs(values[0] - values[1]) / 2 ** 0.5)


def test_a_failing_job_leaves_the_other_jobs_results(synth_data_dir, tmp_path):
    out = tmp_path / "outputs"
    res = run_module("depth_lightning.train", "-m", "+experiment=coarse",
                     "data.split.val_fraction=0.2,2.0", "++trainer.fast_dev_run=true",
                     *small_run_args(synth_data_dir, out), cwd=tmp_path)
    assert res.returncode == 1
    # the failed job's one line, and no traceback when the sweep ends
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "val_fraction" in errors[0], res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
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
