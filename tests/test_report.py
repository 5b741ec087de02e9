"""The report command: training runs as the seed's Table 1 beside the published numbers."""

import csv
import json
from pathlib import Path

import pytest
from conftest import run_module
from fixtures_runs import tiny_run  # noqa: F401

from depth_lightning.cli.reports import report_main as main

PUBLISHED = {
    ("Seed (published)", "Coarse"): ("0.316", "0.327", "0.452"),
    ("Seed (published)", "Coarse+Fine"): ("0.278", "0.285", "0.413"),
    ("Eigen 2014 (published)", "Coarse"): ("", "0.221", "0.283"),
    ("Eigen 2014 (published)", "Coarse+Fine"): ("", "0.219", "0.285"),
}
VALUES = ("train_si_rmse_log", "val_si_rmse_log", "val_rmse_log")


def read_csv(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(path, newline="") as f:
        return {(r["source"], r["stage"]): r for r in csv.DictReader(f)}


def fake_run(root: Path, name: str, stages: dict[str, list[dict]], metrics: dict | None) -> Path:
    """A run folder as the train command leaves it: metrics.json and <stage>/epochs.csv."""
    run = root / name
    run.mkdir(parents=True)
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
    for stage, rows in stages.items():
        (run / stage).mkdir()
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(run / stage / "epochs.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(rows)
    (run / "config.yaml").write_text("data:\n  source: nyu_v1\n")
    return run


def epoch(e, train, val=None, val_log=None):
    row = {"epoch": e, "step": 10 * e, "train/loss": 0.1, "train/si_rmse_log": train}
    if val is not None:
        row.update({"val/si_rmse_log": val, "val/rmse_log": val_log})
    return row


def test_report_of_a_trained_run(tiny_run, tmp_path):  # noqa: F811
    res = run_module("depth_lightning.report", str(tiny_run.run_dir), "--out", "rep",
                     cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = read_csv(tmp_path / "rep" / "report.csv")
    metrics = json.loads((tiny_run.run_dir / "metrics.json").read_text())
    name = tiny_run.run_dir.name
    for stage, col in (("coarse", "Coarse"), ("fine", "Coarse+Fine")):
        row = rows[(name, col)]
        assert row["kind"] == "run" and row["data"] == "synthrooms (24 frames)"
        assert float(row["val_si_rmse_log"]) == pytest.approx(metrics[stage]["si_rmse_log"],
                                                              rel=1e-5)
        assert float(row["val_rmse_log"]) == pytest.approx(metrics[stage]["rmse_log"], rel=1e-5)
        with open(tiny_run.run_dir / stage / "epochs.csv", newline="") as f:
            (first,) = list(csv.DictReader(f))
        assert float(row["train_si_rmse_log"]) == pytest.approx(
            float(first["train/si_rmse_log"]), rel=1e-5)
    for key, values in PUBLISHED.items():
        assert tuple(rows[key][v] for v in VALUES) == values
    md = (tmp_path / "rep" / "report.md").read_text()
    assert f"| Average loss | {name} Coarse | {name} Coarse+Fine | Seed (published) Coarse" in md
    for line in ("| RMSE (log, scale inv.) Training |", "| RMSE (log, scale inv.) Validation |",
                 "| RMSE (log) Validation |"):
        assert line in md
    assert "| 0.316 | 0.278 | – | – |" in md  # the published training row
    assert md in res.stdout


def test_best_epoch_fallbacks_and_folders_of_runs(tmp_path):
    runs = tmp_path / "multirun"
    # coarse: epoch 1 has the best validation; epoch 2 was not validated
    fake_run(runs, "0_lam=0.5", {
        "coarse": [epoch(0, 0.40, 0.45, 0.60), epoch(1, 0.30, 0.33, 0.50), epoch(2, 0.25)],
        "fine": [epoch(0, 0.28, 0.31, 0.44)],
    }, {"coarse": {"si_rmse_log": 0.33, "rmse_log": 0.50},
        "fine": {"si_rmse_log": 0.31, "rmse_log": 0.44}})
    # no metrics.json (an interrupted run): validation from the best epoch; the coarse stage
    # came from model.coarse_ckpt, so it has metrics but no epochs
    fake_run(runs, "1_lam=1.0", {"fine": [epoch(0, 0.5), epoch(1, 0.45, 0.36, 0.47)]}, None)
    fake_run(tmp_path, "coarse_only", {}, {"coarse": {"si_rmse_log": 0.3, "rmse_log": 0.4}})
    assert main([str(runs), str(tmp_path / "coarse_only"), "--out", str(tmp_path / "r")]) == 0
    rows = read_csv(tmp_path / "r" / "report.csv")
    assert tuple(rows[("0_lam=0.5", "Coarse")][v] for v in VALUES) == ("0.3", "0.33", "0.5")
    assert tuple(rows[("0_lam=0.5", "Coarse+Fine")][v] for v in VALUES) == ("0.28", "0.31",
                                                                             "0.44")
    assert tuple(rows[("1_lam=1.0", "Coarse+Fine")][v] for v in VALUES) == ("0.45", "0.36",
                                                                             "0.47")
    assert ("1_lam=1.0", "Coarse") not in rows
    assert tuple(rows[("coarse_only", "Coarse")][v] for v in VALUES) == ("", "0.3", "0.4")
    assert ("coarse_only", "Coarse+Fine") not in rows
    assert rows[("coarse_only", "Coarse")]["data"] == "nyu_v1"
    assert len(rows) == 4 + len(PUBLISHED)


def test_bad_run_folders_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "nope")]) == 1
    assert main([str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "nope: no such run folder" in err[0] and "empty: not a training run" in err[1]
    assert not (tmp_path / "report.md").exists()
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "RUN_DIR" in capsys.readouterr().out
