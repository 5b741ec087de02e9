"""The training job in process: the checks before a run, the Mean baseline, the swept value."""

import numpy as np
import pytest
from conftest import compose, data_module

from depth_lightning.errors import DepthLightningError
from depth_lightning.training.job import mean_scores, optimized_value
from depth_lightning.training.plan import check_models, plan_stages


def test_a_broken_later_stage_is_refused_before_anything_trains():
    cfg = compose("train", "+experiment=fine", "model.loss._target_=nope.Loss",
                  "coarse_stage.model.net.coarse6_units=64")
    specs = plan_stages(cfg)
    with pytest.raises(DepthLightningError, match="model.loss: nope.Loss: cannot import"):
        check_models(specs)


def test_the_mean_baseline_is_the_training_mean_map_scored_per_image(synth_data_dir):
    dm = data_module(synth_data_dir)
    got = mean_scores(dm)
    train, val = dm.eval_targets(dm.train_idx).numpy(), dm.eval_targets(dm.val_idx).numpy()
    valid = train > 0
    mean = np.where(valid, train, 0).sum(0) / np.maximum(valid.sum(0), 1)
    per_image = []
    for gt in val:  # abs_rel by hand, per image on its valid pixels (caps 1e-3..10 m)
        m = (gt > 1e-3) & (gt < 10)
        pred = np.clip(np.broadcast_to(mean, gt.shape)[m], 1e-3, 10)
        per_image.append(np.mean(np.abs(gt[m] - pred) / gt[m]))
    assert got["abs_rel"] == pytest.approx(np.mean(per_image), rel=1e-5)


def test_the_value_a_sweeper_minimises():
    metrics = {"mean": {"si_rmse_log": 0.3}, "coarse": {"si_rmse_log": 0.2},
               "fine": {"si_rmse_log": 0.1}}
    cfg = compose("train", "optimized_metric=si_rmse_log")
    assert optimized_value(cfg, metrics) == 0.1
    assert optimized_value(compose("train", "optimized_metric=coarse/si_rmse_log"), metrics) == 0.2
    assert optimized_value(compose("train"), metrics) is None
