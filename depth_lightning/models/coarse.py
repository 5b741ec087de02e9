"""The coarse stage: the global network trained alone on the images, optionally started at the
training set's mean log-depth map."""

from __future__ import annotations

import logging
from typing import Any

from depth_lightning.errors import DepthLightningError
from depth_lightning.models.stage import DepthStage

HEAD_INITS = ("default", "mean_map")

log = logging.getLogger("depth_lightning")


class CoarseStage(DepthStage):
    """A stage that predicts from the image alone (the coarse network, or any network in its
    place, such as the U-Net).

    Args:
        head_init: ``mean_map`` starts the network at the training mean log-depth map through
            its `init_head(mean_log_depth, scale)` (CoarseNet and the U-Net have one), once the
            data is set up; ``default`` leaves it as initialised.
        head_scale: the weight scale `init_head` is given.
        others: as :class:`~depth_lightning.models.stage.DepthStage`.
    """

    def __init__(self, *args: Any, head_init: str = "default", head_scale: float = 0.01,
                 **kwargs: Any) -> None:
        if head_init not in HEAD_INITS:
            raise DepthLightningError(f"model.head_init: {head_init!r} is not one of "
                                      f"{HEAD_INITS}")
        super().__init__(*args, head_init=head_init, head_scale=head_scale, **kwargs)
        self._head_ready = head_init == "default"

    def setup(self, stage: str) -> None:
        # The mean map needs the training set's statistics, known only once data is set up;
        # a resumed fit restores its weights after this, so nothing is lost.
        super().setup(stage)
        if stage != "fit" or self._head_ready:
            return
        self._head_ready = True
        if not hasattr(self.net, "init_head"):
            log.warning("model.head_init=mean_map: %s has no init_head(mean_log_depth, "
                        "scale); it starts as initialised", type(self.net).__name__)
            return
        stats = self.trainer.datamodule.depth_statistics()
        self.net.init_head(stats["mean_log_depth"], self.hparams.head_scale)
