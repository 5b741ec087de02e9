"""Shared fixtures: a small SynthRooms file and a runner for the command-line entry points."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The suite runs on the packaged configs alone, whatever a developer keeps in conf/ (the user's
# own configs); the tests of that folder point at it themselves.
os.environ["DEPTH_LIGHTNING_CONF"] = str(ROOT / "tests" / "no_user_conf")
SMALL_FRAMES = 24
# coarse6 narrowed from 4096 in test runs: a full coarse checkpoint is ~600 MB with its momentum
# buffers, and CI's disk is small.
TEST_COARSE6_UNITS = 64


@pytest.fixture(scope="session")
def synth_data_dir(tmp_path_factory) -> Path:
    """A data folder holding a 24-frame SynthRooms file (each xdist worker makes its own)."""
    from depth_lightning.data.synthrooms import ensure_synthrooms

    data_dir = tmp_path_factory.mktemp("data")
    ensure_synthrooms(data_dir, n_frames=SMALL_FRAMES, seed=0)
    return data_dir


def made_once(tmp_path_factory, name: str, make: Callable[[Path], dict]) -> dict:
    """`make(folder)` run once per test session, even when pytest-xdist runs the tests in
    several workers: the first worker makes it under a lock, the others read what it wrote."""
    import json

    from depth_lightning.core.files import file_lock, write_json

    base = tmp_path_factory.getbasetemp()
    # xdist workers share the session's base folder (the parent of their own); without xdist
    # the parent is shared with other sessions, so stay in this session's folder.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    root = shared / name
    root.mkdir(exist_ok=True)
    with file_lock(shared / f"{name}.lock"):
        done = root / "made.json"
        if not done.is_file():
            write_json(done, make(root))
        return json.loads(done.read_text())


def compose(config_name: str = "train", *overrides: str):
    """A packaged config composed in-process, as the entry point would compose it (the run
    folder settings that need a running Hydra job are left unresolved)."""
    from depth_lightning.api import compose as api_compose

    return api_compose(config_name, overrides)


def data_module(data_dir: Path, *overrides: str):
    """The training data module on the small SynthRooms file of `data_dir`, built from the
    packaged config, set up for fitting."""
    from depth_lightning.core.plugins import build

    cfg = compose("train", f"paths.data_dir={data_dir}", f"data.source.frames={SMALL_FRAMES}",
                  "data.num_workers=0", *overrides)
    dm = build(cfg.data, "data")
    dm.setup("fit")
    return dm


def run_module(module: str, *args: str, cwd: Path, env: dict | None = None,
               timeout: int = 600) -> subprocess.CompletedProcess:
    """Run `python -m module args...` as a user would, capturing its output."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0",
                "WANDB_MODE": "offline", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class JobResult:
    """What a job run in this process left: its status, its captured output."""

    returncode: int
    stdout: str
    stderr: str


JOBS = {"train": "depth_lightning.training.job",
        "evaluate": "depth_lightning.evaluation.evaluate",
        "predict": "depth_lightning.inference.predict",
        "export": "depth_lightning.inference.export"}
_RUNS = itertools.count()


def run_job(command: str, *args: str, cwd: Path) -> JobResult:
    """`python -m depth_lightning.<command> args...` run in this process: the same configs and
    job, in a fresh run folder under paths.log_dir/<task>/runs/, started in `cwd`. A user error
    is status 1 and its one `error:` line; the command line itself (Hydra's parsing, exit codes,
    signals) is what the subprocess tests check."""
    import importlib

    from depth_lightning.errors import DepthLightningError, user_error

    out, err = io.StringIO(), io.StringIO()
    old_cwd = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cfg = compose(command, *args)
            log_dir = Path(cfg.paths.log_dir)
            run = (log_dir if log_dir.is_absolute() else Path(cwd) / log_dir) / cfg.task_name \
                / "runs" / f"run_{next(_RUNS):03d}"
            cfg.paths.output_dir = str(run)
            try:
                importlib.import_module(JOBS[command]).run(cfg)
                code = 0
            except DepthLightningError as e:
                print(f"error: {user_error(e)}", file=sys.stderr)
                code = 1
    finally:
        os.chdir(old_cwd)
    return JobResult(code, out.getvalue(), err.getvalue())


def small_run_args(data_dir: Path, out_dir: Path, two_stage: bool = False,
                   synthetic: bool = True) -> list[str]:
    """Overrides that make a training run tiny: small data, small batches, a narrow coarse6.

    `two_stage`: the run trains the coarse stage first (+experiment=fine or seed_paper without
    model.coarse_ckpt), whose network is configured under coarse_stage.model. `synthetic`:
    the data is the default SynthRooms source (its frame count is set; other sources have none).
    """
    model = "coarse_stage.model" if two_stage else "model"
    frames = [f"data.source.frames={SMALL_FRAMES}"] if synthetic else []
    return [f"paths.data_dir={data_dir}", f"paths.log_dir={out_dir}", *frames,
            "data.batch_size=4", "data.eval_batch_size=8", "data.num_workers=0",
            "callbacks.progress_bar=null", f"{model}.net.coarse6_units={TEST_COARSE6_UNITS}"]


def assert_one_line_error(res: subprocess.CompletedProcess | JobResult, *needles: str) -> None:
    """A refused command: non-zero exit, exactly one `error:` line holding `needles`, no
    traceback."""
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, res.stderr[-3000:]
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    for n in needles:
        assert n in lines[0], lines[0]
