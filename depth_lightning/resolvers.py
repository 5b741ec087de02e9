"""OmegaConf resolvers used by the configs (imported by every entry point before composing)."""

from __future__ import annotations

import secrets

from omegaconf import OmegaConf

from depth_lightning import tracking  # noqa: F401  (registers the W&B resolvers)

# Drawn once per process: Hydra resolves the run directory more than once, and two runs started
# in the same second (or on two nodes) must still get different folders.
_RUN_UID = secrets.token_hex(3)

if not OmegaConf.has_resolver("dl_uid"):
    OmegaConf.register_new_resolver("dl_uid", lambda: _RUN_UID)
