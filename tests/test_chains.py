"""Frame chains per dataset: the networks follow the data's chain (NYU's exactly as before,
KITTI's as in Eigen et al. 2014's KITTI network), and sparse depth is resampled without
inventing a measurement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import (
    KITTI,
    MAKE3D,
    NETWORK_REGION,
    NYU,
    downsample_depth,
    geometry_of,
    sparse_resize,
    upsample_to_frame,
)
from depth_lightning.nets import CoarseNet, FineNet
from depth_lightning.nets.eigen2014 import coarse5_size, fine1_stride
from depth_lightning.nets.unet import UNetResNet18


def test_nyus_chain_is_the_papers():
    assert (NYU.frame, NYU.input_frame, NYU.input, NYU.output) == \
        ((480, 640), (240, 320), (228, 304), (55, 74))
    assert NETWORK_REGION == (12, 468, 16, 624)
    assert coarse5_size(NYU, True) == (6, 9) and fine1_stride(NYU) == (2, 2)


def test_the_nyu_networks_are_unchanged_by_the_chain_setting():
    torch.manual_seed(0)
    a = CoarseNet(coarse6_units=32)
    torch.manual_seed(0)
    b = CoarseNet(coarse6_units=32, geometry="nyu")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                   b.state_dict().values()))
    assert a.coarse6.in_features == 256 * 6 * 9


@pytest.mark.parametrize("chain", [KITTI, MAKE3D])
def test_every_network_maps_the_chains_input_to_its_output(chain):
    x = torch.zeros(2, 3, *chain.input)
    coarse = CoarseNet(coarse6_units=16, geometry=chain.settings()).eval()
    fine = FineNet(geometry=chain.name).eval()
    unet = UNetResNet18(decoder_width=8, geometry=chain.name).eval()
    with torch.no_grad():
        c = coarse(x)
        assert tuple(c.shape) == (2, 1, *chain.output)
        assert tuple(fine(x, c).shape) == (2, 1, *chain.output)
        assert tuple(unet(x).shape) == (2, 1, *chain.output)


def test_kittis_network_has_the_papers_sizes():
    assert KITTI.input == (172, 576) and KITTI.output == (27, 142)
    assert coarse5_size(KITTI, False) == (10, 35)  # the paper's table: 35x9 after coarse2-4
    assert fine1_stride(KITTI) == (3, 2)


def test_a_chain_from_settings_and_bad_ones():
    g = geometry_of({"frame": [100, 200], "input_frame": [50, 100], "input": [44, 96],
                     "output": [9, 20]})
    assert g.crop_offset == (3, 2) and g.network_region() == (6, 94, 4, 196)
    with pytest.raises(DepthLightningError, match="data.geometry: 'mars'"):
        geometry_of("mars")
    with pytest.raises(DepthLightningError, match="not a frame chain"):
        geometry_of({"frame": [1, 2]})


def test_upsampling_a_kitti_prediction_fills_the_frame_it_came_from():
    pred = torch.arange(27 * 142, dtype=torch.float32).reshape(1, 1, 27, 142) + 1
    up = upsample_to_frame(pred, (375, 1242), "nearest", KITTI)
    assert tuple(up.shape) == (1, 375, 1242)
    top, bottom, left, right = KITTI.network_region((375, 1242))
    assert up[0, top, left] == pred[0, 0, 0, 0]
    assert up[0, bottom - 1, right - 1] == pred[0, 0, -1, -1]


def test_sparse_resizing_keeps_a_dense_maps_2x2_subsampling():
    d = np.random.default_rng(0).uniform(0.5, 9, (48, 64)).astype(np.float32)
    assert np.array_equal(sparse_resize(torch.from_numpy(d), (24, 32)).numpy(),
                          downsample_depth(d))


@pytest.mark.parametrize("size", [(20, 61), (7, 9), (33, 40)])
def test_sparse_resizing_invents_nothing_and_keeps_a_measurement_per_cell(size):
    rng = np.random.default_rng(1)
    d = rng.uniform(1, 80, (66, 123)).astype(np.float32)
    d[rng.random(d.shape) < 0.93] = 0
    out = sparse_resize(torch.from_numpy(d)[None], size)[0].numpy()
    assert np.isin(out[out > 0], d[d > 0]).all()
    h, w = size
    for r in range(h):
        for c in range(w):
            rows = (np.arange(66) * h // 66) == r
            cols = (np.arange(123) * w // 123) == c
            block = d[np.ix_(rows, cols)]
            assert (out[r, c] > 0) == (block > 0).any()
            if out[r, c] > 0:
                assert out[r, c] in block
