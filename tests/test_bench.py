"""The benchmark runs end to end and reports every figure (speed itself is not tested here:
timings on a shared machine are noise; the README reports measured figures)."""

import json

from conftest import run_module

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
