"""Checkpoints: safe loading (`weights_only=True`), the stage they hold, and rebuilding it.

A depth_lightning checkpoint is Lightning's (or a `.safetensors` file with the same entries,
depth_lightning.models.weights), plus ``checkpoint["depth_lightning"] = {"stage":
name, "format": 2, "module": class path, "columns": [...], "data": {...}}``. Its
hyper-parameters are the stage's primitive settings, the frozen networks below it included
(``base``), so one file rebuilds the stage as the class `module` names. Checkpoints written
before the stage classes had modules of their own (no `module`) are read as the coarse or
fine stage they hold, with the class paths of their settings mapped (:func:`upgraded`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from depth_lightning.errors import CheckpointError, DepthLightningError, first_line
from depth_lightning.models.weights import is_safetensors, read_safetensors

if TYPE_CHECKING:
    from depth_lightning.models.stage import DepthStage

CHECKPOINT_FORMAT = 2
#: class paths of settings saved by earlier versions -> where they live now
MOVED = {"depth_lightning.field_losses.": "depth_lightning.losses.field.",
         "depth_lightning.stages.": "depth_lightning.models.",
         "depth_lightning.adversarial.": "depth_lightning.models."}
COARSE, FINE = "depth_lightning.models.CoarseStage", "depth_lightning.models.FineStage"


def class_path(cls: type) -> str:
    """The import path a checkpoint records for a class."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _moved(value: Any) -> Any:
    """`value` with every `_target_` of an earlier version's layout mapped to today's."""
    if isinstance(value, dict):
        out = {k: _moved(v) for k, v in value.items()}
        target = out.get("_target_")
        for old, new in MOVED.items():
            if isinstance(target, str) and target.startswith(old):
                out["_target_"] = new + target[len(old):]
        return out
    if isinstance(value, list):
        return [_moved(v) for v in value]
    return value


def upgraded(ckpt: dict) -> dict:
    """A checkpoint written before the stage classes (no `module`), as one written now: the
    coarse stage when it builds on nothing, else the fine stage (which has no head start of
    its own), and the class paths of its settings mapped."""
    info = ckpt["depth_lightning"]
    if "module" in info:
        return ckpt
    hp = _moved(dict(ckpt["hyper_parameters"]))
    if hp.get("base"):
        module = FINE
        for key in ("head_init", "head_scale"):
            hp.pop(key, None)
    else:
        module = COARSE
        hp.pop("base", None)
    return {**ckpt, "hyper_parameters": hp, "depth_lightning": {**info, "module": module}}


def holds_pickled_code(path: Path) -> bool:
    """Whether a file that torch's weights-only loader refused is a pickle that names code to
    call (a class or function), in torch's zip format or as a bare pickle, as opposed to a
    file that is no pickle at all (truncated, random, another format)."""
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                name = next(n for n in zf.namelist() if n.endswith("data.pkl"))
                data = zf.read(name)
        else:
            data = path.read_bytes()
        ops = [op.name for op, _, _ in pickletools.genops(data)]
    except Exception:  # not a pickle (or not a complete one)
        return False
    return any(op in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ") for op in ops) and \
        any(op in ("REDUCE", "BUILD", "NEWOBJ", "NEWOBJ_EX", "INST", "OBJ") for op in ops)


def load_checkpoint(path: str | Path, expect_stage: str | None = None,
                    setting: str = "ckpt_path") -> dict:
    """Load a depth_lightning checkpoint safely (`weights_only=True`) and check its stage."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise CheckpointError(f"{setting}: {path} is a folder; give a checkpoint file such as "
                              f"{path / 'fine' / 'checkpoints' / 'best.ckpt'}")
    if not path.is_file():
        raise CheckpointError(f"{setting}: {path} does not exist")
    try:
        ckpt = read_safetensors(path, setting) if is_safetensors(path) else \
            torch.load(path, map_location="cpu", weights_only=True)
    except CheckpointError:
        raise
    except Exception as e:  # pickled code, truncated file, not a torch file at all
        if holds_pickled_code(path):
            raise CheckpointError(
                f"{setting}: {path} holds pickled code, refused (only plain weights are loaded)"
            ) from None
        reason = "not a torch file" if "Weights only" in str(e) else first_line(e)
        raise CheckpointError(f"{setting}: {path} is not a readable checkpoint ({reason})"
                              ) from None
    info = ckpt.get("depth_lightning") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or "stage" not in info:
        raise CheckpointError(f"{setting}: {path} is not a depth_lightning checkpoint")
    if info.get("format") != CHECKPOINT_FORMAT or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{setting}: {path} was written by another version of "
                              f"depth_lightning (format {info.get('format')}, this one reads "
                              f"{CHECKPOINT_FORMAT})")
    if expect_stage and info["stage"] != expect_stage:
        raise CheckpointError(
            f"{setting}: {path} is a {info['stage']}-stage checkpoint, expected {expect_stage}"
        )
    return upgraded(ckpt)


def base_chain_of(ckpt: dict) -> tuple[list[dict], dict[str, Tensor]]:
    """The frozen chain a stage building on `ckpt`'s stage receives: the specs
    ``[{"name", "net"}, ...]`` of every network up to and including that stage's own, and
    their weights keyed as in :class:`depth_lightning.models.fine.FrozenChain`."""
    hp = ckpt["hyper_parameters"]
    below = list(hp.get("base") or [])
    specs = [*below, {"name": hp["name"], "net": hp["net"]}]
    own = f"nets.{len(below)}."
    state = {}
    for key, value in ckpt["state_dict"].items():
        if key.startswith("base.nets."):
            state[key[len("base."):]] = value
        elif key.startswith("net."):
            state[own + key[len("net."):]] = value
    return specs, state


def load_stage(path: str | Path, setting: str = "ckpt_path",
               expect_stage: str | None = None) -> DepthStage:
    """The stage saved in a depth_lightning checkpoint, in eval mode.

    The file is read once with `weights_only=True` (load_checkpoint refuses pickled code and
    files that are not depth_lightning checkpoints); the module is rebuilt from its saved
    primitive hyper-parameters exactly as it was built for training (the same random draws),
    then given the saved weights.
    """
    return stage_from_checkpoint(load_checkpoint(path, expect_stage, setting=setting), path,
                                 setting)


def stage_from_checkpoint(ckpt: dict, path: str | Path, setting: str = "ckpt_path"
                          ) -> DepthStage:
    """The stage of a checkpoint `load_checkpoint` returned, in eval mode (for callers that
    also read the checkpoint's other entries, such as its data settings)."""
    from hydra.utils import get_class

    info = ckpt["depth_lightning"]
    try:
        cls = get_class(info["module"])
        if not hasattr(cls, "inference_class"):
            raise TypeError(f"{info['module']} is not a depth_lightning stage")
        module = cls(**ckpt["hyper_parameters"])
        module.load_state_dict(ckpt["state_dict"])
    except DepthLightningError:
        raise
    except Exception as e:  # a class that moved away, settings it no longer takes, ...
        raise CheckpointError(f"{setting}: {path} does not hold a loadable {info['stage']} "
                              f"stage ({first_line(e)})") from None
    return module.eval()
