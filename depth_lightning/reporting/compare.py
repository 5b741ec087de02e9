"""Compare the jobs of a multirun without W&B: `python -m depth_lightning.compare DIR`.

Reads every job folder under DIR (Hydra's `.hydra/overrides.yaml`, `metrics.json`,
`<stage>/epochs.csv`, and `edges.json` where `python -m depth_lightning.compare_edges DIR` has
scored the depth boundaries) and writes `compare.md` and `compare.csv` (one row per job: its
overrides and final metrics, the edge scores when there are any, sorted by validation
si_rmse_log of its last stage) and `compare.png` (the
validation curves of all jobs: one panel per stage, epochs counted from 0 as in epochs.csv,
the Mean baseline as a line, a legend of the swept settings beside the panels). Jobs that
failed (no metrics.json) are listed at the end. When a variant ran with several seeds
(`seed=0,1,2` in the sweep), `seeds.md` / `seeds.csv` give each variant's scores as mean ±
standard deviation over its seeds (depth_lightning.reporting.seeds). `--format pdf|svg` and
`--dpi N` for papers.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import yaml

from depth_lightning.core.files import write_with
from depth_lightning.errors import DepthLightningError
from depth_lightning.reporting.figures import read_epoch_csv
from depth_lightning.reporting.seeds import has_repeats, seed_csv_rows, seed_markdown, seed_stats
from depth_lightning.reporting.tables import markdown_grid

COLUMNS = ("si_rmse_log", "rmse_log", "abs_rel", "rmse", "delta1")
#: compare_edges' depth-boundary scores (metrics.boundary.BOUNDARY_KEYS), shown when scored
EDGE_COLUMNS = ("edge_precision", "edge_recall", "edge_f1")


def job_dirs(root: Path) -> list[Path]:
    """Folders below `root` that Hydra made for a job (they hold .hydra/overrides.yaml)."""
    return sorted(p.parent.parent for p in root.glob("**/.hydra/overrides.yaml"))


def read_job(job: Path) -> dict:
    """Overrides, final metrics of the last stage (and its edge scores, if scored), per-epoch
    validation curves and the last stage's best checkpoint of one job (a run folder the
    Python API made has no Hydra record: no overrides)."""
    record = job / ".hydra" / "overrides.yaml"
    overrides = (yaml.safe_load(record.read_text()) or []) if record.is_file() else []
    overrides = [o for o in overrides if not o.startswith(("paths.", "hydra."))]
    metrics_file = job / "metrics.json"
    try:
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DepthLightningError(f"{metrics_file}: not valid JSON ({e})") from None
    stages = [k for k in metrics if k != "mean"] or ["coarse"]
    stage = stages[-1]
    curves: dict[str, list[tuple[float, float]]] = {}
    for st in stages:
        f = job / st / "epochs.csv"
        if f.is_file():
            curves[st] = [(r["epoch"], r["val/si_rmse_log"]) for r in read_epoch_csv(f)
                          if "val/si_rmse_log" in r and "epoch" in r]
    record = job / stage / "stage.json"  # the finished stage's record: its best checkpoint
    best = json.loads(record.read_text()).get("best") if record.is_file() else None
    edges_file = job / "edges.json"  # compare_edges' boundary scores of the last stage
    edges = json.loads(edges_file.read_text()) if edges_file.is_file() else {}
    return {"job": job.name, "overrides": overrides, "stage": stage,
            "metrics": {**metrics.get(stage, {}),
                        **{k: v for k, v in edges.items() if k.startswith("edge_")}},
            "mean": metrics.get("mean", {}), "stages": metrics, "curves": curves,
            "ok": bool(metrics), "best": best}


def swept_labels(jobs: list[dict]) -> list[str]:
    """Each job's legend entry: only the overrides that differ between the jobs (the swept
    settings), e.g. `model.loss.lam=0.5`; all its overrides when nothing differs."""
    values: dict[str, set[str]] = {}
    for j in jobs:
        for o in j["overrides"]:
            key, _, value = o.partition("=")
            values.setdefault(key, set()).add(value)
    swept = {k for k, v in values.items() if len(v) > 1 or
             sum(any(o.partition("=")[0] == k for o in j["overrides"]) for j in jobs) < len(jobs)}
    return [" ".join(o for o in j["overrides"] if o.partition("=")[0] in swept)
            or " ".join(j["overrides"]) or j["job"] for j in jobs]


def _fmt(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def compare(root: str | Path, out: str | Path | None = None, fmt: str = "png",
            dpi: int = 100) -> list[dict]:
    """Write compare.md / compare.csv / compare.<fmt> for the multirun at `root`; return the
    jobs, best first, failed ones last."""
    from depth_lightning.reporting.figures import figure_settings

    figure_settings(fmt, dpi)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such multirun folder")
    jobs = [read_job(j) for j in job_dirs(root)]
    if not jobs:
        raise FileNotFoundError(f"{root}: no Hydra job folders (.hydra/overrides.yaml) inside")
    out = Path(out) if out else root
    out.mkdir(parents=True, exist_ok=True)
    done = sorted((j for j in jobs if j["ok"]),
                  key=lambda j: j["metrics"].get("si_rmse_log", math.inf))
    failed = [j for j in jobs if not j["ok"]]
    columns = (*COLUMNS, *(k for k in EDGE_COLUMNS if any(k in j["metrics"] for j in done)))
    header = ["job", "overrides", "stage", *columns, "mean_si_rmse_log"]
    rows = [[j["job"], " ".join(j["overrides"]), j["stage"],
             *(_fmt(j["metrics"].get(c)) for c in columns),
             _fmt(j["mean"].get("si_rmse_log"))] for j in done]
    rows += [[j["job"], " ".join(j["overrides"]), "failed", *[""] * (len(header) - 3)]
             for j in failed]
    _write_atomic(out / "compare.csv", lambda f: csv.writer(f).writerows([header, *rows]))
    _write_atomic(out / "compare.md", lambda f: f.write(markdown_grid(header, rows)))
    if has_repeats(done):  # a seed list was swept: each variant as mean ± std over its seeds
        stats = seed_stats(done)
        _write_atomic(out / "seeds.csv", lambda f: csv.writer(f).writerows(seed_csv_rows(stats)))
        _write_atomic(out / "seeds.md", lambda f: f.write(seed_markdown(stats)))
    _plot_curves(done, out / f"compare.{fmt}", dpi)
    return done + failed


def _write_atomic(path: Path, write) -> None:
    def to_file(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            write(f)

    write_with(path, to_file)


def _plot_curves(jobs: list[dict], path: Path, dpi: int = 100) -> None:
    """Small multiples: one panel per stage (epochs from 0, shared y), one line per job, the
    Mean baseline dashed; the legend (swept settings only) to the right, in as many columns
    as it needs, so that any number of jobs fits."""
    import math

    import matplotlib.pyplot as plt

    from depth_lightning.reporting.figures import _savefig_atomic, plain_ticks
    from depth_lightning.reporting.tables import column_name

    stages = list(dict.fromkeys(st for j in jobs for st in j["curves"])) or ["coarse"]
    labels = swept_labels(jobs)
    n = max(len(jobs), 1)
    ncols = math.ceil(n / 16)
    width = 3.8 * len(stages) + 0.7 + ncols * min(3.4, 0.065 * max(map(len, labels or [""])))
    fig, axes = plt.subplots(1, len(stages), squeeze=False, sharey=True, layout="constrained",
                             figsize=(max(width, 5.5), 3.6 + 0.12 * max(0, min(n, 16) - 10)))
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20" if n <= 20 else "viridis")
    colours = [cmap(i if n <= 20 else i / max(n - 1, 1)) for i in range(n)]
    handles = []
    for ax, stage in zip(axes[0], stages):
        for j, colour in zip(jobs, colours):
            pts = j["curves"].get(stage)
            if pts:
                (line,) = ax.plot(*zip(*pts), marker=".", color=colour, linewidth=1.2)
                handles.append((j["job"], line))
        means = [j["mean"]["si_rmse_log"] for j in jobs if "si_rmse_log" in j["mean"]]
        if means:
            ax.axhline(sorted(means)[len(means) // 2], color="0.35", linestyle="--",
                       linewidth=1, label="Mean")
        ax.set(xlabel="epoch", title=f"{column_name(stage)} stage")
        ax.grid(alpha=0.3)
        plain_ticks(ax)
    axes[0, 0].set_ylabel("val si_rmse_log")
    by_job = dict(handles)
    entries = [(by_job[j["job"]], label) for j, label in zip(jobs, labels) if j["job"] in by_job]
    mean_line = [h for h in axes[0, 0].get_lines() if h.get_label() == "Mean"]
    entries += [(mean_line[0], "Mean baseline")] if mean_line else []
    if entries:
        fig.legend(*zip(*entries), loc="outside right upper", fontsize=7, ncols=ncols,
                   frameon=False, title="swept settings (best first)", title_fontsize=7)
    fig.suptitle("validation scale-invariant log RMSE", fontsize=10)
    _savefig_atomic(fig, path, dpi)
