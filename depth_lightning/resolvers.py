"""OmegaConf resolvers used by the configs."""

from __future__ import annotations

import secrets

from omegaconf import OmegaConf

# Drawn once per process: Hydra resolves the run directory more than once, and two runs started
# in the same second (or on two nodes) must still get different folders.
_RUN_UID = secrets.token_hex(3)

if not OmegaConf.has_resolver("dl_uid"):
    OmegaConf.register_new_resolver("dl_uid", lambda: _RUN_UID)
