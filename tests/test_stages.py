"""The training stage: optimiser groups, the frozen chain, checkpoints, the plug-in checks."""

import lightning as L
import pytest
import torch
from conftest import TEST_COARSE6_UNITS, compose
from torch import nn
from torch.utils.data import DataLoader

from depth_lightning.core.plugins import build
from depth_lightning.errors import DepthLightningError
from depth_lightning.models import DepthStage, FineStage
from depth_lightning.models.checkpoints import load_stage
from depth_lightning.models.optim import build_optimizer
from depth_lightning.training.plan import plan_stages

IMAGE = (3, 228, 304)


def stage_configs(*overrides: str) -> dict[str, dict]:
    """Each stage's module config of the composed train config, by stage name."""
    cfg = compose("train", "model.scheduler.name=none", *overrides)
    return {s.name: s.model for s in plan_stages(cfg)}


def coarse_stage(*overrides: str) -> DepthStage:
    model = stage_configs(f"model.net.coarse6_units={TEST_COARSE6_UNITS}", *overrides)["coarse"]
    return build(model, "model", name="coarse")


def random_batches(n=4, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n * batch):
        depth = torch.rand(1, 55, 74, generator=g) * 5 + 0.5
        depth[:, :3] = 0
        items.append({"image": torch.randint(0, 256, IMAGE, dtype=torch.uint8, generator=g),
                      "depth": depth, "index": i})
    return DataLoader(items, batch_size=batch)


def fit(model, tmp_path, epochs=1):
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, num_sanity_val_steps=0)
    trainer.fit(model, random_batches(), random_batches(2, seed=1))
    return trainer


def learning_rates(model: DepthStage) -> dict[str, float]:
    opt = build_optimizer(model.net, model.hparams.optim)
    assert isinstance(opt, torch.optim.SGD) and all(g["momentum"] == 0.9 for g in opt.param_groups)
    return {g["name"]: g["lr"] for g in opt.param_groups}


@pytest.fixture(scope="module")
def coarse_ckpt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coarse")
    trainer = fit(coarse_stage(), tmp)
    path = tmp / "coarse.ckpt"
    trainer.save_checkpoint(path)
    return path


def fine_stage(coarse_ckpt, *overrides: str) -> DepthStage:
    model = stage_configs("stages=coarse_fine", *overrides)["fine"]
    return build(model, "model", name="fine", base_ckpt=str(coarse_ckpt))


def test_coarse_optimizer_groups_carry_the_seed_learning_rates():
    model = coarse_stage()
    assert learning_rates(model) == {"coarse1": 0.001, "coarse2": 0.001, "coarse3": 0.001,
                                     "coarse4": 0.001, "coarse5": 0.001, "coarse6": 0.1,
                                     "coarse7": 0.1}
    opt = build_optimizer(model.net, model.hparams.optim)
    n_params = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_params == sum(p.numel() for p in model.net.parameters())


def test_fine_optimizer_groups_train_only_the_fine_network(coarse_ckpt):
    model = fine_stage(coarse_ckpt)
    assert learning_rates(model) == {"fine1": 0.001, "fine3": 0.01, "fine4": 0.001}
    assert model.columns == ("coarse", "fine")
    assert not any(p.requires_grad for p in model.base.parameters())
    opt = build_optimizer(model.net, model.hparams.optim)
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not trained & {id(p) for p in model.base.parameters()}


def test_a_network_from_outside_trains_at_the_default_learning_rate():
    class Outside(nn.Module):
        def __init__(self, **unused):
            super().__init__()
            self.body = nn.Conv2d(3, 1, 3, padding=1)

        def forward(self, x):
            return nn.functional.adaptive_avg_pool2d(self.body(x), (55, 74))

    import sys
    import types

    sys.modules["outside_net"] = types.ModuleType("outside_net")
    sys.modules["outside_net"].Outside = Outside
    model = coarse_stage("model.net._target_=outside_net.Outside", "model.optim.lr.default=0.02")
    assert learning_rates(model) == {"body": 0.02}


def test_training_the_fine_stage_leaves_the_coarse_weights_bitwise_unchanged(coarse_ckpt,
                                                                             tmp_path):
    model = fine_stage(coarse_ckpt)
    before = {k: v.clone() for k, v in model.base.state_dict().items()}
    fine_before = model.net.fine3.weight.detach().clone()
    fit(model, tmp_path)
    assert not model.base.training, "the frozen coarse network stays in eval mode"
    for k, v in model.base.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(model.net.fine3.weight.detach(), fine_before), "fine did train"


def test_a_fine_checkpoint_reloads_alone_with_its_frozen_coarse(coarse_ckpt, tmp_path):
    coarse = load_stage(coarse_ckpt)
    x = torch.randint(0, 256, (2, *IMAGE), dtype=torch.uint8)
    fine = fine_stage(coarse_ckpt)
    trainer = fit(fine, tmp_path)
    path = tmp_path / "fine.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)  # no pickled objects in it
    info = raw["depth_lightning"]
    assert (info["stage"], info["format"], info["columns"]) == ("fine", 2, ["coarse", "fine"])
    assert "base_ckpt" not in raw["hyper_parameters"], "the coarse file is not needed again"
    reloaded = load_stage(path)
    fine.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), fine(x))
        both = reloaded.log_depths(reloaded.prepare(x))
        torch.testing.assert_close(both["coarse"], coarse(x))
    assert FineStage.load_from_checkpoint(path).columns == ("coarse", "fine")


def test_the_frozen_coarse_runs_from_a_bf16_copy_that_matches_autocast_bitwise(coarse_ckpt):
    fine = fine_stage(coarse_ckpt).eval()
    x = fine.prepare(torch.randint(0, 256, (2, *IMAGE), dtype=torch.uint8))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        used = fine._frozen_base(x)
        assert used is not fine.base and next(used.parameters()).dtype == torch.bfloat16
        # the copy's output equals autocast's own casts of the fp32 weights
        assert torch.equal(used(x)["coarse"], fine.base(x)["coarse"])
    with torch.no_grad():
        assert fine._frozen_base(x) is fine.base, "fp32 runs use the weights themselves"
    assert not any("copy" in k for k in fine.state_dict()), "the copy is never saved"
    other = coarse_stage().eval()
    fine.base.nets[0].load_state_dict(other.net.state_dict())  # new weights, loaded in place
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(fine._frozen_base(x)(x)["coarse"], other.net(x))


class WrongShape(nn.Module):
    def __init__(self, **unused):
        super().__init__()
        self.head = nn.Conv2d(3, 1, 1)

    def forward(self, x):
        return self.head(x)  # (B,1,228,304): not 55x74


class VectorLoss:
    def __init__(self, **unused):
        pass

    def __call__(self, log_pred, depth, mask):
        return (log_pred - depth).flatten()


@pytest.mark.parametrize(("override", "message"), [
    ("model.net._target_=test_stages.WrongShape", "model.net: returned shape (1, 1, 228, 304)"),
    ("model.net._target_=depth_lightning.nets.FineNet",
     "model.net: depth_lightning.nets.FineNet: FineNet.__init__() got an unexpected keyword"),
    ("model.net._target_=no_such_module.Net", "model.net: no_such_module.Net: cannot import"),
    ("model.loss._target_=test_stages.VectorLoss", "model.loss: returned (4070,)"),
    ("model.loss.lam=abc", "model.loss.lam: must be a number, got 'abc'"),
    ("model.init=orthogonal", "model.init: unknown scheme 'orthogonal'"),
    ("model.head_init=zeros", "model.head_init: 'zeros' is not one of"),
    ("+model.net.wings=2", "model.net: depth_lightning.nets.CoarseNet: "),
])
def test_a_plug_in_that_breaks_its_contract_is_refused_in_one_line(override, message):
    with pytest.raises(DepthLightningError, match=None) as info:
        coarse_stage(override)
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_a_refining_network_or_stage_in_a_first_stage_is_refused_in_one_line():
    with pytest.raises(DepthLightningError) as info:
        coarse_stage("model.net._target_=depth_lightning.nets.FineNet", "~model.net.dropout",
                     "~model.net.coarse5_pool", "~model.net.coarse6_units")
    assert str(info.value).startswith("model.net: calling FineNet as (images) failed (")
    model = stage_configs("model=fine")["coarse"]
    model.pop("coarse_ckpt")
    with pytest.raises(DepthLightningError) as info:
        build(model, "model", name="coarse")
    assert str(info.value).startswith("model: a fine stage builds on another stage")


class Small(nn.Module):
    def __init__(self, **unused):
        super().__init__()
        self.head = nn.Conv2d(3, 1, 1)

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(self.head(x), (55, 74))


def test_a_network_without_init_head_starts_as_initialised_under_mean_map(caplog):
    model = coarse_stage("model.net._target_=test_stages.Small", "model.head_init=mean_map")
    before = model.net.head.weight.detach().clone()
    with caplog.at_level("WARNING", logger="depth_lightning"):
        model.setup("fit")
    assert "has no init_head" in caplog.text
    assert torch.equal(model.net.head.weight, before)


class GradNorms(L.Callback):
    """The network's gradient norm as the optimiser sees it (after clipping)."""

    def __init__(self) -> None:
        self.norms: list[float] = []

    def on_train_batch_end(self, trainer, module, *args) -> None:
        grads = [p.grad.norm() for p in module.net.parameters() if p.grad is not None]
        self.norms.append(float(torch.stack(grads).norm()))


@pytest.mark.parametrize("clip", [None, 0.05])
def test_clip_grad_norm_bounds_the_stage_gradient(coarse_ckpt, tmp_path, clip):
    model = fine_stage(coarse_ckpt, f"model.clip_grad_norm={'null' if clip is None else clip}")
    record = GradNorms()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, default_root_dir=tmp_path,
                        callbacks=[record], num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(model, random_batches())
    assert len(record.norms) == 4
    if clip is None:
        assert min(record.norms) > 0.05  # unclipped, the random-target gradients are larger
    else:
        assert max(record.norms) == pytest.approx(0.05, rel=1e-3)
