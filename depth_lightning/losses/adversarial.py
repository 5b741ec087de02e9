"""The adversarial losses of a GAN-trained stage (depth_lightning.models.adversarial): the
discriminator's on real and fake logits, the generator's on the fake ones."""

from __future__ import annotations

from torch import Tensor
from torch.nn import functional as F

ADVERSARIAL_LOSSES = ("hinge", "non_saturating")


def discriminator_loss(kind: str, real: Tensor, fake: Tensor) -> Tensor:
    """D's loss on real and fake logits: hinge (Lim & Ye 2017) or the non-saturating log loss
    (Goodfellow et al. 2014)."""
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(kind: str, fake: Tensor) -> Tensor:
    """G's adversarial term on D's logits for its output."""
    return -fake.mean() if kind == "hinge" else F.softplus(-fake).mean()
