"""The README's worked examples run as written: the outside plug-ins and the third stage."""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from conftest import run_module, small_run_args

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def block_starting(language: str, first_line: str) -> str:
    (block,) = [b for b in code_blocks(language) if b.startswith(first_line)]
    return block


def command_with(word: str) -> list[str]:
    (line,) = [ln for b in code_blocks("bash") for ln in b.splitlines() if word in ln]
    return shlex.split(line)


@pytest.mark.slow
def test_the_outside_plug_ins_of_the_readme_train(tmp_path):
    (tmp_path / "ext.py").write_text(block_starting("python", "# ext.py"))
    words = command_with("ext.TinyNet")
    assert words[:4] == ["PYTHONPATH=.", "python", "-m", "depth_lightning.train"]
    res = run_module("depth_lightning.train", *words[4:], cwd=tmp_path,
                     env={"PYTHONPATH": str(tmp_path)})
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (tmp_path / "outputs" / "train" / "runs").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert list(metrics) == ["mean", "coarse"] and metrics["coarse"]["si_rmse_log"] > 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["net"]["_target_"] == "ext.TinyNet"
    assert not list((tmp_path / "data" / "cache").glob("*")), "the run cache is removed"


def test_the_third_stage_of_the_readme_is_the_packaged_config():
    shown = yaml.safe_load(block_starting("yaml", "# @package _global_\n# Three stages"))
    packaged = yaml.safe_load((ROOT / "depth_lightning" / "conf" / "stages" /
                               "coarse_fine_fine.yaml").read_text())
    assert shown == packaged


@pytest.mark.slow
def test_the_third_stage_command_of_the_readme_trains(synth_data_dir, tmp_path):
    words = command_with("stages=coarse_fine_fine")
    out = tmp_path / "outputs"
    res = run_module("depth_lightning.train", *words[3:],
                     *small_run_args(synth_data_dir, out, two_stage=True), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    (run,) = (out / "train" / "runs").iterdir()
    assert list(json.loads((run / "metrics.json").read_text())) == ["mean", "coarse", "fine",
                                                                     "fine2"]
