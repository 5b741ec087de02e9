"""The results table of a run or an evaluation, in Eigen et al. 2014's Table 1 layout: metrics
as rows, one column per predictor (Mean | Coarse | Coarse+Fine | any further stage), and the
depth-boundary F below the paper's rows (what a fine stage is for: sharper boundaries)."""

from __future__ import annotations

import math

from depth_lightning.evaluation.metrics import METRIC_KEYS

# Display names of the paper's columns; any other stage is shown by its own name.
COLUMN_NAMES = {"mean": "Mean", "coarse": "Coarse", "fine": "Coarse+Fine", "constant": "Constant"}
# Eigen et al. 2014 Table 1 row names, in METRIC_KEYS order (log10 is not in that table).
ROW_NAMES = {
    "delta1": "threshold δ < 1.25 (higher is better)",
    "delta2": "threshold δ < 1.25² (higher is better)",
    "delta3": "threshold δ < 1.25³ (higher is better)",
    "abs_rel": "abs relative difference",
    "sq_rel": "sqr relative difference",
    "rmse": "RMSE (linear)",
    "rmse_log": "RMSE (log)",
    "si_rmse_log": "RMSE (log, scale inv.)",
    "log10": "log10 error",
    "edge_f1": "depth-boundary F (higher is better)",
}
#: The table's rows: the nine metrics, then the boundary F (metrics.boundary).
TABLE_KEYS = (*METRIC_KEYS, "edge_f1")


def column_name(column: str) -> str:
    return COLUMN_NAMES.get(column, column)


def markdown_grid(header: list[str], rows: list[list[str]]) -> str:
    """A plain Markdown table of strings, one line per row, ending in a newline.

    Example:
        >>> print(markdown_grid(["job", "si"], [["a", "0.17"]]), end="")
        | job | si |
        |---|---|
        | a | 0.17 |
    """
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def markdown_table(metrics: dict[str, dict[str, float]], digits: int = 3) -> str:
    """The table as Markdown, columns in the order of `metrics`.

    Example:
        >>> print(markdown_table({"mean": {"rmse": 1.0}, "coarse": {"rmse": 0.5}}).splitlines()[2])
        | threshold δ < 1.25 (higher is better) | nan | nan |
    """
    cols = list(metrics)
    lines = ["| | " + " | ".join(column_name(c) for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    for key in TABLE_KEYS:
        values = " | ".join(f"{metrics[c].get(key, math.nan):.{digits}f}" for c in cols)
        lines.append(f"| {ROW_NAMES[key]} | {values} |")
    return "\n".join(lines)


def print_table(metrics: dict[str, dict[str, float]], title: str = "validation") -> None:
    """The table on the terminal (rich), four decimals."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    for c in metrics:
        table.add_column(column_name(c), justify="right")
    for key in TABLE_KEYS:
        table.add_row(key, *(f"{metrics[c].get(key, math.nan):.4f}" for c in metrics))
    Console().print(table)
