"""Every config composes, experiments hold only deltas, and objects instantiate from them."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

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


def test_fine_experiment_lists_two_stages():
    from depth_lightning.training.plan import plan_stages

    cfg = compose_train(["+experiment=fine"])
    specs = plan_stages(cfg)
    assert [(s.name, s.builds_on, s.max_epochs) for s in specs] == [("coarse", None, 3),
                                                                   ("fine", "coarse", 1)]
    assert specs[0].model["net"]["_target_"].endswith("CoarseNet")
    assert specs[1].model["net"]["_target_"].endswith("FineNet")
    assert "coarse_ckpt" not in specs[1].model, "the base checkpoint is the pipeline's business"
    assert cfg.model.coarse_ckpt is None and specs[0].ckpt is None
    given = plan_stages(compose_train(["+experiment=fine", "model.coarse_ckpt=/x/c.ckpt"]))
    assert given[0].ckpt == "/x/c.ckpt", "a given coarse checkpoint stands in for the stage"


def test_a_third_stage_is_a_config_file():
    from depth_lightning.training.plan import plan_stages

    specs = plan_stages(compose_train(["+experiment=fine", "stages=coarse_fine_fine"]))
    assert [(s.name, s.builds_on) for s in specs] == [("coarse", None), ("fine", "coarse"),
                                                     ("fine2", "fine")]


@pytest.mark.parametrize(("override", "message"), [
    ("stages=[]", "stages: needs a list"),
    ("stages.1.builds_on=fine3", "stages.1.builds_on: 'fine3' is not an earlier stage"),
    ("stages.1.name=coarse", "stages.1.name: 'coarse' is used twice"),
    ("trainer.max_epochs=abc", "stages.1.max_epochs (trainer.max_epochs): must be a whole"),
    ("coarse_stage.max_epochs=0", "stages.0.max_epochs (trainer.max_epochs): must be at least"),
])
def test_a_broken_stage_list_is_refused_in_one_line(override, message):
    from depth_lightning.errors import DepthLightningError
    from depth_lightning.training.plan import plan_stages

    with pytest.raises(DepthLightningError) as info:
        plan_stages(compose_train(["+experiment=fine", override]))
    assert str(info.value).startswith(message), str(info.value)


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
    assert cfg.model.net.start == "default"
    assert dict(cfg.coarse_stage.model.optim.lr) == {
        "coarse1": 0.001, "coarse2": 0.001, "coarse3": 0.001, "coarse4": 0.001,
        "coarse5": 0.001, "coarse6": 0.1, "coarse7": 0.1, "default": 0.001}
    assert dict(cfg.model.optim.lr) == {"fine1": 0.001, "fine3": 0.01, "fine4": 0.001,
                                        "default": 0.001}
    assert cfg.model.optim.momentum == 0.9 and cfg.model.optim.weight_decay == 0.0
    s = cfg.model.scheduler
    assert (s.name, s.factor, s.patience, s.threshold) == ("plateau", 0.1, 10, 1e-4)


def test_model_and_data_instantiate_from_config():
    from depth_lightning.core.plugins import build

    cfg = compose_train(["model.channels_last=false", "model.net.coarse6_units=64"])
    model = build(cfg.model, "model", name="coarse")
    assert type(model).__name__ == "CoarseStage" and type(model.net).__name__ == "CoarseNet"
    assert isinstance(model.hparams.optim, dict), "hparams stay primitive for weights_only"
    assert isinstance(model.hparams.net, dict) and model.hparams.net["coarse6_units"] == 64
    dm = build(cfg.data, "data")
    assert dm.batch_size == 32 and dm.augment.rotate == 5.0
    assert dm.source_cfg["_target_"].endswith("SynthRooms"), "the source is built on first use"


def test_every_default_lives_in_one_place():
    """The stage settings shared by coarse and fine come from model/stage.yaml alone."""
    for name in ("coarse", "fine"):
        text = (CONF / "model" / f"{name}.yaml").read_text()
        assert "- stage" in text and "lam:" not in text and "momentum" not in text


def test_configs_and_split_lists_are_packaged():
    from fnmatch import fnmatch

    import tomllib

    package = CONF.parent
    meta = tomllib.loads((package.parent / "pyproject.toml").read_text())
    patterns = meta["tool"]["setuptools"]["package-data"]["depth_lightning"]
    data = [*package.glob("conf/**/*.yaml"), *package.glob("data/lists/*.txt")]
    assert len(data) > 40
    for path in data:
        rel = path.relative_to(package).as_posix()  # "**/" also matches no folder
        assert any(fnmatch(rel, p) or fnmatch(rel, p.replace("**/", "")) for p in patterns), rel


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


def test_the_default_recipe_and_the_earlier_one():
    """+experiment=fine: AdamW coarse stage (every layer at 0.001), a gradient-matching fine
    stage; the adversarial variant and the comparison's paper row keep the scale-invariant
    loss; +experiment=fine_sgd is the earlier SGD recipe, 8 + 4 epochs."""
    cfg = compose_train(["+experiment=fine"])
    coarse = cfg.coarse_stage.model
    assert coarse.optim._target_ == "torch.optim.AdamW" and coarse.optim.momentum is None
    assert set(coarse.optim.lr.values()) == {0.001} and coarse.optim.weight_decay == 1e-4
    assert cfg.model.loss._target_.endswith("GradientMatchingLoss") and cfg.model.loss.lam == 0.5
    assert coarse.loss._target_.endswith("ScaleInvariantLoss")
    assert cfg.data.batch_size == 16 and cfg.model.optim.fused == "auto"
    assert coarse.net.dropout == 0.0 and cfg.model.net.residual
    for overrides in (["+experiment=adversarial"], ["+compare=paper"]):
        assert compose_train(overrides).model.loss._target_.endswith("ScaleInvariantLoss")
    losses = {v: compose_train([f"+compare={v}"]).model.get("loss", {}).get("_target_", "")
              for v in options("compare")}
    assert losses["gradient"].endswith("GradientMatchingLoss") and len(losses) == 4
    old = compose_train(["+experiment=fine_sgd"])
    assert old.coarse_stage.model.optim._target_ == "torch.optim.SGD"
    assert (old.coarse_stage.max_epochs, old.trainer.max_epochs, old.data.batch_size) == (8, 4, 16)
    assert old.model.loss._target_.endswith("ScaleInvariantLoss")
