"""Input normalisation and the initialisation schemes every network can be given."""

from __future__ import annotations

import torch
from torch import Tensor, nn

# ImageNet statistics: a common, fixed normalisation so checkpoints are portable between datasets.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)

INIT_SCHEMES = ("kaiming_xavier", "xavier", "normal", "torch_default")


def normalize_images(images: Tensor) -> Tensor:
    """uint8 (B,3,H,W) in [0, 255] -> float normalised input (float images are taken as [0, 1])."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    mean = x.new_tensor(_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def init_weights(module: nn.Module, scheme: str = "kaiming_xavier", std: float = 0.01) -> None:
    """Initialise convolutions and linear layers of `module` with a named scheme.

    kaiming_xavier (the seed's): Kaiming-normal convolutions, Xavier-normal linear layers;
    xavier: Xavier-normal everywhere; normal: N(0, std) everywhere; torch_default: leave as built.
    Biases start at zero except with torch_default.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"model.init: unknown scheme {scheme!r}; choose one of {INIT_SCHEMES}")
    if scheme == "torch_default":
        return
    for m in module.modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        if scheme == "normal":
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.Conv2d) and scheme == "kaiming_xavier":
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        else:
            nn.init.xavier_normal_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
