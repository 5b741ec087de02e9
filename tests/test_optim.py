"""Optimiser groups from a network's named children, and the schedules."""

import math

import pytest
import torch
from torch import nn

from depth_lightning.errors import DepthLightningError
from depth_lightning.models.optim import (
    build_optimizer,
    build_scheduler,
    param_groups,
    warmup_cosine,
)

SGD = {"_target_": "torch.optim.SGD", "_partial_": True, "momentum": 0.9, "nesterov": False}


def net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 1, 1))  # children 0, 1, 2


def test_groups_are_the_named_children_with_their_rates_or_the_default():
    groups = param_groups(net(), {"0": 0.1, "default": 0.01}, {"2": 1e-4})
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in groups] == [
        ("0", 0.1, 0.0), ("2", 0.01, 1e-4)], "the ReLU holds nothing to train"
    opt = build_optimizer(net(), {**SGD, "lr": {"default": 0.5}, "weight_decay": 0.0})
    assert isinstance(opt, torch.optim.SGD) and [g["lr"] for g in opt.param_groups] == [0.5, 0.5]


@pytest.mark.parametrize("target", ["torch.optim.AdamW", "torch.optim.SGD", "torch.optim.NAdam"])
def test_fused_auto_uses_the_fused_kernel_where_there_is_one_with_the_same_steps(target):
    settings = {"_target_": target, "_partial_": True, "lr": {"default": 0.01},
                "weight_decay": 1e-4}
    torch.manual_seed(0)
    a, b = net(), net()
    b.load_state_dict(a.state_dict())
    fused = build_optimizer(a, {**settings, "fused": "auto"})
    plain = build_optimizer(b, {**settings, "fused": None})
    has_kernel = target != "torch.optim.NAdam"  # NAdam takes no `fused`: built without it
    assert fused.defaults.get("fused") is (True if has_kernel else None)
    assert not plain.defaults.get("fused")
    x = torch.randn(2, 3, 8, 8)
    for _ in range(5):
        for model, opt in ((a, fused), (b, plain)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("lr", "message"), [
    ({"0": 0.1}, "model.optim.lr: no learning rate for layer '2'"),
    ({"default": "fast"}, "model.optim.lr.default: must be a number, got 'fast'"),
    ({"default": -1}, "model.optim.lr.default: must be a number >= 0"),
])
def test_bad_learning_rates_name_the_setting(lr, message):
    with pytest.raises(DepthLightningError) as info:
        param_groups(net(), lr)
    assert str(info.value).startswith(message)


def test_an_unknown_optimiser_is_one_line():
    with pytest.raises(DepthLightningError, match=r"model.optim: cannot build torch.optim.Nope"):
        build_optimizer(net(), {**SGD, "_target_": "torch.optim.Nope", "lr": {"default": 1}})


def test_warmup_then_cosine_to_the_floor():
    f = warmup_cosine(100, 0.1, 0.0)
    assert [f(0), f(4), f(9)] == [1 / 11, 5 / 11, 10 / 11]
    assert f(10) == 1.0 and f(100) == pytest.approx(0.0, abs=1e-12)
    assert f(55) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert warmup_cosine(100, 0.0, 0.2)(100) == pytest.approx(0.2)


def test_schedules_by_name():
    opt = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
    plateau = build_scheduler(opt, {"name": "plateau", "factor": 0.1, "patience": 10,
                                    "threshold": 1e-4, "monitor": "val/loss"}, 100, 2)
    assert plateau["monitor"] == "val/loss" and plateau["frequency"] == 2
    cosine = build_scheduler(opt, {"name": "cosine", "warmup_fraction": 0.0, "min_factor": 0.0},
                             10, 1)
    assert cosine["interval"] == "step"
    assert build_scheduler(opt, {"name": "none"}, 10, 1) is None
    with pytest.raises(DepthLightningError, match="model.scheduler.warmup_fraction: required"):
        build_scheduler(opt, {"name": "cosine"}, 10, 1)
    with pytest.raises(DepthLightningError, match="model.scheduler.name: unknown scheduler"):
        build_scheduler(opt, {"name": "step"}, 10, 1)


def test_a_null_setting_is_left_to_the_optimiser_so_sgd_settings_do_not_block_adam():
    cfg = {**SGD, "_target_": "torch.optim.Adam", "momentum": None, "nesterov": None,
           "lr": {"default": 0.003}, "weight_decay": 0.0}
    opt = build_optimizer(net(), cfg)
    assert isinstance(opt, torch.optim.Adam) and [g["lr"] for g in opt.param_groups] == [0.003] * 2
    assert opt.defaults["betas"] == (0.9, 0.999)  # Adam's own default
    sgd = build_optimizer(net(), {**SGD, "momentum": None, "lr": {"default": 0.1}})
    assert sgd.defaults["momentum"] == 0  # SGD's own default, not the 0.9 of the config
    with pytest.raises(DepthLightningError, match="model.optim: cannot build torch.optim.Adam"):
        build_optimizer(net(), {**cfg, "momentum": 0.9})  # Adam has no momentum argument
