"""Models people can share: a stage as safetensors (weights and settings, no pickle) and
pretrained weights loaded into a network or its encoder from a file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depth_lightning.errors import DepthLightningError
from depth_lightning.inference.predictor import DepthPredictor
from depth_lightning.models.checkpoints import load_checkpoint
from depth_lightning.models.stage import DepthStage
from depth_lightning.models.weights import is_safetensors, load_net_weights
from depth_lightning.nets.unet import UNetResNet18

LOSS = {"_target_": "depth_lightning.losses.ScaleInvariantLoss", "lam": 0.5}
OPTIM = {"_target_": "torch.optim.SGD", "_partial_": True, "lr": {"default": 0.1}}


def coarse_stage(**net) -> DepthStage:
    return DepthStage("coarse", net={"_target_": "depth_lightning.nets.CoarseNet",
                                     "coarse6_units": 8, **net},
                      loss=LOSS, optim=OPTIM, scheduler={"name": "none"})


def test_a_safetensors_round_trip_gives_the_same_depth_to_the_last_bit(tmp_path):
    torch.manual_seed(0)
    predictor = DepthPredictor(coarse_stage())
    path = predictor.save(tmp_path / "model.safetensors")
    assert is_safetensors(path)
    assert b"\x80\x02" not in path.read_bytes()[:64]  # no pickle header
    ckpt = load_checkpoint(path)
    assert ckpt["depth_lightning"]["stage"] == "coarse" and "optimizer_states" not in ckpt
    again = DepthPredictor.from_checkpoint(path, device="cpu")
    photo = np.random.default_rng(0).integers(0, 256, (300, 400, 3), np.uint8)
    assert np.array_equal(predictor(photo), again(photo))


def test_a_file_of_plain_tensors_is_not_taken_for_a_stage(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(DepthLightningError, match="no depth_lightning stage .*model.net.weights"):
        load_checkpoint(tmp_path / "w.safetensors")


def torchvision_resnet18_state(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    """An encoder's weights under torchvision's ResNet-18 names, with its classifier."""
    out = {}
    for key, value in encoder.state_dict().items():
        key = key.replace("conv1.0.", "conv1.").replace("conv1.1.", "bn1.")
        if key.split(".")[0] in ("conv1", "bn1") or key.startswith("layer"):
            out[key] = value.clone()
    out["fc.weight"], out["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    return out


@pytest.mark.parametrize("fmt", ["torch", "safetensors"])
def test_an_encoder_is_loaded_from_a_file_and_the_rest_is_reported(tmp_path, fmt):
    torch.manual_seed(1)
    pretrained = UNetResNet18(decoder_width=8)
    state = torchvision_resnet18_state(pretrained)
    path = tmp_path / f"resnet18.{'pt' if fmt == 'torch' else 'safetensors'}"
    if fmt == "torch":
        torch.save(state, path)
    else:
        from safetensors.torch import save_file

        save_file(state, str(path))
    torch.manual_seed(2)
    net = UNetResNet18(decoder_width=8)
    report = load_net_weights(net, path)
    assert torch.equal(net.layer4[1].conv2.weight, pretrained.layer4[1].conv2.weight)
    assert torch.equal(net.conv1[1].running_mean, pretrained.conv1[1].running_mean)
    assert not torch.equal(net.up1.conv[0].weight, pretrained.up1.conv[0].weight)
    assert report["unused"] == ["fc.bias", "fc.weight"]
    assert all(k.startswith(("up", "head")) for k in report["missing"])
    assert len(report["matched"]) == len(state) - 2


def test_a_stage_loads_its_networks_weights_when_training_starts(tmp_path):
    torch.manual_seed(3)
    source = coarse_stage()
    torch.save(source.net.state_dict(), tmp_path / "coarse.pt")
    torch.manual_seed(4)
    stage = coarse_stage(weights=str(tmp_path / "coarse.pt"))
    assert "weights" not in stage.hparams.net  # a rebuilt checkpoint does not read the file
    assert not torch.equal(stage.net.coarse7.weight, source.net.coarse7.weight)
    stage.setup("fit")
    assert all(torch.equal(a, b) for a, b in zip(stage.net.state_dict().values(),
                                                   source.net.state_dict().values()))


def test_weights_that_match_nothing_are_one_clear_error(tmp_path):
    torch.save({"something.else": torch.zeros(3)}, tmp_path / "x.pt")
    with pytest.raises(DepthLightningError, match="model.net.weights: no tensor of .*x.pt"):
        load_net_weights(UNetResNet18(decoder_width=8), tmp_path / "x.pt")


def test_a_truncated_weights_file_is_one_clear_error(tmp_path):
    from safetensors.torch import save_file

    save_file({"coarse1.weight": torch.zeros(96, 3, 11, 11)}, str(tmp_path / "w.safetensors"))
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "half.safetensors").write_bytes(data[:len(data) // 2])
    with pytest.raises(DepthLightningError, match="half.safetensors is not a readable safetensors"):
        load_net_weights(coarse_stage().net, tmp_path / "half.safetensors")
