"""The ResNet-18 U-Net of +experiment=unet: sizes, the encoder against torchvision's resnet18
(where torchvision loads), and its mean-map start."""

import pytest
import torch

from depth_lightning.errors import DepthLightningError
from depth_lightning.nets.unet import UNetResNet18

ENCODER = ("conv1", "layer1", "layer2", "layer3", "layer4")


def torchvision_or_skip():
    try:
        import torchvision.models
    except Exception as e:  # PyPI's wheels fail beside the CPU torch this project pins
        pytest.skip(f"torchvision does not load here ({type(e).__name__})")
    return torchvision.models


def test_output_is_the_target_grid_and_the_encoder_is_resnet18_sized():
    net = UNetResNet18(decoder_width=16).eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, 228, 304))
    assert out.shape == (2, 1, 55, 74)
    encoder = sum(p.numel() for n, p in net.named_parameters() if n.split(".")[0] in ENCODER)
    # torchvision's resnet18 has 11,689,512 parameters, 513,000 of them in its fc classifier
    assert encoder == 11_689_512 - 512 * 1000 - 1000


def test_mean_map_start_predicts_the_mean_map():
    net = UNetResNet18(decoder_width=16)
    net.post_init()
    mean = torch.rand(1, 1, 55, 74)
    net.init_head(mean, weight_scale=0.0)
    with torch.no_grad():
        out = net.eval()(torch.randn(3, 3, 228, 304))
    assert torch.allclose(out, mean.expand(3, -1, -1, -1))


def test_every_block_starts_as_the_identity():
    net = UNetResNet18(decoder_width=16)
    net.post_init()
    blocks = [m for m in net.modules() if type(m).__name__ == "BasicBlock"]
    assert len(blocks) == 8 and all(float(b.bn2.weight.abs().sum()) == 0 for b in blocks)


def test_builtin_encoder_is_torchvision_resnet18():
    models = torchvision_or_skip()
    torch.manual_seed(0)
    tv = UNetResNet18(decoder_width=16, encoder="torchvision").eval()
    builtin = UNetResNet18(decoder_width=16).eval()
    a, b = tv.state_dict(), builtin.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    builtin.load_state_dict(a)
    x = torch.randn(2, 3, 228, 304)
    with torch.no_grad():
        assert torch.equal(tv(x), builtin(x))
    ref = models.resnet18(weights=None)
    assert sum(p.numel() for n, p in ref.named_parameters() if not n.startswith("fc")) == sum(
        p.numel() for n, p in builtin.named_parameters() if n.split(".")[0] in ENCODER)


def test_torchvision_encoder_that_does_not_load_is_one_error():
    try:
        import torchvision.models  # noqa: F401
    except Exception:
        with pytest.raises(DepthLightningError, match="model.net.encoder=torchvision"):
            UNetResNet18(encoder="torchvision")
    else:
        pytest.skip("torchvision loads here")


def test_unknown_encoder_is_refused():
    with pytest.raises(DepthLightningError, match="model.net.encoder: 'resnet50'"):
        UNetResNet18(encoder="resnet50")
