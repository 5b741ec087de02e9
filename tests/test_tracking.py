"""W&B settings: offline without credentials, groups and names from Hydra's folders."""

from depth_lightning.training.tracking import (
    has_wandb_credentials,
    run_name,
    start_wandb,
    sweep_group,
    wandb_offline,
)


def test_offline_without_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("NETRC", raising=False)
    assert not has_wandb_credentials() and wandb_offline()
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert has_wandb_credentials() and not wandb_offline()
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_offline()


def test_names_outside_a_hydra_job_and_other_loggers_left_alone():
    assert sweep_group() == "depth_lightning" and run_name() == "run"
    start_wandb(object(), None)  # not a WandbLogger: nothing happens


def test_each_stage_has_its_own_tags():
    from depth_lightning.training.tracking import stage_tags

    # the coarse stage of +experiment=fine is not tagged as the fine stage
    assert stage_tags(["fine"], "coarse") == ["coarse", "experiment=fine"]
    assert stage_tags(["fine"], "fine") == ["fine", "experiment=fine"]
    assert stage_tags(["seed_paper", "ablation"], "coarse") == [
        "coarse", "experiment=seed_paper", "ablation"]
    assert stage_tags([], "fine2") == ["fine2"]


def test_logger_sends_the_config_once_and_keeps_checkpoints_offline(tmp_path):
    from depth_lightning.training.tracking import WandbLogger, flat_table

    logger = WandbLogger(project="p", offline=True, log_model=True, save_dir=str(tmp_path))
    assert logger._offline and logger._log_model is True  # Lightning alone refuses this pair
    assert "anonymous" not in logger._wandb_init
    assert logger.log_hyperparams({"net": {"a": 1}}) is None and logger._experiment is None
    assert flat_table({"mean": {"rmse": 1.0}, "fine": {"delta1": 0.5}}) == {
        "final/mean/rmse": 1.0, "final/fine/delta1": 0.5}


def test_a_resumed_stage_continues_its_own_wandb_run(tmp_path):
    from depth_lightning.training.tracking import RUN_ID_FILE, WandbLogger
    from depth_lightning.training.trainer import StageContext

    stage = StageContext("coarse", tmp_path / "run" / "coarse")
    first = WandbLogger(project="p", offline=True, stage=stage)
    run_id = (stage.dir / RUN_ID_FILE).read_text().strip()
    assert first._wandb_init["id"] == run_id and first._wandb_init["resume"] == "allow"
    again = WandbLogger(project="p", offline=True, stage=stage)  # resume=RUN_DIR: same folder
    assert again._wandb_init["id"] == run_id
    other = WandbLogger(project="p", offline=True,
                        stage=StageContext("coarse", tmp_path / "run2" / "coarse"))
    assert other._wandb_init["id"] != run_id
