"""What the hardware runs fast: the project's "fast defaults" are chosen here, per machine."""

from __future__ import annotations

import functools
from pathlib import Path

import torch


@functools.cache
def native_bf16() -> bool:
    """True where bf16 matrix maths runs natively: NVIDIA Ampere or newer, CPUs with AMX or
    AVX512-BF16. Elsewhere bf16 autocast is emulated and slower than fp32."""
    if torch.cuda.is_available():
        return torch.cuda.get_device_capability()[0] >= 8
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "").split()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str | int | None) -> str | int | None:
    """`auto` -> bf16-mixed where native, else 32-true; anything else is Lightning's own."""
    if precision == "auto":
        return "bf16-mixed" if native_bf16() else "32-true"
    return precision
