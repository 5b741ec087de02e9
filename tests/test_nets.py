import pytest
import torch

from depth_lightning.errors import DepthLightningError
from depth_lightning.nets import CoarseNet, FineNet, init_weights, normalize_images


def count_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def conv_params(cin: int, cout: int, k: int) -> int:
    return cin * cout * k * k + cout


def test_layer_arithmetic_gives_55x74():
    # 11x11 stride 4 valid conv on 228x304, then the pools: the paper's sizes.
    assert ((228 - 11) // 4 + 1, (304 - 11) // 4 + 1) == (55, 74)
    assert ((228 - 9) // 2 + 1) // 2 == 55 and ((304 - 9) // 2 + 1) // 2 == 74


def test_coarse_output_shape_and_parameter_count():
    net = CoarseNet()
    out = net(torch.randn(2, 3, 228, 304))
    assert out.shape == (2, 1, 55, 74)
    convs = (conv_params(3, 96, 11) + conv_params(96, 256, 5) + conv_params(256, 384, 3)
             + conv_params(384, 384, 3) + conv_params(384, 256, 3))
    flat = 256 * 6 * 9  # 13x18 after two pools, 6x9 after coarse5's pool
    fcs = flat * 4096 + 4096 + 4096 * 4070 + 4070
    assert count_parameters(net) == convs + fcs
    assert 76e6 < count_parameters(net) < 78e6


def test_coarse_without_coarse5_pool_flattens_13x18():
    net = CoarseNet(coarse5_pool=False)
    assert net.coarse6.in_features == 256 * 13 * 18
    assert net(torch.randn(1, 3, 228, 304)).shape == (1, 1, 55, 74)


def test_coarse6_units_sets_the_fully_connected_width():
    net = CoarseNet(coarse6_units=64)
    assert (net.coarse6.out_features, net.coarse7.in_features) == (64, 64)
    assert count_parameters(net) == count_parameters(CoarseNet()) - (256 * 6 * 9 + 1 + 4070) * 4032
    assert net(torch.randn(1, 3, 228, 304)).shape == (1, 1, 55, 74)


def test_coarse_last_layer_is_linear_and_dropout_after_coarse6():
    net = CoarseNet().eval()
    x = torch.randn(4, 3, 228, 304)
    out = net(x)
    assert (out < 0).any(), "a ReLU after coarse7 would forbid negative log depth"
    net.train()
    torch.manual_seed(0)
    a = net(x)
    torch.manual_seed(1)
    b = net(x)
    assert not torch.equal(a, b), "dropout is active in training"


def test_fine_output_shape_parameters_and_64th_channel():
    net = FineNet()
    x = torch.randn(2, 3, 228, 304)
    coarse = torch.randn(2, 1, 55, 74)
    assert net(x, coarse).shape == (2, 1, 55, 74)
    assert net.fine3.in_channels == 64
    expected = conv_params(3, 63, 9) + conv_params(64, 64, 5) + conv_params(64, 1, 5)
    assert count_parameters(net) == expected


def test_identity_start_passes_the_coarse_map_through():
    net = FineNet(start="identity")
    init_weights(net, "kaiming_xavier")
    net.post_init()
    with torch.no_grad():
        net.fine1.weight.zero_()
        net.fine3.weight[:63].zero_()
    coarse = torch.randn(2, 1, 55, 74)
    out = net(torch.randn(2, 3, 228, 304), coarse)
    torch.testing.assert_close(out, coarse, atol=1e-5, rtol=1e-5)


def test_linear_fine4_gain_is_kaimings_gain_for_a_layer_without_relu():
    net = FineNet(fine4_gain="linear")
    init_weights(net, "kaiming_xavier")
    net.post_init()
    # Kaiming normal, fan_in = 64 * 5 * 5, gain 1 (linear) instead of sqrt 2 (ReLU)
    assert net.fine4.weight.std().item() == pytest.approx((1 / 1600) ** 0.5, rel=0.1)
    assert net.fine3.weight.std().item() == pytest.approx((2 / 1600) ** 0.5, rel=0.05)
    with pytest.raises(DepthLightningError, match="model.net.fine4_gain"):
        FineNet(fine4_gain="tanh")


def test_residual_fine_adds_its_correction_to_the_coarse_map():
    torch.manual_seed(0)
    net = FineNet(residual=True)
    init_weights(net, "kaiming_xavier")
    x, coarse = torch.randn(2, 3, 228, 304), torch.randn(2, 1, 55, 74)
    plain = FineNet()
    plain.load_state_dict(net.state_dict())
    torch.testing.assert_close(net(x, coarse), coarse + plain(x, coarse))
    nets = []
    for start in ("default", "identity"):
        torch.manual_seed(1)
        nets.append(FineNet(start=start, residual=True))
        init_weights(nets[-1], "kaiming_xavier")
        nets[-1].post_init()
    with torch.no_grad():  # identity: the same correction at a hundredth of its scale
        full, small = (n(x, coarse) - coarse for n in nets)
    torch.testing.assert_close(small, 0.01 * full, rtol=1e-4, atol=1e-6)
    assert float(full.abs().max()) > 0.1


@pytest.mark.parametrize("scheme", ["kaiming_xavier", "xavier", "normal"])
def test_init_schemes(scheme):
    net = CoarseNet()
    init_weights(net, scheme)
    conv_std = net.coarse2.weight.std().item()
    fc_std = net.coarse6.weight.std().item()
    fan_in_conv = 96 * 25
    if scheme == "kaiming_xavier":
        assert conv_std == pytest.approx((2 / fan_in_conv) ** 0.5, rel=0.05)
        assert fc_std == pytest.approx((2 / (13824 + 4096)) ** 0.5, rel=0.05)
    elif scheme == "xavier":
        assert conv_std == pytest.approx((2 / (96 * 25 + 256 * 25)) ** 0.5, rel=0.05)
    else:
        assert conv_std == pytest.approx(0.01, rel=0.05)
    assert float(net.coarse2.bias.detach().abs().sum()) == 0.0


def test_unknown_init_scheme_names_the_setting():
    with pytest.raises(ValueError, match="model.init"):
        init_weights(CoarseNet(), "orthogonal")


def test_normalize_images_uint8_and_float_agree():
    img = torch.randint(0, 256, (1, 3, 4, 4), dtype=torch.uint8)
    torch.testing.assert_close(normalize_images(img), normalize_images(img.float() / 255))


def test_default_start_leaves_the_initialisation_alone():
    net = FineNet()
    init_weights(net, "kaiming_xavier")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.post_init()
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    with pytest.raises(DepthLightningError, match="model.net.start"):
        FineNet(start="residual?")


def test_init_head_starts_the_coarse_map_at_the_mean_log_depth():
    net = CoarseNet(coarse6_units=64).eval()
    init_weights(net, "kaiming_xavier")
    mean_log = torch.linspace(0.0, 2.0, 55 * 74).reshape(1, 55, 74)
    weight = net.coarse7.weight.detach().clone()
    net.init_head(mean_log, 0.01)
    torch.testing.assert_close(net.coarse7.weight, weight * 0.01)
    torch.testing.assert_close(net.coarse7.bias, mean_log.reshape(-1))
    with torch.no_grad():  # a blank image: the prediction stays close to the mean map
        out = net(torch.zeros(1, 3, 228, 304))
    assert (out - mean_log).abs().max() < 0.2
