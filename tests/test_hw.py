"""The machine's fast defaults: precision choice and the CPU allocator setting."""

import subprocess
import sys

import pytest
from conftest import assert_one_line_error, run_module

from depth_lightning.core.hardware import reuse_freed_memory
from depth_lightning.errors import DepthLightningError

# Resident memory (MB) before and after freeing a 256 MB tensor, in a fresh process: the
# allocator setting is process-wide.
RSS_AFTER_FREE = """
import sys, torch
from depth_lightning.core.hardware import reuse_freed_memory
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
print(reuse_freed_memory(sys.argv[1]))
x = torch.ones(64 * 2**20)
before = rss_mb()
del x
print(before - rss_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize("mode", ["reuse", "system"])
def test_reuse_keeps_freed_memory_in_the_process_and_system_returns_it(mode):
    out = subprocess.run([sys.executable, "-c", RSS_AFTER_FREE, mode], capture_output=True,
                         text=True, check=True).stdout.split()
    applied, released_mb = out[0] == "True", float(out[1])
    assert applied == (mode == "reuse")
    if mode == "reuse":
        assert released_mb < 16, "the freed block stays for the next step"
    else:
        assert released_mb > 240, "glibc unmaps a 256 MB block when it is freed"


def test_unknown_allocator_mode_is_refused():
    with pytest.raises(DepthLightningError, match="cpu_allocator"):
        reuse_freed_memory("jemalloc")


@pytest.mark.cli
def test_train_with_an_unknown_allocator_mode_is_one_line(tmp_path):
    res = run_module("depth_lightning.train", "cpu_allocator=fast", "++trainer.fast_dev_run=true",
                     f"paths.log_dir={tmp_path / 'outputs'}", cwd=tmp_path)
    assert_one_line_error(res, "cpu_allocator", "'fast'")
    assert not list((tmp_path / "outputs").rglob("config.yaml")), "nothing half-written"


@pytest.mark.parametrize("capability, accelerator, expected", [
    ((7, 5), "auto", "16-mixed"),   # a T4 or V100: fp16 with loss scaling, the norm there
    ((8, 0), "gpu", "bf16-mixed"),  # Ampere and newer: bf16
    ((7, 5), "cpu", "32-true"),     # the GPU left unused
])
def test_precision_auto_on_cuda_gpus(monkeypatch, capability, accelerator, expected):
    import torch

    from depth_lightning.core import hardware

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    hardware.native_bf16.cache_clear()
    try:
        assert hardware.resolve_precision("auto", accelerator) == expected
        assert hardware.resolve_precision("32-true", accelerator) == "32-true"
    finally:
        hardware.native_bf16.cache_clear()
