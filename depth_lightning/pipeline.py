"""The training job: the data, then each stage of `cfg.stages` in order, then metrics.json.

A stage entry is ``{name, model, max_epochs, builds_on}``: `model` is the LightningModule's
config (depth_lightning.stages.DepthStage), `builds_on` names an earlier stage whose best
checkpoint this one receives, frozen. When a stage's model config sets `<base name>_ckpt`
(``model.coarse_ckpt=PATH`` for the fine stage), that checkpoint stands in for the base stage,
which is then scored but not trained. metrics.json holds the Mean baseline and one entry per
stage. Entry points stay thin; this module holds the order of things.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from depth_lightning.checkpoints import load_checkpoint, load_stage
from depth_lightning.console import run_done
from depth_lightning.entry import run_task
from depth_lightning.errors import DepthLightningError
from depth_lightning.hw import resolve_precision, reuse_freed_memory
from depth_lightning.io import write_json, write_text
from depth_lightning.plugins import build
from depth_lightning.protocols import TRAINING_TARGET
from depth_lightning.scoring import MeanPredictor, score
from depth_lightning.settings import whole_number
from depth_lightning.tables import print_table
from depth_lightning.training import final_scores, fit_stage

log = logging.getLogger("depth_lightning")

STAGE_RECORD = "stage.json"  # <run>/<stage>/stage.json: a finished stage's best and metrics


@dataclass
class StageSpec:
    """One entry of `cfg.stages`, checked."""

    name: str
    model: dict
    max_epochs: int
    builds_on: str | None = None
    ckpt: str | None = None  # given for this stage (by the next one): scored, not trained
    origin: str = "model"  # where its model config lives (model, coarse_stage.model, ...)


def plan_stages(cfg: DictConfig) -> list[StageSpec]:
    """The stages to run, in order, with their settings resolved and checked."""
    entries = OmegaConf.to_container(cfg.stages, resolve=True) if cfg.get("stages") else None
    if not isinstance(entries, list) or not entries:
        raise DepthLightningError("stages: needs a list of stages, e.g. +experiment=coarse")
    raw = OmegaConf.to_container(cfg.stages, resolve=False)
    specs: list[StageSpec] = []
    for i, entry in enumerate(entries):
        where = f"stages.{i}"
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("model"):
            raise DepthLightningError(f"{where}: needs a name and a model")
        name, base = str(entry["name"]), entry.get("builds_on")
        names = [s.name for s in specs]
        if name in names or name == "mean":
            raise DepthLightningError(f"{where}.name: {name!r} is used twice (or is 'mean')")
        if base is not None and base not in names:
            raise DepthLightningError(f"{where}.builds_on: {base!r} is not an earlier stage "
                                      f"(earlier: {names or 'none'})")
        model, given = _base_checkpoint(dict(entry["model"]), names, base, where)
        if given:
            specs[names.index(base)].ckpt = str(given)
        epochs = whole_number(entry.get("max_epochs"), f"{where}.max_epochs (trainer.max_epochs)")
        source = raw[i].get("model") if isinstance(raw[i], dict) else None
        origin = source[2:-1] if isinstance(source, str) and source.startswith("${") else \
            f"{where}.model"
        specs.append(StageSpec(name, model, epochs, base, origin=origin))
    return specs


def _base_checkpoint(model: dict, names: list[str], base: str | None, where: str
                     ) -> tuple[dict, str | None]:
    """Take `<stage>_ckpt` keys out of a stage's model config: the one of the stage it builds
    on is that stage's checkpoint (then not trained); one of another stage may not be set."""
    given = None
    for key in [k for k in model if k.endswith("_ckpt") and k[:-5] in (*names, base)]:
        value = model.pop(key)
        if key[:-5] == base:
            given = value
        elif value:
            raise DepthLightningError(f"{where}.model.{key}: this stage builds on {base!r}, "
                                      f"not {key[:-5]!r}")
    return model, given


def check_given(specs: list[StageSpec], user_path: Any) -> None:
    """Checkpoints given for stages are files of the right stage (before anything is written)."""
    for i, spec in enumerate(specs):
        if spec.ckpt:
            spec.ckpt = str(user_path(spec.ckpt))
            later = next(s for s in specs[i + 1:] if s.builds_on == spec.name)
            load_checkpoint(spec.ckpt, spec.name, setting=f"model.{spec.name}_ckpt "
                            f"(of the {later.name} stage)")


def check_models(specs: list[StageSpec]) -> None:
    """Build every stage's module once, so a broken network or loss of a later stage is refused
    before the first one trains. The random draws are undone: results stay those of a run
    without the check."""
    chain: list[dict] = []
    with torch.random.fork_rng(devices=[]):
        for spec in specs:
            base = list(chain) if spec.builds_on else None
            try:
                module = build(spec.model, "model", name=spec.name, base=base)
                check_optimisation(module)
            except DepthLightningError as e:  # name the setting where this stage's config is
                text = str(e)
                if text.startswith("model") and spec.origin != "model":
                    text = spec.origin + text[len("model"):]
                raise DepthLightningError(text) from None
            chain = [*(base or []), {"name": spec.name, "net": module.hparams.net}]
            del module


def check_optimisation(module: Any) -> None:
    """The optimiser and schedule of a stage build (on its network, for a one-step fit)."""
    from depth_lightning.optim import build_optimizer, build_scheduler

    opt = build_optimizer(module.net, module.hparams.optim)
    build_scheduler(opt, module.hparams.scheduler, 1, 1)


def check_trainer(cfg: DictConfig) -> None:
    """The Trainer's settings (accelerator, devices, precision, ...) build, before any work."""
    from depth_lightning.console import quiet_lightning
    from depth_lightning.training import trainer_settings
    from depth_lightning.viz import figure_settings

    viz = cfg.get("viz") or {}
    figure_settings(viz.get("format", "png"), viz.get("dpi", 100), viz.get("depth_scale", "row"))
    quiet_lightning()
    build(trainer_settings(cfg, 1), "trainer", logger=False, enable_checkpointing=False)


def mean_scores(dm: Any) -> dict[str, float]:
    """The paper's Mean baseline on the validation frames, scored in one batch."""
    batch = {"depth": dm.eval_targets(dm.val_idx)}
    if not bool((batch["depth"] > 0).any()):
        raise DepthLightningError(f"data: the {len(dm.val_idx)} validation frames of "
                                  f"{dm.describe()} hold no valid depth (all 0, NaN, inf or "
                                  f"negative in {dm.target})")
    metrics, _ = score([MeanPredictor(dm.depth_statistics()["mean_depth"])], [batch],
                       TRAINING_TARGET)
    return metrics["mean"]


def prepare(cfg: DictConfig) -> Any:
    """Seeds, determinism, the CPU allocator and the data module, set up for fitting."""
    if cfg.get("seed") is not None:  # seed=0 is a seed
        L.seed_everything(whole_number(cfg.seed, "seed", minimum=0), workers=True)
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available()):
        reuse_freed_memory(str(cfg.get("cpu_allocator", "reuse")))
    dm = build(cfg.data, "data")
    dm.prepare_data()
    dm.setup("fit")
    return dm


def resumed_config(cfg: DictConfig) -> tuple[DictConfig, bool]:
    """The config to run, and whether it continues a run: with `resume=RUN_DIR` that run's
    saved config (no overrides to repeat); a job restarted into its own folder (a requeued
    SLURM job) continues too; else `cfg` as composed, starting afresh."""
    from depth_lightning.entry import user_path

    out_dir = Path(cfg.paths.output_dir)
    if not cfg.get("resume"):
        saved = out_dir / "config.yaml"
        same = saved.is_file() and saved.read_text() == OmegaConf.to_yaml(cfg, resolve=True)
        return cfg, same
    run = user_path(cfg.resume)
    composed = run / ".hydra" / "config.yaml"  # as composed, interpolations kept
    if not ((run / "config.yaml").is_file() and composed.is_file()):
        what = "does not exist" if not run.exists() else "is not a train run folder (no " \
            "config.yaml and .hydra/config.yaml)"
        raise DepthLightningError(f"resume: {run} {what}")
    if run.resolve() != out_dir.resolve():  # run_dir (resolvers.py) chose a fresh folder
        raise DepthLightningError(f"resume: {run} is not a train run folder (no config.yaml)")
    try:
        saved = OmegaConf.load(composed)
    except Exception as e:
        raise DepthLightningError(f"resume: {composed} is not readable "
                                  f"({' '.join(str(e).split())})") from None
    with open_dict(saved):
        saved.paths.output_dir = str(out_dir)
        saved.resume = None
    return saved, True


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


def run_stages(cfg: DictConfig, specs: list[StageSpec], dm: Any, resuming: bool,
               mean: dict[str, float] | None = None) -> dict[str, dict[str, float]]:
    """Score given stages, train the others in order (continuing a stopped one from its
    last.ckpt when resuming); each finished stage leaves `<stage>/stage.json`. `mean` (the
    Mean baseline) is drawn in each stage's curves and goes into its W&B summary."""
    out_dir = Path(cfg.paths.output_dir)
    precision = resolve_precision(cfg.trainer.get("precision", "auto"))
    metrics: dict[str, dict[str, float]] = {}
    best: dict[str, str] = {}
    for i, spec in enumerate(specs):
        record = out_dir / spec.name / STAGE_RECORD
        if spec.ckpt:  # given: scored as it is
            metrics[spec.name] = final_scores(load_stage(spec.ckpt), dm, precision)
            best[spec.name] = spec.ckpt
            continue
        if resuming and record.is_file():  # finished before the run stopped
            done = json.loads(record.read_text())
            best[spec.name], metrics[spec.name] = done["best"], done["metrics"]
            continue
        last = out_dir / spec.name / "checkpoints" / "last.ckpt"
        start = str(last) if resuming and last.is_file() else \
            (cfg.get("ckpt_path") if i == len(specs) - 1 else None)
        table = {"mean": mean or {}, **metrics}
        reference = {c: table[c]["si_rmse_log"] for c in ("mean", spec.builds_on)
                     if c in table and "si_rmse_log" in table[c]}
        with open_dict(cfg):
            cfg.stage = {"name": spec.name, "dir": str(out_dir / spec.name),
                         "reference": reference}
        best[spec.name], metrics[spec.name] = fit_stage(
            cfg, spec.model, dm, spec.max_epochs, best.get(spec.builds_on), start, table,
            last=i == len(specs) - 1)
        if rank_zero_only.rank == 0:
            write_json(record, {"best": best[spec.name], "metrics": metrics[spec.name]})
    return metrics


def run(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """Train as configured (or continue a stopped run) and return the metrics.json content."""
    from depth_lightning.entry import user_path

    cfg, resuming = resumed_config(cfg)
    out_dir = Path(cfg.paths.output_dir)
    if resuming and (out_dir / "metrics.json").is_file():
        print(f"{out_dir} has finished: metrics.json is there; nothing to resume")
        return json.loads((out_dir / "metrics.json").read_text())
    specs = plan_stages(cfg)
    check_given(specs, user_path)
    if cfg.get("ckpt_path"):
        check_resume_ckpt(str(user_path(cfg.ckpt_path)), specs[-1])
    check_models(specs)
    check_trainer(cfg)
    dm = prepare(cfg)
    mean = mean_scores(dm)  # refuses data without a valid depth
    # Inputs are checked: from here on the run folder fills up.
    if not resuming:
        write_text(out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    metrics = {"mean": mean, **run_stages(cfg, specs, dm, resuming, mean)}
    if rank_zero_only.rank == 0:  # DDP: one process writes the results
        # keys sorted within each column, as metrics.json has always been written
        write_json(out_dir / "metrics.json", {c: dict(sorted(v.items())) for c, v in
                                              metrics.items()})
        print_table(metrics)
        record = out_dir / specs[-1].name / STAGE_RECORD
        run_done(out_dir, json.loads(record.read_text())["best"] if record.is_file()
                 else specs[-1].ckpt)
    return metrics


def optimized_value(cfg: DictConfig, metrics: dict[str, dict[str, float]]) -> float | None:
    """The value a Hydra sweeper minimises: `stage/key` of metrics.json, or a bare key for the
    last stage."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    stage, _, key = name.rpartition("/")
    stage = stage or list(metrics)[-1]
    return metrics.get(stage, {}).get(key)


def main(cfg: DictConfig) -> float | None:
    """Hydra task function: train, and return the value a sweeper optimises."""
    return run_task(cfg, lambda c: optimized_value(c, run(c)))
