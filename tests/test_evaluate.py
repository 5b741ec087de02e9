"""The evaluate command end to end: the Eigen 2014 table at 640x480, files, errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_job
from fixtures_runs import tiny_run  # noqa: F401

from depth_lightning.evaluation.metrics import METRIC_KEYS
from depth_lightning.evaluation.metrics.boundary import BOUNDARY_KEYS


# -- the command ----------------------------------------------------------------------------
def one_error_line(res) -> str:
    assert res.returncode == 1, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    return lines[0]


def eval_runs(log_dir: Path) -> list[Path]:
    runs = log_dir / "evaluate" / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


@pytest.mark.slow  # scores a real checkpoint at 640x480
def test_evaluate_fine_checkpoint_eigen2014(tiny_run, tmp_path):  # noqa: F811
    log_dir = tmp_path / "outputs"
    res = run_job("evaluate", f"ckpt_path={tiny_run.fine_ckpt}",
                     *tiny_run.data_args(log_dir), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = eval_runs(log_dir)
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics) == ["mean", "coarse", "fine", "constant"]
    for column, values in metrics.items():
        assert list(values) == [*METRIC_KEYS, *BOUNDARY_KEYS]
        assert all(np.isfinite(values[k]) for k in METRIC_KEYS)
        if column in ("coarse", "fine"):  # a constant map has no edges: its precision is nan
            assert 0 <= values["edge_recall"] <= 1
    # nearest upsampling of the prediction at 640x480 vs the training's 55x74 targets: the paper
    # found < 1 % difference; the tiny run agrees within a few percent
    trained = json.loads((tiny_run.run_dir / "metrics.json").read_text())
    for col in ("mean", "coarse", "fine"):
        assert metrics[col]["si_rmse_log"] == pytest.approx(trained[col]["si_rmse_log"], rel=0.03)
    table = (run / "table.md").read_text()
    assert "| | Mean | Coarse | Coarse+Fine | Constant |" in table
    assert "RMSE (log, scale inv.)" in table and "si_rmse_log relative to Constant" in table
    assert "eigen2014" in table and table.count("\n| ") == 11  # nine metrics, boundary F
    assert "| | Mean | Coarse | Coarse+Fine | Constant |" in res.stdout  # printed too
    figure = run / "figure3.png"
    from PIL import Image

    with Image.open(figure) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert figure.stat().st_size > 50_000 and pixels.shape[0] > 500 and pixels.shape[1] > 800
    assert pixels.std() > 20  # panels drawn, not a blank canvas
    assert not list(run.glob(".*.tmp"))


def test_evaluate_coarse_checkpoint_bts_in_process(tiny_run, tmp_path, monkeypatch,  # noqa: F811
                                                   capsys):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from depth_lightning.evaluation.evaluate import run

    # in this process, to spare a second start-up of torch and Lightning; a relative ckpt_path
    # is taken from the starting directory
    (tmp_path / "ckpts").mkdir()
    (tmp_path / "ckpts" / "coarse.ckpt").symlink_to(tiny_run.coarse_ckpt)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    GlobalHydra.instance().clear()
    with initialize_config_module("depth_lightning.conf", version_base="1.3"):
        cfg = compose("evaluate", overrides=[
            "ckpt_path=ckpts/coarse.ckpt", "eval=bts", "figure.frames=[0,2]",
            f"paths.output_dir={out}", *tiny_run.data_args(tmp_path / "outputs")])
    metrics = run(cfg)
    assert list(metrics) == ["mean", "coarse", "constant"]
    written = json.loads((out / "metrics.json").read_text())
    assert all(written[c] == pytest.approx(metrics[c], nan_ok=True) for c in metrics)
    # a constant map has no depth steps: its boundary precision is nan, the nine are finite
    assert all(np.isfinite(c[k]) for c in metrics.values() for k in METRIC_KEYS)
    table = (out / "table.md").read_text()
    assert "bts: rawDepths, bilinear" in table and "| | Mean | Coarse | Constant |\n" in table
    assert (out / "figure3.png").is_file()
    assert "| | Mean | Coarse |" in capsys.readouterr().out


def test_evaluate_missing_checkpoint_is_one_line(tiny_run, tmp_path):  # noqa: F811
    log_dir = tmp_path / "outputs"
    res = run_job("evaluate", "ckpt_path=nope/missing.ckpt",
                     *tiny_run.data_args(log_dir), cwd=tmp_path)
    line = one_error_line(res)
    assert "ckpt_path" in line and str(tmp_path / "nope" / "missing.ckpt") in line
    assert eval_runs(log_dir) == []  # nothing half-written
