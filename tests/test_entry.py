"""What the entry points share: user paths and required settings."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from depth_lightning.cli.app import discard_run_dir
from depth_lightning.core.settings import required, user_path
from depth_lightning.errors import DepthLightningError, user_error


def test_user_paths_and_required_settings(tmp_path):
    assert user_path("/abs/x") == Path("/abs/x") and user_path("rel") == Path.cwd() / "rel"
    cfg = OmegaConf.create({"ckpt_path": "???", "input": "a.jpg"})
    assert required(cfg, "input", "an image") == "a.jpg"
    with pytest.raises(DepthLightningError, match="ckpt_path: required, the checkpoint"):
        required(cfg, "ckpt_path", "the checkpoint")


def test_user_errors_are_found_behind_wrappers_and_empty_run_folders_go(tmp_path):
    inner = DepthLightningError("data.path: missing")
    try:
        try:
            raise inner
        except DepthLightningError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as outer:
        assert user_error(outer) is inner
    assert user_error(ValueError("x")) is None
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "train.log").write_text("")
    discard_run_dir(run)
    assert not run.exists()
    (tmp_path / "kept" / "coarse").mkdir(parents=True)
    discard_run_dir(tmp_path / "kept")
    assert (tmp_path / "kept").exists(), "a folder with results is never removed"
