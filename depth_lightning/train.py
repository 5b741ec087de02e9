"""Train: `python -m depth_lightning.train +experiment=fine [overrides]`.

Composes the `train` config and runs the training job (depth_lightning.training.job.run).
Without `+experiment=` (and without `resume=` or `stages=`) it says what it runs: the coarse
stage alone with the seed paper's settings, trainer.max_epochs (41) epochs.
"""

from __future__ import annotations

from omegaconf import DictConfig

from depth_lightning.cli.app import hydra_app
from depth_lightning.cli.console import ConsoleEvents, announce_default_experiment


def task(cfg: DictConfig) -> float | None:
    """Train, and return the value a Hydra sweeper optimises (`optimized_metric`)."""
    from depth_lightning.training.job import optimized_value, run

    announce_default_experiment()
    return optimized_value(cfg, run(cfg, ConsoleEvents()))


main = hydra_app("train", task)

if __name__ == "__main__":
    main()
