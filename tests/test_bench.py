"""The benchmark runs end to end and reports every figure (speed itself is not tested here:
timings on a shared machine are noise; docs/speed.md reports measured figures)."""

import json

import pytest
from conftest import run_module
from fixtures_runs import tiny_run  # noqa: F401

pytestmark = pytest.mark.cli  # commands in subprocesses: make test-fast leaves them out

KEYS = {"plain_fp32_img_s", "plain_fp32_same_alloc_img_s", "lightning_fp32_img_s",
        "coarse_img_s", "fine_img_s", "loader_img_s", "infer_img_s"}


def test_bench_prints_a_table_and_a_json_last_line(tmp_path, synth_data_dir):
    data = next(synth_data_dir.glob("synthrooms_*.mat"))
    res = run_module("depth_lightning.bench", "--steps", "1", "--batch", "4", "--data",
                     str(data), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    last = res.stdout.strip().splitlines()[-1]
    figures = json.loads(last)
    assert KEYS <= set(figures)
    assert all(figures[k] > 0 for k in KEYS)
    assert "(a) plain PyTorch loop" in res.stdout
    assert figures["cpu_allocator"] == "reuse"  # the CPU runs of this suite are on glibc


def test_discriminator_bench_trains_each_view_on_a_run(tiny_run, tmp_path):  # noqa: F811
    res = run_module("depth_lightning.bench.discriminator", str(tiny_run.run_dir), "--steps",
                     "4", "--frames", "12", "--held-out", "4", "--batch", "4", "--width", "8",
                     cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    figures = json.loads(res.stdout.strip().splitlines()[-1])
    assert [r["variant"] for r in figures["results"]] == ["raw", "centred", "centred_x4"]
    for r in figures["results"]:
        assert len(r["quarters"]) == 4 and 0 <= r["held_out"] <= 1
    assert res.stdout.startswith("12 frames, mean |log real - log fake|")


def test_balanced_accuracy_is_the_mean_of_both_shares():
    import torch

    from depth_lightning.bench.discriminator import balanced_accuracy

    real = torch.tensor([1.0, 2.0, -1.0, 0.5])  # 3 of 4 called real
    fake = torch.tensor([-1.0, 1.0])  # 1 of 2 called fake
    assert balanced_accuracy(real, fake) == (0.75 + 0.5) / 2
