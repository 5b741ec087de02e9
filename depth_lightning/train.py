"""Train: `python -m depth_lightning.train +experiment=fine [overrides]`.

Composes the Hydra config (packaged under depth_lightning/conf, so it is found after a wheel
install too) and hands it to depth_lightning.pipeline.
"""

from __future__ import annotations

from omegaconf import DictConfig

from depth_lightning import resolvers  # noqa: F401  (registers ${dl_uid:} before composing)
from depth_lightning.entry import hydra_main
from depth_lightning.pipeline import main as run_job


@hydra_main("train")
def main(cfg: DictConfig) -> float | None:
    return run_job(cfg)


if __name__ == "__main__":
    main()
