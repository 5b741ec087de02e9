"""Weights in files: safetensors checkpoints of a stage, and pretrained weights for a network.

A stage saved as ``.safetensors`` (:func:`save_safetensors`) holds its tensors and, as JSON in
the file's metadata, what `load_checkpoint` needs to rebuild it: no optimiser state and no
pickle, so it is safe to share and to load anywhere. :func:`load_net_weights` gives a network
(or its encoder) the tensors of a state-dict file, by name, and says what matched.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import Tensor, nn

from depth_lightning.core.files import write_with
from depth_lightning.errors import CheckpointError, DepthLightningError, first_line

log = logging.getLogger("depth_lightning")

SUFFIX = ".safetensors"
META_KEY = "depth_lightning"
#: torchvision's ResNet names -> the U-Net's built-in encoder's (conv1 and its batch norm)
TORCHVISION_RESNET = {"conv1.weight": "conv1.0.weight", "bn1.": "conv1.1."}


def is_safetensors(path: Path) -> bool:
    """A safetensors file: an 8-byte header length, then a JSON header."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < 1 << 28


def save_safetensors(ckpt: dict, path: str | Path) -> Path:
    """Write a checkpoint dict (state_dict, hyper_parameters, depth_lightning) as safetensors,
    atomically."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in ckpt["state_dict"].items()}
    meta = {META_KEY: json.dumps({"hyper_parameters": ckpt["hyper_parameters"],
                                  "depth_lightning": ckpt["depth_lightning"]})}
    return write_with(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))


def read_safetensors(path: Path, setting: str) -> dict:
    """A safetensors stage file as the checkpoint dict `load_checkpoint` checks."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise CheckpointError(f"{setting}: {path} is not a readable safetensors file "
                              f"({first_line(e)})") from None
    if META_KEY not in meta:
        raise CheckpointError(f"{setting}: {path} holds tensors but no depth_lightning stage "
                              "(a state dict of weights: use model.net.weights=PATH)")
    try:
        info = json.loads(meta[META_KEY])
        return {"state_dict": state, "hyper_parameters": info["hyper_parameters"],
                "depth_lightning": info["depth_lightning"]}
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{setting}: {path}: its depth_lightning settings are not "
                              f"readable ({first_line(e)})") from None


def read_state_dict(path: str | Path, setting: str) -> dict[str, Tensor]:
    """The tensors of a safetensors or torch file (a plain state dict, a checkpoint's
    `state_dict`, or a stage's), with `module.` and `net.` prefixes removed."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DepthLightningError(f"{setting}: {path} does not exist")
    if is_safetensors(path):
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as e:  # truncated, or a header that is not safetensors'
            raise DepthLightningError(f"{setting}: {path} is not a readable safetensors file "
                                      f"({first_line(e)})") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise DepthLightningError(f"{setting}: {path} is not a safetensors or torch file "
                                      f"of weights ({first_line(e)})") from None
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise DepthLightningError(f"{setting}: {path} does not hold a state dict of tensors")
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "net."):
            key = key[len(prefix):] if key.startswith(prefix) else key
        out[key] = value
    return out


def _renamed(key: str, own: dict[str, Tensor]) -> str:
    if key in own:
        return key
    for old, new in TORCHVISION_RESNET.items():
        if key.startswith(old) and new + key[len(old):] in own:
            return new + key[len(old):]
    return key


def load_net_weights(net: nn.Module, path: str | Path, setting: str = "model.net.weights"
                     ) -> dict[str, list[str]]:
    """Give `net` every tensor of the file at `path` whose name and shape match one of its own
    (a whole network, or an encoder such as torchvision's ResNet-18); log one line of what
    matched. {"matched", "missing" (the network's, not in the file), "unused" (the file's)}."""
    own = net.state_dict()
    given = {_renamed(k, own): v for k, v in read_state_dict(path, setting).items()}
    matched = {k: v for k, v in given.items() if k in own and own[k].shape == v.shape}
    if not matched:
        raise DepthLightningError(
            f"{setting}: no tensor of {path} matches {type(net).__name__}'s names and shapes "
            f"(file: {', '.join(list(given)[:3])}; network: {', '.join(list(own)[:3])})")
    net.load_state_dict(matched, strict=False)
    report = {"matched": sorted(matched), "missing": sorted(set(own) - set(matched)),
              "unused": sorted(set(given) - set(matched))}
    log.info("%s: %s: %d of the network's %d tensors loaded; %d missing%s; %d in the file "
             "unused%s", setting, path, len(matched), len(own), len(report["missing"]),
             _first(report["missing"]), len(report["unused"]), _first(report["unused"]))
    return report


def _first(keys: list[str]) -> str:
    return f" (e.g. {keys[0]})" if keys else ""

