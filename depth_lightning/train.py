"""Train: `python -m depth_lightning.train +experiment=fine [overrides]`.

Composes the Hydra config (packaged under depth_lightning/conf, so it is found after a wheel
install too) and hands it to depth_lightning.pipeline. Without `+experiment=` (and without
`resume=` or `stages=`) it says what it runs: the coarse stage alone with the seed paper's
settings, trainer.max_epochs (41) epochs.
"""

from __future__ import annotations

from omegaconf import DictConfig

from depth_lightning import resolvers  # noqa: F401  (registers ${dl_uid:} before composing)
from depth_lightning.console import announce_default_experiment, quiet_lightning
from depth_lightning.entry import hydra_main
from depth_lightning.pipeline import main as run_job


@hydra_main("train")
def main(cfg: DictConfig) -> float | None:
    quiet_lightning()
    announce_default_experiment()
    return run_job(cfg)


if __name__ == "__main__":
    main()
