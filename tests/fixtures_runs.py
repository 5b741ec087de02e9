"""A tiny trained run (coarse then fine, one batch each) shared by the evaluate, predict and
report tests: trained once per test session by the training job, as `make train` runs it, even
when pytest-xdist runs the tests in several workers.

Use it with `from fixtures_runs import tiny_run  # noqa: F401` in a test module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SMALL_FRAMES, made_once, run_job, small_run_args


@dataclass(frozen=True)
class TinyRun:
    run_dir: Path  # outputs/train/runs/<run>
    data_dir: Path  # the SynthRooms data it was trained on
    coarse_ckpt: Path
    fine_ckpt: Path

    def data_args(self, log_dir: Path) -> list[str]:
        """Overrides that point evaluate at the run's data and `log_dir` for its outputs."""
        return [f"paths.data_dir={self.data_dir}", f"paths.log_dir={log_dir}",
                f"data.source.frames={SMALL_FRAMES}", "data.num_workers=0"]


def _checkpoint(stage_dir: Path) -> Path:
    for name in ("best.ckpt", "last.ckpt", "final.ckpt"):
        if (stage_dir / "checkpoints" / name).is_file():
            return stage_dir / "checkpoints" / name
    raise FileNotFoundError(f"no checkpoint in {stage_dir / 'checkpoints'}")


def _train(root: Path) -> dict:
    data_dir, out = root / "data", root / "outputs"
    res = run_job("train", "+experiment=fine", "++trainer.fast_dev_run=true",
                     *small_run_args(data_dir, out, two_stage=True), cwd=root)
    assert res.returncode == 0, res.stderr[-3000:]
    (run_dir,) = sorted((out / "train" / "runs").iterdir())
    return {"run_dir": str(run_dir), "data_dir": str(data_dir),
            "coarse_ckpt": str(_checkpoint(run_dir / "coarse")),
            "fine_ckpt": str(_checkpoint(run_dir / "fine"))}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    info = made_once(tmp_path_factory, "tiny_run", _train)
    return TinyRun(**{k: Path(v) for k, v in info.items()})
