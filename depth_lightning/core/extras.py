"""Optional features and the extra that installs each: one clear error instead of a traceback."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from depth_lightning.errors import DepthLightningError


def has(module: str) -> bool:
    """Whether `module` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def need(module: str, feature: str, extra: str = "app") -> ModuleType:
    """Import `module` for `feature`; a DepthLightningError naming the extra to install when it
    is missing (or broken)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise DepthLightningError(
            f"{feature} needs the {module.split('.')[0]} package, in the {extra} extra: "
            f"pip install 'depth_lightning[{extra}]' ({' '.join(str(e).split())[:120]})") \
            from None
