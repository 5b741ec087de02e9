"""Checkpoints: loaded weights-only, refused when unsafe or of the wrong kind."""

import pytest
import torch
from fixtures_runs import tiny_run  # noqa: F401

from depth_lightning.errors import CheckpointError
from depth_lightning.models import DepthStage
from depth_lightning.models.checkpoints import load_checkpoint, load_stage


class Payload:
    """Stands for code pickled into a checkpoint."""


def test_checkpoints_load_weights_only_and_unsafe_ones_are_refused(tiny_run, tmp_path,  # noqa: F811
                                                                     monkeypatch):
    calls = []
    real_load = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    module = load_stage(tiny_run.fine_ckpt)
    assert isinstance(module, DepthStage) and not module.training
    assert module.columns == ("coarse", "fine")
    assert calls == [True]
    monkeypatch.undo()

    pickled = tmp_path / "pickled.ckpt"
    torch.save({"depth_lightning": {"stage": "coarse"}, "x": Payload()}, pickled)
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, plain)
    for path, words in ((pickled, "pickled code"), (plain, "not a depth_lightning checkpoint"),
                        (tmp_path / "missing.ckpt", "does not exist")):
        with pytest.raises(CheckpointError) as err:
            load_stage(path)
        message = str(err.value)
        assert "\n" not in message and message.startswith("ckpt_path: ")
        assert path.name in message and words in message




def test_the_expected_stage_is_checked(tiny_run):  # noqa: F811
    assert load_checkpoint(tiny_run.coarse_ckpt, "coarse")["depth_lightning"]["stage"] == "coarse"
    with pytest.raises(CheckpointError, match="is a fine-stage checkpoint, expected coarse"):
        load_checkpoint(tiny_run.fine_ckpt, "coarse", setting="model.coarse_ckpt")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_stage(tiny_run.run_dir)
