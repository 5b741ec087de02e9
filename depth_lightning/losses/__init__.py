"""Losses (pure torch). The loss contract: `model.loss` is any Hydra `_target_` building a
callable ``(log_pred, depth, mask) -> scalar tensor``: log depth predicted (B,1,H,W), the
target depth in metres (0, NaN and inf are invalid) and a boolean mask of valid pixels.

scale_invariant: the loss of Eigen et al. 2014; field: losses from after it (gradient
matching, berHu, log L1); adversarial: the GAN terms of the adversarial fine stage.
"""

from depth_lightning.losses.field import BerHuLoss, GradientMatchingLoss, LogL1Loss
from depth_lightning.losses.scale_invariant import (
    ScaleInvariantLoss,
    scale_invariant_loss,
    scale_invariant_terms,
    valid_mask,
)

__all__ = ["BerHuLoss", "GradientMatchingLoss", "LogL1Loss", "ScaleInvariantLoss",
           "scale_invariant_loss", "scale_invariant_terms", "valid_mask"]
