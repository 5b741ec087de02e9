"""compare: the swept settings as the legend, small multiples per stage, any number of jobs,
paper formats."""

import csv
import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from depth_lightning.cli.reports import compare_main as main
from depth_lightning.reporting.compare import compare, read_job, swept_labels

CONSTANT = ["+experiment=fine", "model.net.coarse6_units=64", "paths.log_dir=/x"]


def fake_sweep(root: Path, lams: list[float], stages: tuple[str, ...] = ("coarse", "fine"),
               epochs: int = 4) -> Path:
    """A multirun folder as Hydra and the train command leave it, with made-up numbers that
    differ from the Mean baseline only in the third decimal (what makes matplotlib's offset)."""
    for n, lam in enumerate(lams):
        job = root / f"{n}_model.loss.lam={lam}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(
            yaml.safe_dump([*CONSTANT, f"model.loss.lam={lam}"]))
        metrics = {"mean": {"si_rmse_log": 0.2345}}
        for k, stage in enumerate(stages):
            rows = [{"epoch": e, "val/si_rmse_log": 0.2344 - 1e-5 * (e + k + lam)}
                    for e in range(epochs)]
            (job / stage).mkdir()
            with open(job / stage / "epochs.csv", "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=["epoch", "val/si_rmse_log"])
                w.writeheader()
                w.writerows(rows)
            metrics[stage] = {"si_rmse_log": rows[-1]["val/si_rmse_log"], "rmse_log": 0.3}
        (job / "metrics.json").write_text(json.dumps(metrics))
    return root


def test_legend_holds_only_the_swept_setting():
    jobs = [{"job": str(i), "overrides": [*CONSTANT, f"model.loss.lam={v}"]}
            for i, v in enumerate((0, 0.5))]
    assert swept_labels(jobs) == ["model.loss.lam=0", "model.loss.lam=0.5"]
    jobs[1]["overrides"].append("seed=3")  # set in one job only: also what tells them apart
    assert swept_labels(jobs) == ["model.loss.lam=0", "model.loss.lam=0.5 seed=3"]
    one = [{"job": "0", "overrides": ["a=1"]}]
    assert swept_labels(one) == ["a=1"]


@pytest.mark.parametrize("n_jobs", [2, 6, 24])
def test_figure_fits_any_number_of_jobs(tmp_path, n_jobs):
    root = fake_sweep(tmp_path / "sweep", [i / 10 for i in range(n_jobs)])
    jobs = compare(root)
    assert len(jobs) == n_jobs
    job = read_job(root / "0_model.loss.lam=0.0")
    assert [e for e, _ in job["curves"]["fine"]] == [0, 1, 2, 3], "epochs from 0 per stage"
    with Image.open(root / "compare.png") as im:
        w, h = im.size
    assert w > 2 * 380 and 300 < h < 1000, (w, h)  # two panels side by side, never a strip


def test_plain_tick_labels(tmp_path):
    """No offset text such as '1e-5+2.344e-1' above the y axis."""
    import matplotlib.pyplot as plt

    from depth_lightning.reporting import compare as module

    root = fake_sweep(tmp_path / "sweep", [0, 1])
    seen = []
    original = module._plot_curves

    def spy(jobs, path, dpi=100):
        real_close = plt.close
        plt.close = lambda fig=None: seen.append(
            [ax.yaxis.get_offset_text().get_text() for ax in fig.axes]) or real_close(fig)
        try:
            original(jobs, path, dpi)
        finally:
            plt.close = real_close

    module._plot_curves = spy
    try:
        compare(root)
    finally:
        module._plot_curves = original
    assert seen == [["", ""]]


def test_pdf_and_dpi(tmp_path, capsys):
    root = fake_sweep(tmp_path / "sweep", [0, 1], stages=("coarse",))
    assert main([str(root), "--format", "pdf"]) == 0
    assert (root / "compare.pdf").read_bytes()[:5] == b"%PDF-"
    assert main([str(root), "--dpi", "200"]) == 0
    with Image.open(root / "compare.png") as im:
        assert round(im.info["dpi"][0]) == 200
    assert main([str(root), "--dpi", "1"]) == 1
    assert "error: viz.dpi: 1 is not a whole number from 10 to 2400" in capsys.readouterr().err


def test_edge_scores_join_the_table_where_compare_edges_wrote_them(tmp_path):
    root = fake_sweep(tmp_path / "sweep", [0.0, 0.5])
    plain = compare(root)
    assert "edge_f1" not in (root / "compare.md").read_text()
    job = next(j for j in sorted(root.iterdir()) if j.name.startswith("0_"))
    (job / "edges.json").write_text(json.dumps({"threshold": 0.1, "radius": 2, "stage": "fine",
                                                "edge_precision": 0.25, "edge_recall": 0.5,
                                                "edge_f1": 1 / 3}))
    jobs = compare(root)
    assert [j["job"] for j in jobs] == [j["job"] for j in plain]
    rows = list(csv.DictReader(open(root / "compare.csv")))
    by_job = {r["job"]: r for r in rows}
    assert by_job[job.name]["edge_precision"] == "0.2500"
    assert by_job[job.name]["edge_f1"] == "0.3333"
    other = next(r for r in rows if r["job"] != job.name)
    assert other["edge_recall"] == ""  # not scored: left empty, not zero
    assert list(rows[0])[-4:] == ["edge_precision", "edge_recall", "edge_f1", "mean_si_rmse_log"]


def test_edge_table_rows_are_named_by_what_differs_and_never_collide():
    from depth_lightning.reporting.compare_edges import job_names

    def job(name, *overrides):
        return {"job": name, "overrides": list(overrides)}

    comparison = [job("0", "+compare=paper", "+hparams_search=compare"),
                  job("1", "+compare=unet", "+hparams_search=compare")]
    assert job_names(comparison) == ["paper", "unet"]
    losses = [job(str(i), "+experiment=fine", "model.coarse_ckpt=/c.ckpt", f"+model/loss={x}")
              for i, x in enumerate(["berhu", "log_l1"])]
    assert job_names(losses) == ["+model/loss=berhu", "+model/loss=log_l1"]
    twins = [job("run_a", "+experiment=adversarial"), job("run_b", "+experiment=adversarial")]
    assert job_names(twins) == ["adversarial (run_a)", "adversarial (run_b)"]


def seeded_sweep(root: Path, scores: dict[str, dict[int, tuple[float, float, float]]]) -> Path:
    """A multirun of variants x seeds; per job (coarse si, fine si, fine edge_f1)."""
    n = 0
    for lam, by_seed in scores.items():
        for seed, (coarse, fine, edge) in by_seed.items():
            job = root / f"{n}_seed={seed}"
            (job / ".hydra").mkdir(parents=True)
            (job / ".hydra" / "overrides.yaml").write_text(
                yaml.safe_dump([*CONSTANT, f"model.loss.lam={lam}", f"seed={seed}"]))
            (job / "metrics.json").write_text(json.dumps({
                "mean": {"si_rmse_log": 0.2251},
                "coarse": {"si_rmse_log": coarse, "edge_f1": 0.1},
                "fine": {"si_rmse_log": fine, "edge_f1": edge, "delta1": 0.7}}))
            n += 1
    return root


def test_seeds_of_a_variant_are_one_row_with_mean_and_sample_std(tmp_path, capsys):
    import numpy as np

    scores = {"1": {0: (0.180, 0.170, 0.20), 1: (0.182, 0.174, 0.30), 2: (0.184, 0.172, 0.40)},
              "0.5": {0: (0.170, 0.160, 0.50), 1: (0.176, 0.168, 0.70)}}
    root = seeded_sweep(tmp_path / "sweep", scores)
    assert main([str(root)]) == 0
    assert "mean ± standard deviation over seeds" in capsys.readouterr().out
    lines = (root / "seeds.md").read_text().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:3] == ["variant", "n", "seeds"]
    assert header[3:] == ["coarse/si_rmse_log", "coarse/edge_f1", "fine/si_rmse_log",
                          "fine/edge_f1", "fine/delta1", "mean/si_rmse_log"]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [r[1] for r in rows] == ["2", "3"], "best fine si first: lam 0.5 (0.164)"
    assert rows[0][0].endswith("model.loss.lam=0.5") and "seed=" not in rows[0][0]
    assert rows[1][2] == "seed=0 seed=1 seed=2"
    fine = np.array([v[1] for v in scores["1"].values()])
    assert rows[1][5] == f"{fine.mean():.4f} ± {fine.std(ddof=1):.4f}"  # 0.1720 ± 0.0020
    table = list(csv.DictReader(open(root / "seeds.csv")))
    assert float(table[1]["fine/edge_f1_std"]) == pytest.approx(0.1)
    assert float(table[0]["fine/si_rmse_log_mean"]) == pytest.approx(0.164)


def test_no_seed_table_without_repeated_variants(tmp_path):
    root = seeded_sweep(tmp_path / "sweep", {"1": {0: (0.18, 0.17, 0.2)},
                                             "0.5": {0: (0.17, 0.16, 0.5)}})
    compare(root)
    assert (root / "compare.md").is_file() and not (root / "seeds.md").exists()
