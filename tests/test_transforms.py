"""Joint image / depth transforms (depth_lightning.data.transforms) on 320x240 frames."""

import math

import numpy as np
import torch

from depth_lightning.data.transforms import Augment, JointTransform, sampling_grid


def frame(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = np.linspace(5.0, 1.0, h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    depth += np.linspace(0, 1, w, dtype=np.float32)[None]
    return img, depth


def test_sampling_grid_of_the_centre_crop_hits_pixel_centres():
    grid = sampling_grid((228, 304), (240, 320), (8, 6), 1.0, 0.0, False)
    assert grid.shape == (1, 228, 304, 2)
    # output pixel (i, j) is source pixel (6 + i, 8 + j): its centre in [-1, 1] coordinates
    x = 2 * (8 + np.arange(304) + 0.5) / 320 - 1
    y = 2 * (6 + np.arange(228) + 0.5) / 240 - 1
    np.testing.assert_allclose(grid[0, 0, :, 0].numpy(), x, atol=1e-6)
    np.testing.assert_allclose(grid[0, :, 0, 1].numpy(), y, atol=1e-6)
    flipped = sampling_grid((228, 304), (240, 320), (8, 6), 1.0, 0.0, True)
    np.testing.assert_allclose(flipped[0, 0, :, 0].numpy(), x[::-1], atol=1e-6)


def test_sampling_grid_rotates_about_the_frame_centre():
    angle = 30.0
    grid = sampling_grid((228, 304), (240, 320), (8, 6), 1.0, angle, False)[0].double()
    # back into pixels, relative to the frame centre (160, 120)
    xs = (grid[..., 0] + 1) * 320 / 2 - 160
    ys = (grid[..., 1] + 1) * 240 / 2 - 120
    u = 8 + torch.arange(304, dtype=torch.float64) + 0.5 - 160
    v = 6 + torch.arange(228, dtype=torch.float64) + 0.5 - 120
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    a = math.radians(angle)
    torch.testing.assert_close(xs, math.cos(a) * uu + math.sin(a) * vv, atol=1e-3, rtol=0)
    torch.testing.assert_close(ys, -math.sin(a) * uu + math.cos(a) * vv, atol=1e-3, rtol=0)
    # a rotation keeps distances from the centre
    torch.testing.assert_close(xs**2 + ys**2, uu**2 + vv**2, atol=0.1, rtol=1e-5)


def test_eval_transform_is_an_exact_centre_crop():
    img, depth = frame()
    out, target = JointTransform(train=False)(img, depth)
    assert out.dtype == torch.uint8 and out.shape == (3, 228, 304)
    assert np.array_equal(out.permute(1, 2, 0).numpy(), img[6:234, 8:312])
    assert target.shape == (1, 55, 74) and target.dtype == torch.float32
    # nearest sample at the centre of each 4.1x4.1 block of the crop
    rows = np.floor(6 + (np.arange(55) + 0.5) * 228 / 55).astype(int)
    cols = np.floor(8 + (np.arange(74) + 0.5) * 304 / 74).astype(int)
    np.testing.assert_allclose(target[0].numpy(), depth[np.ix_(rows, cols)], rtol=1e-6)


def test_eval_transform_masks_bad_depths():
    img, depth = frame()
    depth[:120] = np.nan
    depth[120:, :160] = -2.0
    _, target = JointTransform(train=False)(img, depth)
    assert torch.isfinite(target).all() and (target >= 0).all()
    assert (target[0, :27] == 0).all(), "NaN rows are invalid (0)"
    assert (target[0, 30:, :37] == 0).all() and (target[0, 30:, 40:] > 0).all()


def test_flip_mirrors_image_and_depth_together():
    img, depth = frame()
    torch.manual_seed(0)
    t = JointTransform(train=True, augment=Augment(flip=True))
    flipped = same = None
    for _ in range(20):
        p = t.params(depth.shape)
        x0, y0 = p["crop"]
        t.params = lambda hw, generator=None, p=p: p  # replay these parameters
        out, target = t(img, depth)
        crop = img[y0:y0 + 228, x0:x0 + 304]
        if p["flip"]:
            flipped = np.array_equal(out.permute(1, 2, 0).numpy(), crop[:, ::-1])
            assert target[0, :, 0].mean() > target[0, :, -1].mean()  # depth grows to the right
        else:
            same = np.array_equal(out.permute(1, 2, 0).numpy(), crop)
        del t.params
    assert flipped and same


def test_random_crops_stay_inside_the_frame():
    torch.manual_seed(1)
    t = JointTransform(train=True)
    crops = {tuple(t.params((240, 320))["crop"]) for _ in range(200)}
    assert all(0 <= x <= 16 and 0 <= y <= 12 for x, y in crops)
    assert len(crops) > 50, "offsets vary"


def test_rotation_marks_pixels_from_outside_invalid():
    img, depth = frame()
    t = JointTransform(train=True, augment=Augment(rotate=5.0))
    t.params = lambda hw, generator=None: {"scale": 1.0, "angle": 5.0, "flip": False,
                                           "crop": (0, 0), "color": None}
    _, target = t(img, depth)
    assert target[0, 0, 0] == 0 or target[0, -1, -1] == 0 or target[0, 0, -1] == 0
    assert (target > 0).float().mean() > 0.9


def test_scale_divides_depth():
    img = np.zeros((240, 320, 3), np.uint8)
    depth = np.full((240, 320), 4.0, np.float32)
    t = JointTransform(train=True, augment=Augment(scale=(1.5, 1.5)))
    _, target = t(img, depth)
    assert torch.allclose(target[target > 0], torch.tensor(4.0 / 1.5))


def test_color_multiplies_each_channel():
    img = np.full((240, 320, 3), 100, np.uint8)
    depth = np.ones((240, 320), np.float32)
    t = JointTransform(train=True, augment=Augment(color=(0.8, 1.2)))
    torch.manual_seed(0)
    out, _ = t(img, depth)
    torch.manual_seed(0)
    torch.rand(6)  # the draw of params() before the colour
    factors = 0.8 + torch.rand(3) * 0.4
    expected = (100 * factors).round().to(torch.uint8)
    assert torch.equal(out[:, 0, 0], expected) and (out == out[:, :1, :1]).all()


def test_the_draw_comes_from_the_generator_given():
    from depth_lightning.data.sampling import frame_generator

    t = JointTransform(train=True, augment=Augment(flip=True, rotate=5.0, color=(0.8, 1.2)))
    a = t.params((240, 320), frame_generator(0, 3, 17))
    torch.manual_seed(123)  # the global random state plays no part
    b = t.params((240, 320), frame_generator(0, 3, 17))
    assert a == b
    assert t.params((240, 320), frame_generator(0, 4, 17)) != a, "another epoch, another draw"
