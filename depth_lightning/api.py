"""The Python API: depth from photos, trained stages, and the commands' jobs in-process.

    >>> from depth_lightning.api import DepthPredictor  # doctest: +SKIP
    >>> predictor = DepthPredictor.from_checkpoint("fine/checkpoints/best.ckpt")  # doctest: +SKIP
    >>> depth = predictor("photo.jpg")  # metres, the photo's height x width  # doctest: +SKIP

    >>> from depth_lightning.api import compose, train  # doctest: +SKIP
    >>> scores = train(compose("train", ["+experiment=coarse", "trainer.max_epochs=1"],
    ...                        output_dir="outputs/my_run"))  # doctest: +SKIP

`compose` builds a command's config as the command line would (the packaged configs, then the
user's conf/ folder); `train`, `evaluate` and `predict` run the jobs behind the commands and
raise :class:`~depth_lightning.errors.DepthLightningError` for bad input.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig

from depth_lightning.errors import DepthLightningError
from depth_lightning.inference.predictor import (
    DepthPredictor,
    as_photo,
    depth_to_photo,
    load_photo,
    prepare_photo,
)
from depth_lightning.models import CoarseStage, DepthStage, FineStage, load_stage

__all__ = ["CoarseStage", "DepthLightningError", "DepthPredictor", "DepthStage", "FineStage",
           "as_photo", "compose", "depth_to_photo", "evaluate", "load_photo", "load_stage",
           "predict", "prepare_photo", "train"]
# Hydra's warning when the folder of the user's own configs (conf/) does not exist: it is optional
NO_USER_CONF = r"provider=hydra.searchpath in main, path=.* is not available"


def compose(config_name: str = "train", overrides: Sequence[str] = (),
            output_dir: str | os.PathLike[str] | None = None) -> DictConfig:
    """The config `python -m depth_lightning.<config_name> overrides...` would run, composed
    in-process; `output_dir` is the folder the job writes into (a command gets a fresh run
    folder from Hydra instead)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("depth_lightning.conf", version_base="1.3"), \
            warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=NO_USER_CONF)
        cfg = hydra_compose(config_name, overrides=list(overrides))
    if output_dir is not None:
        cfg.paths.output_dir = str(output_dir)
    return cfg


def train(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """The training job on a composed config: metrics.json's content."""
    from depth_lightning.training.job import run

    return run(cfg)


def evaluate(cfg: DictConfig) -> dict[str, dict[str, float]]:
    """The evaluation job on a composed `evaluate` config: its metrics.json's content."""
    from depth_lightning.evaluation.evaluate import run

    return run(cfg)


def predict(cfg: DictConfig) -> list[Any]:
    """The prediction job on a composed `predict` config: the files written."""
    from depth_lightning.inference.predict import run

    return run(cfg)
