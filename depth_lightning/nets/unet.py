"""A modern encoder-decoder for comparison with Eigen 2014: a ResNet-18 encoder (He et al. 2016)
and a U-Net decoder (Ronneberger et al. 2015) with skip connections, mapping normalised images
(B,3,228,304) to log depth (B,1,55,74) like the coarse network, so that it trains through the
same stages, data, metrics and sweeps (`+experiment=unet`).

The encoder is torchvision's `resnet18(weights=None)` with `model.net.encoder=torchvision`,
and by default (`builtin`) the same network written here: torchvision's PyPI wheels are built
against CUDA torch, and none loads beside the CPU torch 2.13.0 this project pins. The builtin
one has torchvision's layout exactly (conv1 7x7/2 + BN + ReLU, 3x3/2 max-pool, four stages of
two BasicBlocks with 64, 128, 256, 512 channels, 1x1 projection shortcuts where the shape
changes), the same parameter names, so a state dict of either loads into the other, and
random weights. Nothing is downloaded.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from depth_lightning.core.settings import whole_number
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import geometry_of

RESNET18_WIDTHS = (64, 128, 256, 512)
ENCODERS = ("builtin", "torchvision")


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with batch norm and an identity (or 1x1
    projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return F.relu(out + skip)


def resnet_stage(c_in: int, c_out: int, stride: int, blocks: int = 2) -> nn.Sequential:
    return nn.Sequential(BasicBlock(c_in, c_out, stride),
                         *(BasicBlock(c_out, c_out) for _ in range(blocks - 1)))


def resnet18_encoder(kind: str = "builtin") -> dict[str, nn.Module]:
    """ResNet-18 without its classifier, as named modules: conv1 (conv, BN, ReLU), pool,
    layer1-layer4; from torchvision (`resnet18(weights=None)`) or built here, alike."""
    if kind not in ENCODERS:
        raise DepthLightningError(f"model.net.encoder: {kind!r} is not one of {ENCODERS}")
    if kind == "builtin":
        widths = (RESNET18_WIDTHS[0], *RESNET18_WIDTHS)
        return {"conv1": nn.Sequential(nn.Conv2d(3, widths[0], 7, stride=2, padding=3,
                                                 bias=False),
                                       nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)),
                "pool": nn.MaxPool2d(3, stride=2, padding=1),
                **{f"layer{i}": resnet_stage(widths[i - 1], widths[i], 1 if i == 1 else 2)
                   for i in range(1, 5)}}
    try:
        from torchvision.models import resnet18
    except Exception as e:  # not installed, or its operators do not load beside this torch
        raise DepthLightningError(f"model.net.encoder=torchvision: torchvision does not load "
                                  f"({type(e).__name__}: {str(e).splitlines()[0][:120]}); "
                                  f"use model.net.encoder=builtin, the same network") from None
    r = resnet18(weights=None)
    return {"conv1": nn.Sequential(r.conv1, r.bn1, r.relu), "pool": r.maxpool,
            **{f"layer{i}": getattr(r, f"layer{i}") for i in range(1, 5)}}


class UpBlock(nn.Module):
    """U-Net decoder step: upsample to the skip's size (bilinear), concatenate, two 3x3 convs."""

    def __init__(self, c_in: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(c_in + c_skip, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True))

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip.to(x.dtype)], dim=1))


class DepthHead(nn.Module):
    """The last layer: a 3x3 convolution without padding (57x76 -> 55x74, the target grid) plus
    a per-pixel bias map, which `init_head` sets to the training mean log-depth map. Where the
    convolution does not land on `size` (another frame chain), its output is resized to it
    (bilinear)."""

    def __init__(self, c_in: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = tuple(size)
        self.conv = nn.Conv2d(c_in, 1, 3)
        self.bias_map = nn.Parameter(torch.zeros(1, 1, *size))

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        if tuple(y.shape[-2:]) != self.size:
            y = F.interpolate(y, size=self.size, mode="bilinear", align_corners=False)
        return y + self.bias_map.to(x.dtype)


class UNetResNet18(nn.Module):
    """ResNet-18 encoder, U-Net decoder: (B,3,228,304) -> log depth (B,1,55,74).

    Encoder sizes: conv1 114x152, layer1 57x76 (after the max-pool), layer2 29x38, layer3
    15x19, layer4 8x10. The decoder goes back up to layer1's 57x76 through skips from
    layer3, layer2 and layer1, and the head's unpadded 3x3 convolution lands on 55x74.
    `decoder_width` is the channel count of the last decoder step (doubled at each step below);
    `encoder` is `builtin` or `torchvision` (the same ResNet-18, see the module's docstring).

    Its named children are the optimiser's groups (`model.optim.lr.<child>`): conv1 (with its
    batch norm), layer1-layer4, up3, up2, up1, head.
    """

    def __init__(self, decoder_width: int = 64, encoder: str = "builtin",
                 geometry: str | dict | None = None) -> None:
        super().__init__()
        w = whole_number(decoder_width, "model.net.decoder_width")
        c1, c2, c3, c4 = RESNET18_WIDTHS
        for name, module in resnet18_encoder(encoder).items():
            self.add_module(name, module)
        self.up3 = UpBlock(c4, c3, 4 * w)
        self.up2 = UpBlock(4 * w, c2, 2 * w)
        self.up1 = UpBlock(2 * w, c1, w)
        self.head = DepthHead(w, geometry_of(geometry, "model.net.geometry").output)

    def forward(self, x: Tensor) -> Tensor:
        """Normalised images (B,3,228,304) -> log depth (B,1,55,74)."""
        s1 = self.layer1(self.pool(self.conv1(x)))
        s2 = self.layer2(s1)
        s3 = self.layer3(s2)
        y = self.up3(self.layer4(s3), s3)
        y = self.up2(y, s2)
        return self.head(self.up1(y, s1))

    @torch.no_grad()
    def post_init(self) -> None:
        """After the initialisation scheme: batch norms at weight 1, bias 0 (as torchvision
        builds them), and each block's last batch norm at 0 so every residual block starts as
        the identity (torchvision's `zero_init_residual`, Goyal et al. 2017)."""
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        # a second pass: modules() meets a block before its batch norms, which the first
        # pass would set back to 1
        for m in self.modules():
            if type(m).__name__ == "BasicBlock":  # this module's or torchvision's
                nn.init.zeros_(m.bn2.weight)

    @torch.no_grad()
    def init_head(self, mean_log_depth: Tensor, weight_scale: float = 0.01) -> None:
        """`model.head_init=mean_map`: start at the training mean log-depth map (the head's
        weights scaled by `weight_scale`, its bias map the mean), as CoarseNet's coarse7."""
        self.head.conv.weight.mul_(weight_scale)
        self.head.conv.bias.zero_()
        self.head.bias_map.copy_(mean_log_depth.reshape(self.head.bias_map.shape))
