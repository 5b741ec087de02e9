"""End to end: the train command as a user runs it, on a small SynthRooms file."""

import json
from pathlib import Path

import pytest
import torch
from conftest import assert_one_line_error, run_job, small_run_args

METRICS = {"delta1", "delta2", "delta3", "abs_rel", "sq_rel", "rmse", "rmse_log",
           "si_rmse_log", "log10"}


def run_dirs(out_dir: Path) -> list[Path]:
    return sorted(p for p in (out_dir / "train" / "runs").glob("*") if p.is_dir())


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["coarse", "fine", "seed_paper"])
def test_fast_dev_run_of_each_experiment(experiment, synth_data_dir, tmp_path):
    out = tmp_path / "outputs"
    res = run_job("train", f"+experiment={experiment}",
                     "++trainer.fast_dev_run=true",
                     *small_run_args(synth_data_dir, out, two_stage=experiment != "coarse"),
                     cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = run_dirs(out)
    metrics = json.loads((run / "metrics.json").read_text())
    stages = {"coarse": {"mean", "coarse"}}.get(experiment, {"mean", "coarse", "fine"})
    assert set(metrics) == stages
    for values in metrics.values():
        assert METRICS <= set(values)
    assert (run / "config.yaml").is_file()


@pytest.mark.slow
def test_full_run_writes_checkpoints_curves_and_a_reloadable_fine_model(synth_data_dir,
                                                                        tmp_path):
    out = tmp_path / "outputs"
    res = run_job("train", "+experiment=fine", "trainer.max_epochs=2",
                     "coarse_stage.max_epochs=2",
                     *small_run_args(synth_data_dir, out, two_stage=True), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = run_dirs(out)
    for stage in ("coarse", "fine"):
        assert (run / stage / "checkpoints" / "best.ckpt").is_file()
        assert (run / stage / "checkpoints" / "last.ckpt").is_file()
        rows = (run / stage / "epochs.csv").read_text().splitlines()
        assert len(rows) == 3 and "val/si_rmse_log" in rows[0]
        assert (run / stage / "curves.png").read_bytes()[:4] == b"\x89PNG"
        panels = sorted((run / stage / "panels").glob("epoch_*.png"))
        assert [p.name for p in panels] == ["epoch_000.png", "epoch_001.png"]
    metrics = json.loads((run / "metrics.json").read_text())
    from depth_lightning.models.checkpoints import load_stage

    fine = load_stage(run / "fine" / "checkpoints" / "best.ckpt")
    assert fine.columns == ("coarse", "fine") and isinstance(fine.base, torch.nn.Module)
    assert metrics["fine"]["si_rmse_log"] > 0
    # the fine stage can also start from the coarse checkpoint of that run
    res = run_job("train", "+experiment=fine", "++trainer.fast_dev_run=true",
                     f"model.coarse_ckpt={run / 'coarse' / 'checkpoints' / 'best.ckpt'}",
                     *small_run_args(synth_data_dir, out, two_stage=True), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    latest = json.loads((run_dirs(out)[-1] / "metrics.json").read_text())
    assert latest["coarse"]["si_rmse_log"] == pytest.approx(metrics["coarse"]["si_rmse_log"],
                                                            rel=1e-6)


def test_missing_data_path_is_one_line_and_writes_nothing(synth_data_dir, tmp_path):
    out = tmp_path / "outputs"
    missing = tmp_path / "nope.mat"
    res = run_job("train", "data=nyu_v2", f"data.path={missing}",
                     *small_run_args(synth_data_dir, out, synthetic=False), cwd=tmp_path)
    assert_one_line_error(res, "data.path", "nope.mat", "does not exist")
    assert run_dirs(out) == [] if out.exists() else True


def test_file_without_expected_keys_is_one_line(synth_data_dir, tmp_path):
    import h5py
    import numpy as np

    bad = tmp_path / "nokeys.mat"
    with h5py.File(bad, "w") as f:
        f["depths"] = np.zeros((2, 640, 480), np.float32)
    res = run_job("train", "data=nyu_v2", f"data.path={bad}",
                     *small_run_args(synth_data_dir, tmp_path / "outputs", synthetic=False),
                     cwd=tmp_path)
    assert_one_line_error(res, "nokeys.mat", "images")
    assert not list(tmp_path.glob("*.cache-*")) and not list(tmp_path.glob("*.tmp*"))


def test_unreadable_data_file_is_one_line(synth_data_dir, tmp_path):
    bad = tmp_path / "text.mat"
    bad.write_text("not hdf5")
    res = run_job("train", "data=nyu_v2", f"data.path={bad}",
                     *small_run_args(synth_data_dir, tmp_path / "outputs", synthetic=False),
                     cwd=tmp_path)
    assert_one_line_error(res, "text.mat")


def test_coarse_ckpt_that_is_not_a_coarse_checkpoint(synth_data_dir, tmp_path):
    bad = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {"x": torch.zeros(1)}}, bad)
    out = tmp_path / "outputs"
    res = run_job("train", "+experiment=fine", f"model.coarse_ckpt={bad}",
                     *small_run_args(synth_data_dir, out, two_stage=True), cwd=tmp_path)
    assert_one_line_error(res, "model.coarse_ckpt", "weights.ckpt",
                          "not a depth_lightning checkpoint")
    assert run_dirs(out) == [] if out.exists() else True


RUN_DIR_SCRIPT = """
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from depth_lightning.cli.resolvers import register_resolvers
register_resolvers()
with initialize_config_module("depth_lightning.conf", version_base="1.3"):
    cfg = compose("train", return_hydra_config=True)
print(OmegaConf.select(cfg, "hydra.run.dir"), OmegaConf.select(cfg, "hydra.sweep.dir"))
"""


def test_two_runs_in_the_same_second_get_different_folders(tmp_path):
    import subprocess
    import sys

    # Two processes started together resolve Hydra's run folder in the same second.
    procs = [subprocess.Popen([sys.executable, "-c", RUN_DIR_SCRIPT], cwd=tmp_path,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    dirs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(len(d) == 2 and d[0].startswith("./outputs/train/runs/") for d in dirs), dirs
    assert dirs[0][0] != dirs[1][0] and dirs[0][1] != dirs[1][1]


@pytest.mark.slow
def test_a_third_stage_from_a_config_file_trains(synth_data_dir, tmp_path):
    out = tmp_path / "outputs"
    res = run_job("train", "+experiment=fine", "stages=coarse_fine_fine",
                     "++trainer.fast_dev_run=true",
                     *small_run_args(synth_data_dir, out, two_stage=True), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = run_dirs(out)
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics) == ["mean", "coarse", "fine", "fine2"]
    assert {p.name for p in run.iterdir() if p.is_dir()} >= {"coarse", "fine", "fine2"}
    from depth_lightning.models.checkpoints import load_stage

    (ckpt,) = (run / "fine2" / "checkpoints").glob("*.ckpt")
    third = load_stage(ckpt)
    assert third.columns == ("coarse", "fine", "fine2")


def test_a_broken_network_of_a_later_stage_is_refused_before_training(synth_data_dir, tmp_path):
    out = tmp_path / "outputs"
    res = run_job("train", "+experiment=fine", "model.net._target_=nope.Net",
                     *small_run_args(synth_data_dir, out, two_stage=True), cwd=tmp_path)
    assert_one_line_error(res, "model.net: nope.Net: cannot import")
    assert not (out / "train" / "runs").exists() or run_dirs(out) == []
