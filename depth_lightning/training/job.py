"""The training job: the data, then each stage of `cfg.stages` in order, then metrics.json.

:func:`run` is the whole job, callable from Python and tests: it takes a composed config,
returns the metrics.json content and raises :class:`~depth_lightning.errors.DepthLightningError`
for bad input (the command line turns that into one `error:` line). A stage given as a
checkpoint (``model.coarse_ckpt``) is scored, not trained. metrics.json holds the Mean
baseline and one entry per stage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from depth_lightning.core.files import write_json, write_text
from depth_lightning.core.hardware import resolve_precision, reuse_freed_memory
from depth_lightning.core.plugins import build
from depth_lightning.core.settings import user_path, whole_number
from depth_lightning.errors import DepthLightningError
from depth_lightning.evaluation.protocols import TRAINING_TARGET
from depth_lightning.evaluation.scoring import MeanPredictor, score
from depth_lightning.models.checkpoints import load_stage
from depth_lightning.training.fit import final_scores, fit_stage
from depth_lightning.training.plan import (
    StageSpec,
    check_given,
    check_models,
    check_resume_ckpt,
    plan_stages,
)
from depth_lightning.training.trainer import StageContext, check_trainer

STAGE_RECORD = "stage.json"  # <run>/<stage>/stage.json: a finished stage's best and metrics
Table = dict[str, dict[str, float]]


class JobEvents(Protocol):
    """What the job tells whoever runs it (the command line prints it; Python callers may pass
    nothing)."""

    def stage_done(self, name: str, run_dir: Path, best: str, table: Table) -> None:
        """A stage that is not the run's last has finished: its table so far, its checkpoint."""

    def run_done(self, run_dir: Path, best: str | None, table: Table) -> None:
        """The run has finished: the final table and the last stage's best checkpoint."""


def mean_scores(dm: Any) -> dict[str, float]:
    """The paper's Mean baseline on the validation frames, scored in one batch."""
    batch = {"depth": dm.eval_targets(dm.val_idx)}
    if not bool((batch["depth"] > 0).any()):
        raise DepthLightningError(f"data: the {len(dm.val_idx)} validation frames of "
                                  f"{dm.describe()} hold no valid depth (all 0, NaN, inf or "
                                  f"negative in {dm.target})")
    metrics, _ = score([MeanPredictor(dm.depth_statistics()["mean_depth"])], [batch],
                       TRAINING_TARGET, geometry=dm.geometry)
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
    if run.resolve() != out_dir.resolve():  # the run folder resolver chose a fresh folder
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


def run_stages(cfg: DictConfig, specs: list[StageSpec], dm: Any, resuming: bool,
               mean: dict[str, float], events: JobEvents | None = None) -> Table:
    """Score given stages, train the others in order (continuing a stopped one from its
    last.ckpt when resuming); each finished stage leaves `<stage>/stage.json`."""
    out_dir = Path(cfg.paths.output_dir)
    precision = resolve_precision(cfg.trainer.get("precision", "auto"),
                                  cfg.trainer.get("accelerator", "auto"))
    metrics: Table = {}
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
        table = {"mean": mean, **metrics}
        reference = {c: table[c]["si_rmse_log"] for c in ("mean", spec.builds_on)
                     if c in table and "si_rmse_log" in table[c]}
        stage = StageContext(spec.name, out_dir / spec.name, reference)
        best[spec.name], metrics[spec.name] = fit_stage(
            cfg, stage, spec.model, dm, spec.max_epochs, best.get(spec.builds_on), start, table)
        if rank_zero_only.rank == 0:
            write_json(record, {"best": best[spec.name], "metrics": metrics[spec.name]})
            if events is not None and i < len(specs) - 1:
                events.stage_done(spec.name, out_dir, best[spec.name],
                                  {**table, spec.name: metrics[spec.name]})
    return metrics


def run(cfg: DictConfig, events: JobEvents | None = None) -> Table:
    """Train as configured (or continue a stopped run) and return the metrics.json content."""
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
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text(out_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    metrics = {"mean": mean, **run_stages(cfg, specs, dm, resuming, mean, events)}
    if rank_zero_only.rank == 0:  # DDP: one process writes the results
        # keys sorted within each column, as metrics.json has always been written
        write_json(out_dir / "metrics.json", {c: dict(sorted(v.items())) for c, v in
                                              metrics.items()})
        if events is not None:
            record = out_dir / specs[-1].name / STAGE_RECORD
            events.run_done(out_dir, json.loads(record.read_text())["best"]
                            if record.is_file() else specs[-1].ckpt, metrics)
    return metrics


def optimized_value(cfg: DictConfig, metrics: Table) -> float | None:
    """The value a Hydra sweeper minimises: `stage/key` of metrics.json, or a bare key for the
    last stage."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    stage, _, key = name.rpartition("/")
    stage = stage or list(metrics)[-1]
    return metrics.get(stage, {}).get(key)
