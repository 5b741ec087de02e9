"""What the hardware runs fast: the project's "fast defaults" are chosen here, per machine, and
the device a command runs on."""

from __future__ import annotations

import ctypes
import functools
import sys
from pathlib import Path

import torch

from depth_lightning.errors import DepthLightningError


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


def resolve_precision(precision: str | int | None, accelerator: str | None = "auto"
                      ) -> str | int | None:
    """`auto` -> bf16-mixed where bf16 is native; 16-mixed (fp16 with loss scaling) on a CUDA
    GPU without it (before Ampere), the norm there; else 32-true. Anything else is Lightning's
    own. `accelerator` is the Trainer's: `cpu` rules out the GPU."""
    if precision != "auto":
        return precision
    on_gpu = torch.cuda.is_available() and str(accelerator) in ("auto", "gpu", "cuda", "None")
    if on_gpu:
        return "bf16-mixed" if native_bf16() else "16-mixed"
    return "bf16-mixed" if native_bf16() and not torch.cuda.is_available() else "32-true"


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def reuse_freed_memory(mode: str = "reuse") -> bool:
    """Keep memory that a CPU step frees for the next step (glibc); True when applied.

    A training step frees and reallocates hundreds of MB (autocast's bf16 weight copies,
    gradients, activations). glibc hands every block above 32 MB back to the kernel and the next
    step faults it in again, zero-filled: ~20 % of a bf16 coarse step here. With mmap off and no
    trimming, freed blocks stay in the heap and are reused (`python -m depth_lightning.bench`
    shows the gain); resident memory then stays at its peak, which training reaches every step
    anyway. `mode`: `reuse` (the default) or `system` (leave malloc as it is).
    """
    if mode not in ("reuse", "system"):
        raise DepthLightningError(f"cpu_allocator: {mode!r} is not reuse or system")
    if mode == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1



def resolve_device(name: str | torch.device, cpu_allocator: str = "reuse") -> torch.device:
    """`auto` -> cuda when available, else cpu; anything else as torch names it. On the CPU the
    allocator is set up as `cpu_allocator` says (:func:`reuse_freed_memory`)."""
    if isinstance(name, torch.device):
        device = name
    elif name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(name)
        except RuntimeError as e:
            raise DepthLightningError(f"device: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DepthLightningError(f"device: {name} is not available here (this torch has no "
                                  "usable CUDA device); use device=cpu or device=auto")
    if device.type not in ("cpu", "cuda", "mps") or (
            device.type == "mps" and not torch.backends.mps.is_available()):
        raise DepthLightningError(f"device: {name} is not available here (cpu, cuda or auto)")
    if device.type == "cpu":
        reuse_freed_memory(cpu_allocator)
    return device
