"""The multi-scale network of Eigen, Puhrsch and Fergus (2014): CoarseNet and FineNet.

Input images are 3x228x304 (NYU downsampled by 2 and cropped); both networks output log depth
at 1x55x74, a quarter of the input. Other frame chains (`geometry`: KITTI's 576x172 input and
142x27 output) change the sizes that follow from them: the flattened features of coarse5, the
size coarse7 predicts, and fine1's vertical stride.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from depth_lightning.core.settings import number, whole_number
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import FrameGeometry, geometry_of

FINE_STARTS = ("default", "identity")
FINE4_GAINS = ("relu", "linear")


def _conv(n: int, kernel: int, stride: int = 1) -> int:
    return (n - kernel) // stride + 1


def coarse5_size(geometry: FrameGeometry, pool: bool) -> tuple[int, int]:
    """(H, W) of coarse5's features: coarse1 11x11/4 + pool, coarse2 + pool ("same" convs
    after), and the optional pool after coarse5 (NYU: 27x37 -> 13x18 -> 6x9)."""
    h, w = (_conv(n, 11, 4) // 2 // 2 for n in geometry.input)
    return (h // 2, w // 2) if pool else (h, w)


def fine1_stride(geometry: FrameGeometry) -> tuple[int, int]:
    """fine1's (vertical, horizontal) stride: the one whose 9x9 conv and 2x2 pool land on the
    chain's output size (NYU: 2 and 2; KITTI's 172 rows reach the paper's 27 with 3)."""
    strides = []
    for n, out in zip(geometry.input, geometry.output):
        found = [s for s in range(1, 9) if _conv(n, 9, s) // 2 == out]
        if not found:
            raise DepthLightningError(f"geometry {geometry.name}: no fine1 stride takes "
                                      f"{geometry.input} to {geometry.output}")
        strides.append(found[0])
    return strides[0], strides[1]


class CoarseNet(nn.Module):
    """Global coarse-scale network: five convolutions and two fully connected layers.

    coarse1 11x11/4 conv 96 + pool, coarse2 5x5 conv 256 + pool, coarse3-4 3x3 conv 384,
    coarse5 3x3 conv 256 (+ pool, as in the official release), coarse6 fc 4096 + dropout,
    coarse7 fc 4070 = 55x74, linear: the coarse log-depth map.

    `coarse6_units` narrows coarse6 (the paper's 4096 holds most of the 77 M parameters) for
    ablations and for tests whose checkpoints must stay small.
    """

    def __init__(self, coarse5_pool: bool = True, dropout: float = 0.5,
                 coarse6_units: int = 4096, geometry: str | dict | None = None) -> None:
        super().__init__()
        self.output_size = geometry_of(geometry, "model.net.geometry").output
        coarse6_units = whole_number(coarse6_units, "model.net.coarse6_units")
        dropout = number(dropout, "model.net.dropout", minimum=0.0)
        if dropout >= 1:
            raise DepthLightningError(f"model.net.dropout: must be below 1, got {dropout:g}")
        self.coarse1 = nn.Conv2d(3, 96, kernel_size=11, stride=4)  # 228x304 -> 55x74
        self.coarse2 = nn.Conv2d(96, 256, kernel_size=5, padding=2)
        self.coarse3 = nn.Conv2d(256, 384, kernel_size=3, padding=1)
        self.coarse4 = nn.Conv2d(384, 384, kernel_size=3, padding=1)
        self.coarse5 = nn.Conv2d(384, 256, kernel_size=3, padding=1)
        self.coarse5_pool = coarse5_pool
        h, w = coarse5_size(geometry_of(geometry, "model.net.geometry"), coarse5_pool)
        self.flat_features = 256 * h * w  # NYU: 256x6x9
        self.coarse6 = nn.Linear(self.flat_features, coarse6_units)
        self.dropout = nn.Dropout(dropout)
        self.coarse7 = nn.Linear(coarse6_units, self.output_size[0] * self.output_size[1])
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Normalised images (B,3,228,304) -> coarse log depth (B,1,55,74)."""
        x = self.pool(self.relu(self.coarse1(x)))
        x = self.pool(self.relu(self.coarse2(x)))
        x = self.relu(self.coarse3(x))
        x = self.relu(self.coarse4(x))
        x = self.relu(self.coarse5(x))
        if self.coarse5_pool:
            x = self.pool(x)
        x = self.dropout(self.relu(self.coarse6(torch.flatten(x, 1))))
        return self.coarse7(x).view(-1, 1, *self.output_size)

    @torch.no_grad()
    def init_head(self, mean_log_depth: Tensor, weight_scale: float = 0.01) -> None:
        """Start coarse7 at the per-pixel mean log-depth map of the training set
        (`model.head_init=mean_map`).

        Shrinking coarse7's weights and putting the mean map in its bias makes the first
        prediction the dataset's average layout, so training learns deviations from it: on
        generated rooms this smoothed the maps and reached a given error several times sooner.
        """
        self.coarse7.weight.mul_(weight_scale)
        self.coarse7.bias.copy_(mean_log_depth.reshape(-1).to(self.coarse7.bias))


class FineNet(nn.Module):
    """Local fine-scale network refining the coarse map.

    fine1 9x9/2 conv 63 + pool (228x304 -> 55x74), fine2 concatenates the coarse log-depth map as
    the 64th channel, fine3 5x5 conv 64, fine4 5x5 conv 1, linear: the refined log-depth map.

    `start`: ``default`` (as initialised) or ``identity`` (after initialisation, the network is
    made an exact pass-through of the coarse map, see :meth:`post_init`).
    `fine4_gain`: ``relu`` keeps the initialisation scheme's gain for fine4 (Kaiming's sqrt 2);
    ``linear`` divides fine4's weights by sqrt 2 after it, Kaiming's gain for a layer with no
    ReLU after it (fine4 is the linear output).
    `residual`: fine4 predicts a correction added to the coarse map instead of the map itself
    (not in the paper; the default recipe's choice, docs/training.md, "Recipes").
    """

    def __init__(self, start: str = "default", fine4_gain: str = "relu",
                 residual: bool = False, geometry: str | dict | None = None) -> None:
        super().__init__()
        if start not in FINE_STARTS:
            raise DepthLightningError(f"model.net.start: {start!r} is not one of {FINE_STARTS}")
        if fine4_gain not in FINE4_GAINS:
            raise DepthLightningError(f"model.net.fine4_gain: {fine4_gain!r} is not one of "
                                      f"{FINE4_GAINS}")
        self.start, self.fine4_gain, self.residual = start, fine4_gain, bool(residual)
        stride = fine1_stride(geometry_of(geometry, "model.net.geometry"))
        self.fine1 = nn.Conv2d(3, 63, kernel_size=9, stride=stride)  # 228x304 -> 110x148
        self.fine3 = nn.Conv2d(64, 64, kernel_size=5, padding=2)
        self.fine4 = nn.Conv2d(64, 1, kernel_size=5, padding=2)
        self.pool = nn.MaxPool2d(2)  # -> 55x74
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, coarse_log_depth: Tensor) -> Tensor:
        """Normalised images (B,3,228,304) and coarse map (B,1,55,74) -> log depth (B,1,55,74)."""
        f = self.pool(self.relu(self.fine1(x)))
        f = torch.cat([f, coarse_log_depth.to(f.dtype)], dim=1)  # fine2: 64 channels
        f = self.relu(self.fine3(f))
        if self.residual:
            return coarse_log_depth.to(f.dtype) + self.fine4(f)
        return self.fine4(f)

    @torch.no_grad()
    def post_init(self, offset: float = 4.0) -> None:
        """Called after the initialisation scheme: with ``start=identity``, make the network an
        exact pass-through of the coarse map (with `residual`, a near pass-through: the
        correction starts at a hundredth of its initial scale).

        fine3's channel 63 copies the coarse channel shifted by `offset` (so the ReLU keeps log
        depths above -offset, i.e. depths above e^-4 = 2 cm) and fine4 reads it back with a
        centre tap. The other weights stay small, so the refinement starts from the coarse map.
        """
        if self.fine4_gain == "linear":
            self.fine4.weight.div_(2 ** 0.5)
        if self.start != "identity":
            return
        if self.residual:  # a near-zero correction: the coarse map passes through
            self.fine4.weight.mul_(0.01)
            self.fine4.bias.zero_()
            return
        self.fine3.weight[63].zero_()
        self.fine3.weight[63, 63, 2, 2] = 1.0
        self.fine3.bias[63] = offset
        self.fine4.weight.mul_(0.01)
        self.fine4.weight[0, 63].zero_()
        self.fine4.weight[0, 63, 2, 2] = 1.0
        self.fine4.bias.fill_(-offset)
