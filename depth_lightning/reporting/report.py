"""Report: `python -m depth_lightning.report RUN_DIR... [--out DIR]`.

Turns training runs into the seed's Table 1 (Lacelle & Nofal: RMSE (log, scale inv.) on the
training and validation sets and RMSE (log) on the validation set, for Coarse and Coarse+Fine),
beside the published numbers of the seed (NYU V1, 640 training / 160 validation frames) and of
Eigen et al. 2014 (NYU V2, 654 test frames; no training figures published). Writes
`report.md` (the table in the seed's layout plus notes) and `report.csv` (one row per source and
stage) into the current directory or `--out DIR`.

Where the numbers come from, per run and stage:

* validation: the run's metrics.json (the best checkpoint's validation, at the 55x74 target
  resolution), else the best epoch (lowest val/si_rmse_log) of `<stage>/epochs.csv`;
* training: `train/si_rmse_log` of that best epoch in `<stage>/epochs.csv`, else of the last
  epoch that has it (an epoch without validation); empty when the stage has no epochs.csv
  (e.g. a coarse stage taken from model.coarse_ckpt).

A folder that is not a run itself but holds runs (a multirun folder, outputs/train/runs) stands
for all of them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from depth_lightning.core.files import write_text
from depth_lightning.errors import DepthLightningError
from depth_lightning.reporting.figures import read_epoch_csv

STAGES = {"coarse": "Coarse", "fine": "Coarse+Fine"}
# (csv column, the seed's row name)
ROWS = (
    ("train_si_rmse_log", "RMSE (log, scale inv.) Training"),
    ("val_si_rmse_log", "RMSE (log, scale inv.) Validation"),
    ("val_rmse_log", "RMSE (log) Validation"),
)


@dataclass
class Source:
    """One column pair of the table: a training run or a published result."""

    label: str
    kind: str  # "run" or "published"
    data: str
    values: dict[str, dict[str, float | None]] = field(default_factory=dict)  # stage -> row -> v
    note: str = ""


PUBLISHED = (
    Source("Seed (published)", "published", "NYU V1, 640 train / 160 val",
           {"coarse": {"train_si_rmse_log": 0.316, "val_si_rmse_log": 0.327,
                       "val_rmse_log": 0.452},
            "fine": {"train_si_rmse_log": 0.278, "val_si_rmse_log": 0.285,
                     "val_rmse_log": 0.413}},
           "Lacelle & Nofal, Table 1"),
    Source("Eigen 2014 (published)", "published", "NYU V2, 654 test",
           {"coarse": {"train_si_rmse_log": None, "val_si_rmse_log": 0.221,
                       "val_rmse_log": 0.283},
            "fine": {"train_si_rmse_log": None, "val_si_rmse_log": 0.219,
                     "val_rmse_log": 0.285}},
           "Eigen, Puhrsch & Fergus 2014, Table 1 (test set); training errors not published"),
)


def _float(value: object) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def best_epoch(rows: list[dict[str, float]]) -> dict[str, float] | None:
    """The epoch with the lowest validation si_rmse_log (the one the checkpoint keeps)."""
    validated = [r for r in rows if "val/si_rmse_log" in r]
    return min(validated, key=lambda r: r["val/si_rmse_log"]) if validated else None


def is_run(path: Path) -> bool:
    return (path / "metrics.json").is_file() or any(
        (path / stage / "epochs.csv").is_file() for stage in STAGES)


def expand_runs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders named on the command line; a folder of runs stands for the runs in it."""
    runs: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise DepthLightningError(f"{p}: no such run folder")
        if is_run(p):
            runs.append(p)
            continue
        inner = sorted(q for q in p.iterdir() if q.is_dir() and is_run(q))
        if not inner:
            raise DepthLightningError(f"{p}: not a training run (no metrics.json or "
                                      "<stage>/epochs.csv in it or in its subfolders)")
        runs.extend(inner)
    return runs


def _data_label(run: Path) -> str:
    """The run's data source from its config.yaml, e.g. 'synthrooms (24 frames)'."""
    try:
        from omegaconf import OmegaConf

        data = OmegaConf.to_container(OmegaConf.load(run / "config.yaml")).get("data") or {}
    except Exception:  # an old or hand-made run without a readable config
        return ""
    source = data.get("source")
    if not isinstance(source, dict):
        return str(source or "")
    name = str(source.get("_target_", "")).rpartition(".")[2].lower()
    if source.get("version"):
        return f"nyu_{source['version']}"
    if source.get("frames"):
        return f"{name} ({source['frames']} frames)"
    return {"folderrgbd": "folder"}.get(name, name)


def read_run(run: Path, label: str) -> Source:
    """The table's values for one training run."""
    try:
        metrics = json.loads((run / "metrics.json").read_text())
    except FileNotFoundError:
        metrics = {}
    except (OSError, ValueError) as e:
        raise DepthLightningError(f"{run / 'metrics.json'}: unreadable ({e})") from None
    values: dict[str, dict[str, float | None]] = {}
    notes = []
    for stage in STAGES:
        csv_path = run / stage / "epochs.csv"
        rows = read_epoch_csv(csv_path) if csv_path.is_file() else []
        best = best_epoch(rows)
        stage_metrics = metrics.get(stage) if isinstance(metrics, dict) else None
        if not stage_metrics and not rows:
            continue
        val_si = _float((stage_metrics or {}).get("si_rmse_log"))
        val_log = _float((stage_metrics or {}).get("rmse_log"))
        if val_si is None and best is not None:
            val_si = best.get("val/si_rmse_log")
        if val_log is None and best is not None:
            val_log = best.get("val/rmse_log")
        train = best.get("train/si_rmse_log") if best is not None else None
        if train is None:
            with_train = [r for r in rows if "train/si_rmse_log" in r]
            if with_train:
                train = with_train[-1]["train/si_rmse_log"]
                notes.append(f"{STAGES[stage]} training error of the last epoch")
        if best is not None:
            notes.append(f"{STAGES[stage]}: best of {len(rows)} epochs is epoch "
                         f"{int(best.get('epoch', -1))}")
        values[stage] = {"train_si_rmse_log": train, "val_si_rmse_log": val_si,
                         "val_rmse_log": val_log}
    if not values:
        raise DepthLightningError(f"{run}: holds no coarse or fine results")
    return Source(label, "run", _data_label(run), values, "; ".join([str(run), *notes]))


def _labels(runs: list[Path]) -> list[str]:
    """Folder names, with the parent's name added where two runs share a name."""
    names = [r.name for r in runs]
    return [f"{r.parent.name}/{r.name}" if names.count(r.name) > 1 else r.name for r in runs]


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def markdown(sources: list[Source]) -> str:
    """The seed's Table 1 layout: its three rows; a Coarse and a Coarse+Fine column per source."""
    head = ["Average loss"]
    cells: list[tuple[Source, str]] = []
    for s in sources:
        for stage, name in STAGES.items():
            if stage in s.values:
                head.append(f"{s.label} {name}")
                cells.append((s, stage))
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(cells)]
    for key, name in ROWS:
        lines.append("| " + " | ".join([name, *(_fmt(s.values[st].get(key))
                                                 for s, st in cells)]) + " |")
    notes = [f"- **{s.label}**: {s.data}" + (f"; {s.note}" if s.note else "") for s in sources]
    return ("# Table 1: training runs beside the published numbers\n\n" + "\n".join(lines)
            + "\n\nSources:\n\n" + "\n".join(notes) + "\n\nRuns are scored on their own "
            "validation split at the network's 55x74 output resolution; the published "
            "numbers are on real NYU Depth frames.\n")


def to_csv(sources: list[Source]) -> str:
    """One row per source and stage."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["source", "kind", "stage", *(k for k, _ in ROWS), "data"])
    for s in sources:
        for stage, name in STAGES.items():
            if stage in s.values:
                v = s.values[stage]
                w.writerow([s.label, s.kind, name,
                            *("" if v.get(k) is None else f"{v[k]:.6g}" for k, _ in ROWS),
                            s.data])
    return buf.getvalue()


def build(run_dirs: Sequence[str | Path]) -> list[Source]:
    """Runs (in the order given) followed by the published results."""
    runs = expand_runs(run_dirs)
    return [read_run(r, label) for r, label in zip(runs, _labels(runs))] + list(PUBLISHED)


def write_report(run_dirs: Sequence[str | Path], out: Path) -> str:
    """Write report.md and report.csv of `run_dirs` into `out`; return the markdown."""
    sources = build(run_dirs)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DepthLightningError(f"--out: cannot create {out} ({e.strerror})") from None
    text = markdown(sources)
    try:
        write_text(out / "report.md", text)
        write_text(out / "report.csv", to_csv(sources))
    except OSError as e:
        raise DepthLightningError(f"--out: cannot write into {out} ({e.strerror})") from None
    return text
