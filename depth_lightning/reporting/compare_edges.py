"""Edges and one frame, side by side, for the jobs of a comparison:
`python -m depth_lightning.compare_edges DIR`.

`python -m depth_lightning.compare` tables the nine metrics of every job from metrics.json;
this adds what a comparison of losses and networks about sharp boundaries needs: each job's
last stage (its best checkpoint) scored on the validation frames at the 55x74 target with the
depth-boundary precision / recall / F (depth_lightning.evaluation.metrics.boundary), written to
`<job>/edges.json`, and, in DIR, `edges.md` / `edges.csv` (si_rmse_log, rmse_log, delta1,
abs_rel and the edge scores per job) and `frames.png` (one validation frame: RGB | ground truth |
each job's prediction, one colour scale). Jobs are named by their `+compare=` (or
`+experiment=`) choice, else by their folder. Run `python -m depth_lightning.compare DIR`
afterwards and its table holds the edge scores beside the other metrics.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from depth_lightning.core.files import write_json, write_with
from depth_lightning.core.plugins import build
from depth_lightning.errors import DepthLightningError
from depth_lightning.evaluation.metrics.boundary import BOUNDARY_KEYS, DepthBoundaryMetrics
from depth_lightning.evaluation.protocols import TRAINING_TARGET
from depth_lightning.evaluation.scoring import StagePredictor, panel_rows, update_metrics
from depth_lightning.models.checkpoints import load_stage
from depth_lightning.reporting.compare import job_dirs, read_job, swept_labels
from depth_lightning.reporting.tables import markdown_grid

TABLE = ("si_rmse_log", "rmse_log", "delta1", "abs_rel", *BOUNDARY_KEYS)


def finished_jobs(root: Path) -> list[dict[str, Any]]:
    """Job folders under `root` with a metrics.json (compare.read_job's view of each, plus its
    folder and row name)."""
    jobs = [{**job, "dir": d} for d in job_dirs(root) if (job := read_job(d))["ok"]]
    if not jobs:
        raise DepthLightningError(f"{root}: no finished job (metrics.json) inside")
    for job, name in zip(jobs, job_names(jobs)):
        job["name"] = name
    return jobs


def job_names(jobs: list[dict[str, Any]]) -> list[str]:
    """Each job's row name: its `+compare=` variant, else the settings its sweep varied (as
    compare's legend), else its `+experiment=`; the folder name is added to any name that two
    jobs would share."""
    swept = swept_labels(jobs)
    names = []
    for job, label in zip(jobs, swept):
        given = dict(o.split("=", 1) for o in job["overrides"] if "=" in o)
        varies = label != " ".join(job["overrides"])
        names.append(given.get("+compare") or (label if varies else None)
                     or given.get("+experiment") or job["job"])
    return [f"{n} ({j['job']})" if names.count(n) > 1 else n for n, j in zip(names, jobs)]


def score_edges(jobs: list[dict[str, Any]], frame: int, threshold: float, radius: int
                ) -> dict[str, Any]:
    """Every job's boundary scores over the validation frames of the first job's data (the
    jobs of a comparison share it), and the panel row of validation frame `frame`."""
    cfg = OmegaConf.load(jobs[0]["dir"] / "config.yaml")
    cfg.data.num_workers = 0
    dm = build(cfg.data, "data")
    dm.setup("fit")
    predictors = {j["name"]: StagePredictor(load_stage(j["best"]), columns=(j["stage"],))
                  for j in jobs}
    metrics = {n: DepthBoundaryMetrics(threshold, radius, min_depth=TRAINING_TARGET.min_depth,
                                       max_depth=TRAINING_TARGET.max_depth)
               for n in predictors}
    row: dict[str, Any] = {}
    start = 0
    for batch in dm.val_dataloader():
        preds = {n: p(batch)[jobs[i]["stage"]] for i, (n, p) in enumerate(predictors.items())}
        update_metrics(metrics, preds, batch, TRAINING_TARGET, dm.geometry)
        n = batch["depth"].shape[0]
        if start <= frame < start + n:
            (row,) = panel_rows(batch, preds, TRAINING_TARGET, [frame - start], dm.geometry)
        start += n
    return {"scores": {n: {k: float(v) for k, v in m.compute().items()}
                       for n, m in metrics.items()}, "row": row}


def write_outputs(root: Path, jobs: list[dict[str, Any]], result: dict[str, Any],
                  settings: dict[str, Any]) -> list[list[str]]:
    """edges.json per job; edges.md, edges.csv and frames.png in `root`; the table's rows."""
    rows = []
    for job in jobs:
        edges = result["scores"][job["name"]]
        write_json(job["dir"] / "edges.json", {**settings, "stage": job["stage"], **edges})
        values = {**job["metrics"], **edges}
        rows.append([job["name"], *(f"{values[k]:.4f}" for k in TABLE)])
    header = ["variant", *TABLE]

    def write_csv(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([header, *rows])

    write_with(root / "edges.csv", write_csv)
    write_with(root / "edges.md", lambda tmp: tmp.write_text(markdown_grid(header, rows)))
    if result["row"]:
        from depth_lightning.reporting.figures import plot_depth_grid

        plot_depth_grid([result["row"]], root / "frames.png", scale="figure",
                        title=f"validation frame {settings['frame']}: each variant's last stage")
    return [header, *rows]


def compare_edges(root: Path, frame: int = 0, threshold: float = 0.1, radius: int = 2
                  ) -> tuple[int, list[list[str]]]:
    """Score, write and draw the edges of every finished job under `root`; return the number
    of jobs and the table's rows."""
    if not root.is_dir():
        raise DepthLightningError(f"dir: {root} is not a folder")
    if frame < 0 or radius < 0 or not threshold > 0:
        raise DepthLightningError("--frame and --radius must be >= 0, --threshold > 0")
    jobs = finished_jobs(root)
    with torch.inference_mode():
        result = score_edges(jobs, frame, threshold, radius)
    table = write_outputs(root, jobs, result, {"threshold": threshold, "radius": radius,
                                               "frame": frame})
    return len(jobs), table
