"""Training one stage: the final scores of a checkpoint equal what the run wrote."""

import json

from conftest import data_module
from fixtures_runs import tiny_run  # noqa: F401

from depth_lightning.core.hardware import resolve_precision
from depth_lightning.models.checkpoints import load_stage
from depth_lightning.training.fit import final_scores


def test_final_scores_of_the_checkpoints_equal_the_runs_metrics(tiny_run):  # noqa: F811
    written = json.loads((tiny_run.run_dir / "metrics.json").read_text())
    dm = data_module(tiny_run.data_dir, "data.eval_batch_size=8")
    # the run scored in the precision `auto` chose on this machine (bf16 where it is native)
    precision = resolve_precision("auto")
    for name, ckpt in (("coarse", tiny_run.coarse_ckpt), ("fine", tiny_run.fine_ckpt)):
        assert final_scores(load_stage(ckpt), dm, precision) == written[name], name
