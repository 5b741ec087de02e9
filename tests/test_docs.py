"""The README and the documentation site: their worked examples run as written (the outside
plug-ins, the third stage, the Python API), every Python block parses, the site builds in strict
mode, and they speak of the project alone."""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from conftest import run_module, small_run_args
from fixtures_app import tiny_ckpts  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
README = "\n".join(p.read_text() for p in PAGES)  # every page: examples may live in any


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


def test_the_readme_is_read_in_five_minutes():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_python_block_parses(page):
    import ast

    for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S):
        ast.parse(block)


def test_the_readmes_python_example_runs(tiny_ckpts, tmp_path, monkeypatch):  # noqa: F811
    import numpy as np
    from PIL import Image

    readme = (ROOT / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S)
                if b.startswith("from depth_lightning import DepthPredictor")]
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    code = block.replace("outputs/train/runs/<run>/fine/checkpoints/best.ckpt",
                         str(tiny_ckpts[1]))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["depth"].shape == (120, 160) and set(scope["maps"]) == {"coarse", "fine"}
    again = scope["DepthPredictor"].from_checkpoint(tmp_path / "model.safetensors")
    assert np.array_equal(again("photo.jpg"), scope["depth"])


def test_the_site_builds_in_strict_mode(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    res = run_module("mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"),
                     cwd=ROOT, env={"NO_MKDOCS_2_WARNING": "1"})
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "site" / "experiments" / "kitti-samples" / "index.html").is_file()


# What a clone of this repository has no way to follow: work items, notes, folders beside it.
OUTSIDE = re.compile(r"\b(issues?|briefs?|sessions?|steering|closing notes?)\b|\.\./shared|"
                     r"shared/data|(?-i:REFERENCE\.md|DESIGN\.md)", re.I)


def _prose(path: Path) -> str:
    """A file's words for readers: all of a page or config, a module's docstrings and
    comments."""
    import io
    import tokenize

    if path.suffix != ".py":
        return path.read_text()
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        text = tok.string.lstrip("rbuRBU")
        if tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and
                                            text.startswith(('"""', "'''"))):
            out.append(tok.string)
    return "\n".join(out)


def test_the_docs_configs_and_docstrings_speak_of_the_project_alone():
    package = ROOT / "depth_lightning"
    files = [*PAGES, ROOT / "CHANGELOG.md", ROOT / "CITATION.cff", ROOT / "Makefile",
             ROOT / "pyproject.toml", ROOT / "conf" / "README.md", *package.rglob("*.yaml"),
             *package.rglob("*.py"), *(ROOT / "conf").rglob("*.yaml")]
    found = [f"{f.relative_to(ROOT)}: {m.group(0)!r}" for f in files
             for m in OUTSIDE.finditer(_prose(f))]
    assert not found, found
