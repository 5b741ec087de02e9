"""The frame geometry chain: sizes, downsampling, the network input, upsampling back."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depth_lightning.geometry import (
    CROP_OFFSET,
    EIGEN_CROP,
    FRAME_SIZE,
    INPUT_FRAME_SIZE,
    INPUT_SIZE,
    NETWORK_REGION,
    OUTPUT_SIZE,
    crop_input,
    downsample_depth,
    downsample_image,
    network_input,
    resize_image,
    resize_nearest,
    scale_intrinsics,
    to_input_frame,
    upsample_to_frame,
)


def test_the_chain_of_sizes():
    assert (FRAME_SIZE, INPUT_FRAME_SIZE, INPUT_SIZE, OUTPUT_SIZE) == (
        (480, 640), (240, 320), (228, 304), (55, 74))
    assert CROP_OFFSET == (6, 8)
    assert NETWORK_REGION == (12, 468, 16, 624)  # the 304x228 crop of 320x240, at 640x480
    assert EIGEN_CROP == (45, 471, 41, 601)


def test_a_640x480_frame_goes_down_by_its_2x2_blocks():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    depth = rng.random((480, 640), dtype=np.float32)
    small, d = to_input_frame(image, depth)
    block = image[:2, :2].astype(float).mean(axis=(0, 1))
    assert small.shape == (240, 320, 3) and d.shape == (240, 320)
    assert np.array_equal(small[0, 0], np.floor(block + 0.5).astype(np.uint8))
    assert np.array_equal(d, depth[::2, ::2]), "depth is subsampled, never averaged"
    assert np.array_equal(small, downsample_image(image))
    assert np.array_equal(d, downsample_depth(depth))
    # the area resize used for other sizes gives the same 2x2 means for a 640x480 image
    assert np.array_equal(resize_image(image, INPUT_FRAME_SIZE), small)


def test_any_frame_size_reaches_the_network_input():
    rng = np.random.default_rng(1)
    for h, w in ((240, 320), (600, 1000), (100, 130)):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        depth = rng.random((h, w), dtype=np.float32) + 1
        small, d = to_input_frame(image, depth)
        assert small.shape == (240, 320, 3) and d.shape == (240, 320)
        assert set(np.unique(d)) <= set(np.unique(depth)), "nearest: no depth is invented"
        x = network_input(image)
        assert x.shape == (3, 228, 304) and x.dtype == torch.uint8
        assert torch.equal(x, crop_input(torch.from_numpy(small).permute(2, 0, 1)))
    assert np.array_equal(resize_nearest(np.arange(4).reshape(2, 2), (4, 4))[::2, ::2],
                          np.arange(4).reshape(2, 2))
    with pytest.raises(ValueError, match="240x320"):
        crop_input(torch.zeros(3, 10, 10))


def test_intrinsics_scale_with_the_photo():
    assert scale_intrinsics((500.0, 500.0, 320.0, 240.0), (240, 320)) == (250.0, 250.0,
                                                                         160.0, 120.0)


def test_nearest_upsampling_copies_cells_and_replicates_edges():
    pred = torch.arange(55 * 74, dtype=torch.float32).reshape(1, 1, 55, 74) + 1
    up = upsample_to_frame(pred, (480, 640), "nearest")[0]
    assert up.shape == (480, 640)
    top, bottom, left, right = NETWORK_REGION
    region = up[top:bottom, left:right]
    # inside the region: every output pixel's value at its centre, 608/74 x 456/55 per cell
    ref = F.interpolate(pred, size=(456, 608), mode="nearest-exact")[0, 0]
    assert torch.equal(region, ref)
    assert set(up.unique().tolist()) == set(pred.flatten().tolist())
    assert up[0, 0] == pred[0, 0, 0, 0] and up[-1, -1] == pred[0, 0, -1, -1]
    # outside it: edge replication
    assert torch.equal(up[:top, left:right], region[:1].expand(top, -1))
    assert torch.equal(up[bottom:, left:right], region[-1:].expand(480 - bottom, -1))
    assert torch.equal(up[top:bottom, :left], region[:, :1].expand(-1, left))


def test_bilinear_upsampling_blends_neighbours():
    torch.manual_seed(0)
    pred = torch.rand(2, 1, 55, 74) * 4 + 0.5
    up = upsample_to_frame(pred, (480, 640), "bilinear")
    top, bottom, left, right = NETWORK_REGION
    ref = F.interpolate(pred, size=(456, 608), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(up[:, top:bottom, left:right], ref, rtol=0, atol=1e-4)
    # values between the extremes of the source, and different from nearest
    assert up.min() >= pred.min() - 1e-5 and up.max() <= pred.max() + 1e-5
    assert not torch.allclose(up, upsample_to_frame(pred, (480, 640), "nearest"))
    # a horizontal ramp stays a ramp: equal steps between pixel centres inside the region
    ramp = torch.arange(74, dtype=torch.float32).expand(1, 1, 55, 74)
    row = upsample_to_frame(ramp, (480, 640), "bilinear")[0, 240, 40:600]
    steps = row.diff()
    torch.testing.assert_close(steps, torch.full_like(steps, 74 / 608), rtol=0, atol=1e-4)
    # any photo size: (B,55,74) input, output the requested size
    assert upsample_to_frame(pred[:, 0], (123, 457), "bilinear").shape == (2, 123, 457)


