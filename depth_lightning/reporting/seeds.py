"""Results with their noise: the jobs of a sweep that differ only in `seed=` grouped into one
variant, each score as mean ± standard deviation over its seeds.

A difference between two variants is worth stating only where it exceeds the spread of their
seeds; one run per variant cannot tell (the same fine stage on the same coarse weights scored
0.1748 and 0.1740 in two runs). `python -m depth_lightning.compare DIR` writes this table as
`seeds.md` / `seeds.csv` beside `compare.md` whenever a variant ran with more than one seed:

    python -m depth_lightning.train -m +experiment=fine seed=0,1,2 model.loss.lam=0.5,1
    python -m depth_lightning.compare outputs/train/multiruns/<sweep>
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from typing import Any

from depth_lightning.reporting.tables import markdown_grid

#: Settings that pick a run's random draws, not its variant.
SEED_KEYS = ("seed", "+seed", "data.seed", "data.split.seed")
#: Each stage's scores shown per variant (stage/key columns), then the Mean baseline's.
STAGE_KEYS = ("si_rmse_log", "edge_f1")
LAST_STAGE_KEYS = ("rmse_log", "delta1", "abs_rel")


def variant_of(overrides: Sequence[str]) -> str:
    """A job's overrides without its seed settings: the name of its variant.

    Example:
        >>> variant_of(["+experiment=fine", "seed=2", "model.loss.lam=1"])
        '+experiment=fine model.loss.lam=1'
    """
    kept = [o for o in overrides if o.partition("=")[0] not in SEED_KEYS]
    return " ".join(kept) or "(defaults)"


def seed_of(overrides: Sequence[str]) -> str:
    """The job's seed settings as written (`seed=2`), or `seed=default`."""
    seeds = [o for o in overrides if o.partition("=")[0] in SEED_KEYS]
    return " ".join(seeds) or "seed=default"


def mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1; nan for one value) of the finite values.

    Example:
        >>> mean_std([0.17, 0.18, float("nan"), None, 0.19])
        (0.18, 0.01)
    """
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    spread = statistics.stdev(finite) if len(finite) > 1 else math.nan
    return round(statistics.fmean(finite), 12), round(spread, 12)


def columns_of(jobs: Sequence[dict[str, Any]]) -> list[str]:
    """stage/key columns present in the jobs' metrics.json, stages in run order, then mean."""
    stages = list(dict.fromkeys(s for j in jobs for s in j["stages"] if s != "mean"))
    last = stages[-1] if stages else None
    cols = [f"{s}/{k}" for s in stages for k in STAGE_KEYS]
    cols += [f"{last}/{k}" for k in LAST_STAGE_KEYS] if last else []
    cols.append("mean/si_rmse_log")
    return [c for c in cols if any(_value(j, c) is not None for j in jobs)]


def _value(job: dict[str, Any], column: str) -> float | None:
    stage, _, key = column.partition("/")
    return job["stages"].get(stage, {}).get(key)


#: The columns, and per variant: its name, its jobs, (mean, std) per column.
SeedStats = tuple[list[str], list[tuple[str, list, list[tuple[float, float]]]]]


def seed_stats(jobs: Sequence[dict[str, Any]]) -> SeedStats:
    """The columns, and per variant (best mean si_rmse_log of the last stage first) its jobs
    and `mean_std` of each column over them."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for job in sorted(jobs, key=lambda j: _natural(seed_of(j["overrides"]))):
        groups.setdefault(variant_of(job["overrides"]), []).append(job)
    columns = columns_of(jobs)
    stats = {v: [mean_std([_value(j, c) for j in members]) for c in columns]
             for v, members in groups.items()}
    sort_on = [i for i, c in enumerate(columns)  # the last stage's si_rmse_log
               if c.endswith("/si_rmse_log") and not c.startswith("mean/")][-1:]

    def order(variant: str) -> float:
        mean = stats[variant][sort_on[0]][0] if sort_on else math.nan
        return math.inf if math.isnan(mean) else mean

    return columns, [(v, groups[v], stats[v]) for v in sorted(groups, key=order)]


def seed_markdown(seed_table: SeedStats) -> str:
    """seeds.md: one row per variant, `n` seeds, which, and `mean ± std` per column."""
    columns, rows = seed_table
    return markdown_grid(["variant", "n", "seeds", *columns], [
        [variant, str(len(members)), " ".join(seed_of(j["overrides"]) for j in members),
         *(_fmt(m, sd) for m, sd in stats)] for variant, members, stats in rows])


def seed_csv_rows(seed_table: SeedStats) -> list[list[str]]:
    """seeds.csv: header and rows, `<column>_mean` and `<column>_std` as plain numbers."""
    columns, rows = seed_table
    header = ["variant", "n", *(f"{c}_{x}" for c in columns for x in ("mean", "std"))]
    return [header, *([variant, str(len(members)), *(_num(x) for pair in stats for x in pair)]
                      for variant, members, stats in rows)]


def has_repeats(jobs: Sequence[dict[str, Any]]) -> bool:
    """Whether some variant ran more than once (a seed list was swept)."""
    variants = [variant_of(j["overrides"]) for j in jobs]
    return len(set(variants)) < len(variants)


def _fmt(mean: float, std: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def _num(value: float) -> str:
    return "" if math.isnan(value) else repr(value)


def _natural(text: str) -> list:
    """Sort key that orders `seed=2` before `seed=10`."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]
