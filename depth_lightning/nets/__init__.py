"""Networks (pure torch: nothing here knows about Lightning, data files or configs).

The network contract (docs/extending.md): an ``nn.Module`` built from a Hydra
``_target_``; a first-stage network maps normalised images (B,3,228,304) to log depth
(B,1,55,74), a refining network takes (images, the previous stage's log depth). Its named
children are the optimiser's parameter groups.
"""

from depth_lightning.nets.eigen2014 import CoarseNet, FineNet
from depth_lightning.nets.init import INIT_SCHEMES, init_weights, normalize_images

__all__ = ["INIT_SCHEMES", "CoarseNet", "FineNet", "init_weights", "normalize_images"]
