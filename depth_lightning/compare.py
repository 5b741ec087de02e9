"""Compare the jobs of a multirun without W&B: `python -m depth_lightning.compare DIR`.

Reads every job folder under DIR (Hydra's `.hydra/overrides.yaml`, `metrics.json`,
`<stage>/epochs.csv`) and writes `compare.md` and `compare.csv` (one row per job: its overrides
and final metrics, sorted by validation si_rmse_log of its last stage) and `compare.png` (the
validation curves of all jobs). Jobs that failed (no metrics.json) are listed at the end.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path

import yaml

from depth_lightning.errors import DepthLightningError
from depth_lightning.io import write_with
from depth_lightning.viz import read_epoch_csv

COLUMNS = ("si_rmse_log", "rmse_log", "abs_rel", "rmse", "delta1")


def job_dirs(root: Path) -> list[Path]:
    """Folders below `root` that Hydra made for a job (they hold .hydra/overrides.yaml)."""
    return sorted(p.parent.parent for p in root.glob("**/.hydra/overrides.yaml"))


def read_job(job: Path) -> dict:
    """Overrides, final metrics of the last stage and per-epoch validation curve of one job."""
    overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
    overrides = [o for o in overrides if not o.startswith(("paths.", "hydra."))]
    metrics_file = job / "metrics.json"
    try:
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DepthLightningError(f"{metrics_file}: not valid JSON ({e})") from None
    stages = [k for k in metrics if k != "mean"] or ["coarse"]
    stage = stages[-1]
    curve: list[float] = []
    for st in stages:
        f = job / st / "epochs.csv"
        if f.is_file():
            curve += [r["val/si_rmse_log"] for r in read_epoch_csv(f) if "val/si_rmse_log" in r]
    return {"job": job.name, "overrides": overrides, "stage": stage,
            "metrics": metrics.get(stage, {}), "mean": metrics.get("mean", {}),
            "curve": curve, "ok": bool(metrics)}


def _fmt(v: float | None) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


def compare(root: str | Path, out: str | Path | None = None) -> list[dict]:
    """Write compare.md / compare.csv / compare.png for the multirun at `root`; return rows."""
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
    header = ["job", "overrides", "stage", *COLUMNS, "mean_si_rmse_log"]
    rows = [[j["job"], " ".join(j["overrides"]), j["stage"],
             *(_fmt(j["metrics"].get(c)) for c in COLUMNS),
             _fmt(j["mean"].get("si_rmse_log"))] for j in done]
    rows += [[j["job"], " ".join(j["overrides"]), "failed", *[""] * (len(header) - 3)]
             for j in failed]
    _write_atomic(out / "compare.csv", lambda f: csv.writer(f).writerows([header, *rows]))
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    _write_atomic(out / "compare.md", lambda f: f.write("\n".join(md) + "\n"))
    _plot_curves(done, out / "compare.png")
    return done + failed


def _write_atomic(path: Path, write) -> None:
    def to_file(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            write(f)

    write_with(path, to_file)


def _plot_curves(jobs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for j in jobs:
        if j["curve"]:
            ax.plot(range(1, len(j["curve"]) + 1), j["curve"], marker=".",
                    label=" ".join(j["overrides"]) or j["job"])
    ax.set(xlabel="epoch (coarse, then fine)", ylabel="val si_rmse_log",
           title="validation scale-invariant log RMSE")
    ax.grid(alpha=0.3)
    if any(j["curve"] for j in jobs):
        ax.legend(fontsize=7)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m depth_lightning.compare",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("multirun_dir", help="a multirun folder (outputs/train/multiruns/...)")
    parser.add_argument("--out", help="where to write compare.* (default: the multirun folder)")
    args = parser.parse_args(argv)
    try:
        rows = compare(args.multirun_dir, args.out)
    except (FileNotFoundError, yaml.YAMLError, DepthLightningError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out = Path(args.out or args.multirun_dir)
    print(f"{len(rows)} jobs -> {out / 'compare.md'}, compare.csv, compare.png")
    print((out / "compare.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
