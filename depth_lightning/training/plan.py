"""The stages of a run, read from the resolved config and checked before anything trains.

A stage entry of `cfg.stages` is ``{name, model, max_epochs, builds_on, ckpt_from}``:

* `model`: the stage module's settings, inline, or the name of the config node holding them
  (``coarse_stage.model``), which error messages then name;
* `builds_on`: an earlier stage whose best checkpoint this one receives, frozen;
* `ckpt_from`: a setting that may give this stage as a trained checkpoint
  (``model.coarse_ckpt``): the stage is then scored, not trained. The setting is planning's
  business: it is taken out of the module settings it sits in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from depth_lightning.core.plugins import build
from depth_lightning.core.settings import whole_number
from depth_lightning.errors import DepthLightningError
from depth_lightning.models.checkpoints import load_checkpoint
from depth_lightning.models.optim import build_optimizer, build_scheduler


@dataclass
class StageSpec:
    """One entry of `cfg.stages`, resolved and checked."""

    name: str
    model: dict
    max_epochs: int
    builds_on: str | None = None
    ckpt: str | None = None  # a trained checkpoint of this stage: scored, not trained
    origin: str = "model"  # the config node of its module settings (model, coarse_stage.model)
    ckpt_setting: str | None = None  # the setting `ckpt` came from (model.coarse_ckpt)


def _module_settings(cfg: DictConfig, model: Any, where: str) -> tuple[dict, str]:
    """A stage's module settings and the config node they live in."""
    if isinstance(model, str):
        node = OmegaConf.select(cfg, model, default=None)
        if not isinstance(node, DictConfig):
            raise DepthLightningError(f"{where}.model: {model!r} names no group of settings "
                                      "in the config")
        return OmegaConf.to_container(node, resolve=True), model
    if isinstance(model, dict):
        return model, f"{where}.model"
    raise DepthLightningError(f"{where}.model: needs the stage's module settings or the name "
                              f"of their config node, got {model!r}")


def _entry(cfg: DictConfig, entry: Any, i: int, earlier: list[str]) -> StageSpec:
    where = f"stages.{i}"
    if not isinstance(entry, dict) or not entry.get("name") or not entry.get("model"):
        raise DepthLightningError(f"{where}: needs a name and a model")
    name, base = str(entry["name"]), entry.get("builds_on")
    if name in earlier or name == "mean":
        raise DepthLightningError(f"{where}.name: {name!r} is used twice (or is 'mean')")
    if base is not None and base not in earlier:
        raise DepthLightningError(f"{where}.builds_on: {base!r} is not an earlier stage "
                                  f"(earlier: {earlier or 'none'})")
    model, origin = _module_settings(cfg, entry["model"], where)
    epochs = whole_number(entry.get("max_epochs"), f"{where}.max_epochs (trainer.max_epochs)")
    setting = entry.get("ckpt_from")
    ckpt = OmegaConf.select(cfg, setting, default=None) if setting else None
    return StageSpec(name, model, epochs, base, str(ckpt) if ckpt else None, origin, setting)


def plan_stages(cfg: DictConfig) -> list[StageSpec]:
    """The stages to run, in order, with their settings resolved and checked."""
    stages = cfg.get("stages")
    entries = OmegaConf.to_container(stages, resolve=True) if stages else None
    if not isinstance(entries, list) or not entries:
        raise DepthLightningError("stages: needs a list of stages, e.g. +experiment=coarse")
    specs: list[StageSpec] = []
    for i, entry in enumerate(entries):
        specs.append(_entry(cfg, entry, i, [s.name for s in specs]))
    for spec in specs:  # a stage's checkpoint setting is no setting of the module it sits in
        if spec.ckpt_setting:
            node, _, key = spec.ckpt_setting.rpartition(".")
            for other in specs:
                if other.origin == node:
                    other.model.pop(key, None)
    return specs


def check_given(specs: list[StageSpec], user_path: Callable[[str], Path]) -> None:
    """Checkpoints given for stages are files of the right stage (before anything is written)."""
    for spec in specs:
        if spec.ckpt:
            spec.ckpt = str(user_path(spec.ckpt))
            later = next((s.name for s in specs if s.builds_on == spec.name), None)
            setting = spec.ckpt_setting or f"the {spec.name} stage's checkpoint"
            load_checkpoint(spec.ckpt, spec.name, setting=f"{setting} (of the {later} stage)"
                            if later else setting)


def check_models(specs: list[StageSpec]) -> None:
    """Build every stage's module once, so a broken network or loss of a later stage is refused
    before the first one trains. The random draws are undone: results stay those of a run
    without the check."""
    chain: list[dict] = []
    with torch.random.fork_rng(devices=[]):
        for spec in specs:
            base = list(chain) if spec.builds_on else None
            extra = {"base": base} if base else {}
            try:
                module = build(spec.model, "model", name=spec.name, **extra)
                check_optimisation(module)
            except DepthLightningError as e:  # name the setting where this stage's config is
                raise e.reroot("model", spec.origin) from None
            chain = [*(base or []), {"name": spec.name, "net": module.hparams.net}]
            del module


def check_optimisation(module: Any) -> None:
    """The optimiser and schedule of a stage build (on its network, for a one-step fit)."""
    opt = build_optimizer(module.net, module.hparams.optim)
    build_scheduler(opt, module.hparams.scheduler, 1, 1)


def check_resume_ckpt(path: str, spec: StageSpec) -> None:
    """`ckpt_path=` (Lightning's resume of the last stage): a checkpoint of that stage and of
    the same network."""
    ckpt = load_checkpoint(path, spec.name, setting="ckpt_path")
    saved, wanted = ckpt["hyper_parameters"].get("net", {}), spec.model.get("net", {})
    diff = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    if diff:
        k = diff[0]
        raise DepthLightningError(f"ckpt_path: {path} holds a different network ({k}: "
                                  f"{saved.get(k)!r} there, {wanted.get(k)!r} here)")
