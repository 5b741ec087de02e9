"""What a run prints: one line per epoch in a log file, the closing lines, no Lightning chatter
(while the user's own warnings still show), `--help` of each entry point, debug configs."""

import json
import logging
import warnings

import pytest
from conftest import run_module, small_run_args

from depth_lightning.cli.console import ConsoleEvents
from depth_lightning.training.trainer import quiet_lightning

NOISE = ("💡 Tip", "litlogger", "GPU available", "TPU available", "HPU available",
         "Loading `train_dataloader`", "LeafSpec", "module(s) in eval mode")


@pytest.mark.cli
def test_a_logged_run_has_one_line_per_epoch_closing_lines_and_no_noise(synth_data_dir,
                                                                        tmp_path):
    out = tmp_path / "outputs"
    args = [a for a in small_run_args(synth_data_dir, out, two_stage=True)
            if not a.startswith("callbacks.progress_bar")]
    res = run_module("depth_lightning.train", "+experiment=fine", "debug=limit",
                     "++debug.trainer.max_epochs=2", "++debug.trainer.limit_train_batches=1",
                     "++debug.trainer.limit_val_batches=1", *args, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    for needle in NOISE:
        assert needle not in res.stderr + res.stdout, needle
    lines = res.stdout.splitlines()
    epochs = [ln for ln in lines if " epoch " in ln and "val/si_rmse_log" in ln]
    assert [ln.split("  ")[0] for ln in epochs] == ["coarse epoch 0/1", "coarse epoch 1/1",
                                                   "fine epoch 0/1", "fine epoch 1/1"]
    assert all("best " in ln and ln.endswith(" s") for ln in epochs)
    (run,) = (out / "debug" / "runs").iterdir()
    best = run / "fine" / "checkpoints" / "best.ckpt"
    tail = "\n".join(lines[-8:])
    assert f"run folder:       {run.relative_to(tmp_path)}" in tail
    assert f"best checkpoint:  {best.relative_to(tmp_path)}" in tail
    assert f"python -m depth_lightning.evaluate ckpt_path={best.relative_to(tmp_path)}" in tail
    assert f"python -m depth_lightning.report {run.relative_to(tmp_path)}" in tail
    assert "coarse stage done" in res.stdout and f"resume={run.relative_to(tmp_path)}" in \
        res.stdout
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"mean", "coarse", "fine"}


def test_quiet_lightning_drops_its_lines_only(caplog):
    quiet_lightning()
    quiet_lightning()  # idempotent
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    assert len(logger.filters) == len({type(f) for f in logger.filters})
    record = logging.LogRecord("x", logging.INFO, "", 0, "GPU available: False, used: False",
                               None, None)
    kept = logging.LogRecord("x", logging.INFO, "", 0, "Restoring states from the checkpoint",
                             None, None)
    assert [f.filter(record) for f in logger.filters] == [False]
    assert [f.filter(kept) for f in logger.filters] == [True]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        quiet_lightning()
        warnings.warn("my own warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["my own warning"]


def test_stage_done_names_the_folder_checkpoint_and_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "outputs" / "train" / "runs" / "r1"
    ConsoleEvents().stage_done("coarse", run, str(run / "coarse/checkpoints/best.ckpt"),
               {"mean": {"si_rmse_log": 0.3}, "coarse": {"si_rmse_log": 0.25}})
    text = capsys.readouterr().out
    assert "run folder:       outputs/train/runs/r1" in text
    assert "resume=outputs/train/runs/r1" in text
    assert "0.2500" in text and "0.3000" in text


@pytest.mark.cli
@pytest.mark.parametrize("module,own,foreign", [
    ("depth_lightning.train", ["debug:", "experiment:", "stages:", "local:"], ["eval:"]),
    ("depth_lightning.evaluate", ["data:", "eval:"], ["experiment:", "stages:", "debug:"]),
    ("depth_lightning.predict", ["paths:"], ["experiment:", "eval:", "data:", "trainer:"]),
])
def test_help_describes_the_command_and_lists_its_own_groups(tmp_path, module, own, foreign):
    res = run_module(module, "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    first = res.stdout.splitlines()
    assert first[0].startswith(f"python -m {module} ")
    assert len(" ".join(first[2:6])) > 150, "a paragraph saying what it does"
    groups = [ln.split()[0] for ln in first if ln.startswith("  ") and ln.split()[0].endswith(":")]
    assert set(own) <= set(groups) and not set(foreign) & set(groups), groups
    assert "Powered by Hydra" not in res.stdout


@pytest.mark.cli
def test_a_bare_train_says_which_experiment_it_runs(tmp_path, synth_data_dir):
    res = run_module("depth_lightning.train", "debug=fdr", *small_run_args(synth_data_dir,
                     tmp_path / "outputs"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "No +experiment= given: training the coarse stage alone" in res.stdout
    (run,) = (tmp_path / "outputs" / "debug" / "runs").iterdir()
    assert set(json.loads((run / "metrics.json").read_text())) == {"mean", "coarse"}


def test_paths_holding_an_equals_sign_reach_the_config_intact():
    # a multirun job's folder is named like `0_seed=0`: the printed evaluate/resume commands
    # pass such paths, and Hydra's grammar rejects an unquoted `=` in a value
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from depth_lightning.cli.app import quote_values

    path = "outputs/train/multiruns/2026-12-07_19-53-06_f30e4c/0_seed=0/fine/checkpoints/best.ckpt"
    args = [f"ckpt_path={path}", f"+resume={path}", "seed=0,1,2", "model.optim.lr={a: 1}",
            "data.root='x=y'", "trainer.max_epochs=2"]
    parsed = OverridesParser.create().parse_overrides(quote_values(args))
    assert [o.key_or_group for o in parsed] == ["ckpt_path", "resume", "seed", "model.optim.lr",
                                                "data.root", "trainer.max_epochs"]
    assert parsed[0].value() == parsed[1].value() == path
    assert parsed[4].value() == "x=y" and parsed[5].value() == 2
    assert quote_values(args)[2:] == args[2:]  # nothing else changes
    with pytest.raises(Exception, match="mismatched input"):
        OverridesParser.create().parse_overrides([f"ckpt_path={path}"])
