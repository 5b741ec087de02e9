"""The conditional patch discriminator of the adversarial fine stage
(depth_lightning.models.adversarial)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN (pix2pix, Isola et al. 2017) on (RGB, log depth) at 55x74: four
    4x4 convolutions (stride 2, 2, 1, 1; `width`, 2x, 4x channels, then 1), LeakyReLU(0.2),
    every convolution spectrally normalised (Miyato et al. 2018), no batch norm. Returns one
    real/fake logit per overlapping patch (B,1,11,16)."""

    def __init__(self, width: int = 64, in_channels: int = 4) -> None:
        super().__init__()
        chans = (in_channels, width, 2 * width, 4 * width)
        layers: list[nn.Module] = []
        for i, stride in enumerate((2, 2, 1)):
            layers += [spectral_norm(nn.Conv2d(chans[i], chans[i + 1], 4, stride, padding=1)),
                       nn.LeakyReLU(0.2, inplace=True)]
        layers.append(spectral_norm(nn.Conv2d(chans[-1], 1, 4, 1, padding=1)))
        self.layers = nn.Sequential(*layers)

    def forward(self, rgb: Tensor, log_depth: Tensor) -> Tensor:
        return self.layers(torch.cat([rgb, log_depth], dim=1))
