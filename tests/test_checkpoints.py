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


def earlier_version(ckpt: dict) -> dict:
    """A checkpoint as versions before the stage classes wrote it: no `module`, every stage's
    settings with the coarse stage's head start and a `base` list, the later losses under
    depth_lightning.field_losses."""
    hp = {**ckpt["hyper_parameters"]}
    hp.setdefault("head_init", "default")
    hp.setdefault("head_scale", 0.01)
    hp.setdefault("base", [])
    hp["loss"] = {"_target_": "depth_lightning.field_losses.BerHuLoss"}
    info = {k: v for k, v in ckpt["depth_lightning"].items() if k != "module"}
    return {**ckpt, "hyper_parameters": hp, "depth_lightning": info}


@pytest.mark.parametrize("stage", ["coarse", "fine"])
def test_checkpoints_of_earlier_versions_load_as_the_stage_they_hold(stage, tiny_run,  # noqa: F811
                                                                     tmp_path):
    from depth_lightning.models import CoarseStage, FineStage

    path = tiny_run.fine_ckpt if stage == "fine" else tiny_run.coarse_ckpt
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    old = tmp_path / "old.ckpt"
    torch.save(earlier_version(ckpt), old)
    assert "module" not in torch.load(old, weights_only=True)["depth_lightning"]
    now, then = load_stage(path), load_stage(old)
    assert type(then) is {"coarse": CoarseStage, "fine": FineStage}[stage]
    assert type(then.loss_fn).__name__ == "BerHuLoss"  # the moved class path is mapped
    x = torch.randint(0, 256, (2, 3, 228, 304), dtype=torch.uint8)
    with torch.no_grad():
        torch.testing.assert_close(then(x), now(x), rtol=0, atol=0)


def test_the_expected_stage_is_checked(tiny_run):  # noqa: F811
    assert load_checkpoint(tiny_run.coarse_ckpt, "coarse")["depth_lightning"]["stage"] == "coarse"
    with pytest.raises(CheckpointError, match="is a fine-stage checkpoint, expected coarse"):
        load_checkpoint(tiny_run.fine_ckpt, "coarse", setting="model.coarse_ckpt")
    with pytest.raises(CheckpointError, match="is a folder"):
        load_stage(tiny_run.run_dir)
