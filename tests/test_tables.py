"""The results table in Eigen et al. 2014's layout."""

from depth_lightning.evaluation.metrics import METRIC_KEYS
from depth_lightning.reporting.tables import (
    ROW_NAMES,
    TABLE_KEYS,
    column_name,
    markdown_table,
    print_table,
)


def test_markdown_rows_and_columns_in_order():
    metrics = {"mean": dict.fromkeys(METRIC_KEYS, 0.5), "coarse": dict.fromkeys(METRIC_KEYS, 0.25),
               "fine2": {"rmse": 0.125}}
    lines = markdown_table(metrics).splitlines()
    assert lines[0] == "| | Mean | Coarse | fine2 |"
    assert len(lines) == 2 + len(METRIC_KEYS) + 1  # the nine, then the boundary F
    assert lines[2 + METRIC_KEYS.index("rmse")] == "| RMSE (linear) | 0.500 | 0.250 | 0.125 |"
    assert lines[2] == "| threshold δ < 1.25 (higher is better) | 0.500 | 0.250 | nan |"
    assert lines[-1] == "| depth-boundary F (higher is better) | nan | nan | nan |"
    assert set(ROW_NAMES) == set(TABLE_KEYS) == {*METRIC_KEYS, "edge_f1"}
    assert column_name("fine") == "Coarse+Fine"


def test_the_terminal_table(capsys):
    print_table({"mean": {"rmse": 1.0}, "fine": {"rmse": 0.5}})
    out = capsys.readouterr().out
    assert "Coarse+Fine" in out and "1.0000" in out and "0.5000" in out
