"""Building plug-ins from their `_target_` and checking their contracts, at start.

Networks, losses and data sources are built from Hydra `_target_`s, from this package or from
any module on PYTHONPATH. A plug-in that cannot be built, or breaks its contract (wrong output
shape or type, a missing frame key), is refused here with one line naming the setting, before
any training starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from hydra.utils import get_object, instantiate
from torch import Tensor

from depth_lightning.errors import DepthLightningError, first_line, user_cause


def build(cfg: Mapping[str, Any], setting: str, **kwargs: Any) -> Any:
    """`instantiate(cfg, **kwargs)`, with every failure as one DepthLightningError that names
    `setting` and the target."""
    if not isinstance(cfg, Mapping) or "_target_" not in cfg:
        raise DepthLightningError(f"{setting}: needs a _target_ (a class or function to build)")
    target = cfg["_target_"]
    try:
        return instantiate(cfg, **kwargs)
    except Exception as e:
        cause = user_cause(e)
        if isinstance(cause, DepthLightningError):
            raise cause from None
        text = first_line(cause)
        if isinstance(cause, (ImportError, AttributeError)) or "Error locating target" in text:
            text = f"cannot import {target} ({text})"
        raise DepthLightningError(f"{setting}: {target}: {text}") from None


def takes(target: Any, parameter: str) -> bool:
    """Whether the class or function named `target` has a parameter `parameter` (False when it
    cannot be imported: `build` then says what is wrong)."""
    try:
        return parameter in inspect.signature(get_object(str(target))).parameters
    except Exception:
        return False


def check_log_depth(out: Any, setting: str, batch: int, size: tuple[int, int]) -> None:
    """A network's output must be a tensor of log depth shaped (B,1,H,W)."""
    want = (batch, 1, *size)
    if not isinstance(out, Tensor):
        raise DepthLightningError(f"{setting}: returned {type(out).__name__}, expected a "
                                  f"tensor of log depth shaped {want}")
    if tuple(out.shape) != want:
        raise DepthLightningError(f"{setting}: returned shape {tuple(out.shape)}, expected "
                                  f"log depth shaped {want}")
    if not out.is_floating_point():
        raise DepthLightningError(f"{setting}: returned {out.dtype}, expected float log depth")


def check_loss(loss: Any, setting: str, size: tuple[int, int]) -> None:
    """A loss must be callable as (log_pred, depth, mask) and return a scalar tensor."""
    if not callable(loss):
        raise DepthLightningError(f"{setting}: {type(loss).__name__} is not callable as "
                                  "(log_pred, depth, mask)")
    depth = torch.ones(1, 1, *size)
    try:
        value = loss(torch.zeros(1, 1, *size, requires_grad=True), depth, depth > 0)
    except DepthLightningError:
        raise
    except Exception as e:
        raise DepthLightningError(f"{setting}: calling it as (log_pred, depth, mask) failed "
                                  f"({first_line(e)})") from None
    if not isinstance(value, Tensor) or value.numel() != 1:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise DepthLightningError(f"{setting}: returned {shape}, expected a scalar tensor")


def check_frame(frame: Any, setting: str, index: int = 0) -> None:
    """A data source's frame: a dict with `image` uint8 (H,W,3) and `depth` float32 (H,W) in
    metres of the same size; `raw_depth` (same shape) and `scene` (str) optional."""
    where = f"{setting}: frame {index}"
    if not isinstance(frame, Mapping):
        raise DepthLightningError(f"{where} is a {type(frame).__name__}, expected a dict with "
                                  "'image' and 'depth'")
    for key in ("image", "depth"):
        if key not in frame:
            raise DepthLightningError(f"{where} has no {key!r} (keys: {sorted(frame)})")
    image = np.asarray(frame["image"])
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise DepthLightningError(f"{where}: 'image' is {image.dtype} {image.shape}, expected "
                                  "uint8 (H, W, 3)")
    for key in ("depth", "raw_depth"):
        if key not in frame:
            continue
        depth = np.asarray(frame[key])
        if depth.shape != image.shape[:2] or depth.dtype.kind != "f":
            raise DepthLightningError(f"{where}: {key!r} is {depth.dtype} {depth.shape}, "
                                      f"expected float metres shaped {image.shape[:2]}")
    if "scene" in frame and not isinstance(frame["scene"], str):
        raise DepthLightningError(f"{where}: 'scene' is {type(frame['scene']).__name__}, "
                                  "expected str")
