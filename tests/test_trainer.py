"""The Trainer of a stage is built for an explicit stage context: everything it writes goes
into that stage's folder, and nothing is written into the run's config."""

from pathlib import Path

from conftest import compose

from depth_lightning.training.callbacks import EpochTable
from depth_lightning.training.checkpointing import StageCheckpoint
from depth_lightning.training.trainer import StageContext, build_trainer, trainer_settings


def test_a_stage_trainer_writes_into_the_stage_folder(tmp_path):
    cfg = compose("train", "callbacks.progress_bar=null", f"paths.log_dir={tmp_path}")
    cfg.paths.output_dir = str(tmp_path / "run")
    before = dict(cfg)
    stage = StageContext("fine", tmp_path / "run" / "fine", {"mean": 0.3, "coarse": 0.2})
    trainer = build_trainer(cfg, stage, max_epochs=2)
    assert Path(trainer.default_root_dir) == stage.dir
    (ckpt,) = [cb for cb in trainer.callbacks if isinstance(cb, StageCheckpoint)]
    assert Path(ckpt.dirpath) == stage.dir / "checkpoints" and ckpt.filename == "best"
    (table,) = [cb for cb in trainer.callbacks if isinstance(cb, EpochTable)]
    assert table.dirpath == stage.dir and table.references == {"mean": 0.3, "coarse": 0.2}
    assert Path(trainer.loggers[0].save_dir) == stage.dir  # the CSV log: <stage>/csv
    assert dict(cfg) == before and "stage" not in cfg


def test_a_profiler_without_a_folder_writes_into_the_stage_folder(tmp_path):
    cfg = compose("train", "debug=profiler")
    cfg.paths.output_dir = str(tmp_path)
    settings = trainer_settings(cfg, 1, tmp_path / "coarse")
    assert settings["profiler"]["dirpath"] == str(tmp_path / "coarse")
    assert settings["max_epochs"] == 1 and settings["default_root_dir"] == str(tmp_path / "coarse")


def test_the_wandb_logger_is_named_by_its_stage(tmp_path, monkeypatch):
    from depth_lightning.training.tracking import WandbLogger

    monkeypatch.setenv("WANDB_MODE", "offline")
    stage = StageContext("coarse", tmp_path / "coarse")
    logger = WandbLogger(stage=stage, project="p", tags=["fine", "mine"], offline=True)
    init = logger._wandb_init
    assert init["name"].endswith("(coarse)") and init["job_type"] == "coarse"
    assert init["tags"] == ["coarse", "experiment=fine", "mine"]
    assert Path(init["dir"]) == stage.dir
