"""Checks of user settings (each bad value becomes one line naming the setting) and paths as
the user meant them."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from depth_lightning.errors import DepthLightningError


def user_path(path: str | Path) -> Path:
    """A path as the user meant it: relative paths are taken from the directory the command was
    started in (Hydra's runtime.cwd when a Hydra job runs, else the working directory)."""
    p = Path(str(path)).expanduser()
    if p.is_absolute():
        return p
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.cwd) / p
    except ValueError:  # not running under Hydra
        return Path.cwd() / p


def required(cfg: Any, key: str, hint: str) -> Any:
    """cfg[key], or a one-line error naming the setting when it was left at ??? or empty."""
    from omegaconf import OmegaConf

    if OmegaConf.is_missing(cfg, key) or cfg.get(key) in (None, ""):
        raise DepthLightningError(f"{key}: required, {hint}")
    return cfg[key]


def whole_number(value: Any, setting: str, minimum: int = 1) -> int:
    """`value` as an int >= `minimum`, else a one-line error naming `setting`."""
    try:
        number = int(value)
        if isinstance(value, bool) or number != float(value):
            raise ValueError
    except (TypeError, ValueError):
        raise DepthLightningError(f"{setting}: must be a whole number >= {minimum}, got "
                                  f"{value!r}") from None
    if number < minimum:
        raise DepthLightningError(f"{setting}: must be at least {minimum}, got {number}")
    return number


def number(value: Any, setting: str, minimum: float | None = None) -> float:
    """`value` as a finite float (>= `minimum` if given), else a one-line error."""
    try:
        x = float(value)
        if isinstance(value, bool) or not math.isfinite(x):
            raise ValueError
    except (TypeError, ValueError):
        raise DepthLightningError(f"{setting}: must be a number, got {value!r}") from None
    if minimum is not None and x < minimum:
        raise DepthLightningError(f"{setting}: must be at least {minimum:g}, got {x:g}")
    return x


def mapping(value: Any, setting: str, example: str) -> dict:
    """`value` as a dict, else a one-line error saying that `setting` is a group of settings
    (e.g. `data.split=all` where `data.split.kind=all` was meant)."""
    from collections.abc import Mapping

    if isinstance(value, Mapping):
        return dict(value)
    raise DepthLightningError(f"{setting}: is a group of settings, not {value!r}; set one of "
                              f"them, e.g. {example}")


def writable(folder: Path, setting: str) -> Path:
    """`folder` exists (created if need be) and can be written to, else a one-line error."""
    import os

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DepthLightningError(f"{setting}: cannot create {folder} ({e.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DepthLightningError(f"{setting}: {folder} is not writable")
    return folder
