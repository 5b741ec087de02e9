"""Every config composes, experiments hold only deltas, and objects instantiate from them."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

import depth_lightning.resolvers  # noqa: F401

CONF = Path(__file__).resolve().parents[1] / "depth_lightning" / "conf"


def options(group):
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_train(overrides=()):
    GlobalHydra.instance().clear()
    with initialize_config_module("depth_lightning.conf", version_base="1.3"):
        return compose("train", overrides=["paths.output_dir=/tmp/x", *overrides])


def test_primary_config_does_not_list_experiment():
    defaults = OmegaConf.load(CONF / "train.yaml").defaults
    groups = [next(iter(d)) if not isinstance(d, str) else d for d in defaults]
    assert "data" in groups and not any("experiment" in g for g in groups)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiments_compose_and_start_with_package_global(experiment):
    assert (CONF / "experiment" / f"{experiment}.yaml").read_text().splitlines()[0] == \
        "# @package _global_"
    cfg = compose_train([f"+experiment={experiment}"])
    OmegaConf.to_container(cfg.model, resolve=True)
    OmegaConf.to_container(cfg.data, resolve=True)


@pytest.mark.parametrize("group", ["data", "model", "trainer", "logger", "callbacks"])
def test_every_group_option_composes(group):
    for option in options(group):
        cfg = compose_train([f"{group}={option}"])
        assert cfg[group] is not None


def test_fine_experiment_carries_a_coarse_stage():
    cfg = compose_train(["+experiment=fine"])
    assert cfg.model._target_.endswith("FineStage")
    assert cfg.coarse_stage.model._target_.endswith("CoarseStage")
    assert cfg.model.coarse_ckpt is None


def test_seed_paper_experiment_keeps_the_seed_settings():
    cfg = compose_train(["+experiment=seed_paper"])
    assert cfg.data.split.kind == "seed" and cfg.data.split.subset == 800
    assert cfg.data.split.val_fraction == 0.2 and cfg.data.batch_size == 32
    assert cfg.trainer.max_epochs == 41 and cfg.coarse_stage.max_epochs == 41
    assert cfg.model.loss.lam == 0.5 and cfg.coarse_stage.model.loss.lam == 0.5
    assert cfg.data.augment.flip and cfg.data.augment.rotate == 5.0
    assert cfg.data.augment.scale is None and cfg.data.augment.color is None
    assert cfg.coarse_stage.model.init == "kaiming_xavier"
    assert cfg.coarse_stage.model.head_init == "default"
    assert cfg.model.fine_init == "default"
    assert dict(cfg.coarse_stage.model.optim.lr) == {
        "coarse1": 0.001, "coarse2": 0.001, "coarse3": 0.001, "coarse4": 0.001,
        "coarse5": 0.001, "coarse6": 0.1, "coarse7": 0.1}
    assert dict(cfg.model.optim.lr) == {"fine1": 0.001, "fine3": 0.01, "fine4": 0.001}
    s = cfg.model.scheduler
    assert (s.name, s.factor, s.patience, s.threshold) == ("plateau", 0.1, 10, 1e-4)


def test_model_and_data_instantiate_from_config():
    from hydra.utils import instantiate

    cfg = compose_train(["model.channels_last=false"])
    model = instantiate(cfg.model)
    assert type(model).__name__ == "CoarseStage"
    assert isinstance(model.hparams.optim, dict), "hparams stay primitive for weights_only"
    dm = instantiate(cfg.data)
    assert dm.batch_size == 32 and dm.augment.rotate == 5.0


def test_configs_are_packaged():
    text = (CONF.parents[1] / "pyproject.toml").read_text()
    assert 'depth_lightning = ["conf/**/*.yaml"]' in text


@pytest.mark.parametrize("preset", options("hparams_search"))
def test_hparams_search_presets_compose(preset):
    if preset == "optuna":
        pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    GlobalHydra.instance().clear()
    with initialize_config_module("depth_lightning.conf", version_base="1.3"):
        cfg = compose("train", overrides=["+experiment=coarse", f"+hparams_search={preset}"],
                      return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert len(params) >= 1
    if preset == "lambda":
        assert params["model.loss.lam"] == "0,0.5,1"
    if preset == "optuna":
        assert cfg.optimized_metric == "si_rmse_log"


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local", "submitit_slurm"])
def test_cluster_and_parallel_launchers_compose(launcher):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher" if launcher == "joblib"
                        else "hydra_plugins.hydra_submitit_launcher")
    GlobalHydra.instance().clear()
    with initialize_config_module("depth_lightning.conf", version_base="1.3"):
        cfg = compose("train", overrides=["+experiment=fine", "trainer=ddp",
                                           f"hydra/launcher={launcher}"],
                      return_hydra_config=True)
    assert launcher.split("_")[0] in cfg.hydra.launcher._target_.lower()
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.num_nodes == 1
