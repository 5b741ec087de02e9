"""W&B settings: offline without credentials, groups and names from Hydra's folders."""

from depth_lightning.tracking import (
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
