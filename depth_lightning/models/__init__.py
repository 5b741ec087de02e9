"""The stage modules (LightningModules), their optimisers and their checkpoints.

:class:`DepthStage` is the base every stage shares and the generic stage a plug-in network
trains in; :class:`CoarseStage` predicts from the image alone (with the mean-map head start);
:class:`FineStage` refines the frozen stages below it; :class:`AdversarialStage` is a fine stage
trained against a conditional discriminator. `model/<name>.yaml` names them as `_target_`.
"""

from depth_lightning.models.adversarial import AdversarialStage
from depth_lightning.models.checkpoints import load_checkpoint, load_stage
from depth_lightning.models.coarse import CoarseStage
from depth_lightning.models.fine import FineStage, FrozenChain
from depth_lightning.models.stage import DepthStage

__all__ = ["AdversarialStage", "CoarseStage", "DepthStage", "FineStage", "FrozenChain",
           "load_checkpoint", "load_stage"]
