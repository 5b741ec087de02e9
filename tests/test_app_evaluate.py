"""evaluate scores the data a checkpoint was trained on, without repeating `data=`."""

from __future__ import annotations

import json
import math

import pytest
from conftest import SMALL_FRAMES, compose, run_job
from fixtures_app import write_tiny_checkpoints

from depth_lightning.core.plugins import build
from depth_lightning.evaluation.evaluate import data_config, run
from depth_lightning.evaluation.metrics import METRIC_KEYS


def synth_settings(data_dir, *overrides: str) -> dict:
    cfg = compose("train", f"paths.data_dir={data_dir}", f"data.source.frames={SMALL_FRAMES}",
                  "data.num_workers=0", *overrides)
    return build(cfg.data, "data").settings


def test_saved_data_settings_take_command_line_data_overrides(synth_data_dir, tmp_path):
    saved = synth_settings(synth_data_dir)
    cfg = compose("evaluate", "ckpt_path=x", "data.eval_batch_size=3", "~data.seed")
    data, why = data_config(cfg, saved, ["ckpt_path=x", "data.eval_batch_size=3", "~data.seed"])
    assert data.source.frames == SMALL_FRAMES and data.eval_batch_size == 3 and "seed" not in data
    assert why == "saved in the checkpoint, with data.eval_batch_size, data.seed"
    data, why = data_config(cfg, saved, ["data=synthetic", "data.eval_batch_size=3"])
    assert data.source.frames == 2000 and why == "data= on the command line"
    data, why = data_config(cfg, None, [])
    assert data.source.frames == 2000 and "saves no data settings" in why


def test_the_mean_is_left_out_where_training_and_validation_coincide(synth_data_dir, tmp_path,
                                                                     monkeypatch):
    saved = synth_settings(synth_data_dir, "data.split.kind=all")
    coarse, _ = write_tiny_checkpoints(tmp_path, data=saved)
    monkeypatch.chdir(tmp_path)
    cfg = compose("evaluate", f"ckpt_path={coarse}", f"paths.output_dir={tmp_path / 'run'}",
                  "figure.n=0")
    metrics = run(cfg)  # the default data is 2000 SynthRooms frames: this must not use it
    assert list(metrics) == ["coarse", "constant"]
    table = (tmp_path / "run" / "table.md").read_text()
    assert f"on the {SMALL_FRAMES} validation frames" in table
    assert f"Mean left out: {SMALL_FRAMES} of the validation frames are also training" in table
    assert "saved in the checkpoint" in table


@pytest.mark.slow
def test_evaluate_a_nyu_v2_run_without_repeating_data(tmp_path):
    from nyu_files import write_nyu_v2
    from test_nyu_runs import V2_SCENES, run_dirs, train, v2_frames, write_splits

    images, depths, raws = v2_frames()
    path = write_nyu_v2(tmp_path / "nyu_depth_v2_labeled.mat", images, depths, raws, V2_SCENES)
    splits = write_splits(tmp_path / "splits.mat", [1, 2, 4, 5, 6], [3, 7, 8])
    res, out = train(tmp_path, "data=nyu_v2", f"data.path={path}", f"data.split.file={splits}")
    assert res.returncode == 0, res.stderr[-3000:]
    (trained,) = run_dirs(out)
    ckpt = sorted(trained.glob("coarse/checkpoints/*.ckpt"))[0]
    log_dir = tmp_path / "eval_outputs"
    res = run_job("evaluate", f"ckpt_path={ckpt}", f"paths.log_dir={log_dir}",
                     "figure.n=0", cwd=tmp_path)  # no data=: the checkpoint says
    assert res.returncode == 0, res.stderr[-3000:]
    assert "on the 3 validation frames" in res.stdout and str(path) in res.stdout
    assert "(data saved in the checkpoint)" in res.stdout
    assert "Mean: the per-pixel mean of the 5 training depth maps" in res.stdout
    (eval_run,) = sorted((log_dir / "evaluate" / "runs").iterdir())
    metrics = json.loads((eval_run / "metrics.json").read_text())
    trained_metrics = json.loads((trained / "metrics.json").read_text())
    assert set(metrics) == {"mean", "coarse", "constant"}
    assert all(math.isfinite(values[k]) for values in metrics.values() for k in METRIC_KEYS)
    # the same 3 frames as the training's validation: the Mean's score agrees closely
    assert metrics["mean"]["si_rmse_log"] == pytest.approx(
        trained_metrics["mean"]["si_rmse_log"], rel=0.05)
