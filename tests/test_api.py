"""DepthPredictor (depth_lightning.api): the same numbers as `predict`, photos in any form, and
`predict output_dir=X` writing nothing outside X."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fixtures_app import nyu_prediction, tiny_ckpts  # noqa: F401
from PIL import Image

from depth_lightning.errors import DepthLightningError


def test_the_api_equals_predicts_npy_on_a_real_nyu_photo(nyu_prediction):  # noqa: F811
    from depth_lightning import DepthPredictor

    p = DepthPredictor.from_checkpoint(nyu_prediction.ckpt, device="auto")
    depth = p(nyu_prediction.photo_path)
    saved = np.load(nyu_prediction.out / f"{nyu_prediction.name}_depth.npy")
    assert depth.dtype == np.float32 and depth.shape == saved.shape == (480, 640)
    diff = float(np.abs(depth - saved).max())
    print(f"API vs predict .npy: max |diff| = {diff:.2e} m")
    assert diff <= 1e-5


def test_predict_with_output_dir_creates_nothing_outside_it(nyu_prediction):  # noqa: F811
    assert sorted(os.listdir(nyu_prediction.cwd)) == ["preds"]
    assert sorted(p.name for p in nyu_prediction.out.iterdir()) == sorted(
        f"{nyu_prediction.name}{s}" for s in ("_depth.png", "_depth.npy", "_viz.png", ".ply"))


def test_photos_in_any_form_give_the_same_depth(tiny_ckpts, tmp_path):  # noqa: F811
    from depth_lightning.api import DepthPredictor

    p = DepthPredictor.from_checkpoint(tiny_ckpts[1], device="cpu", batch_size=2)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (150, 210, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    from_array = p(rgb)
    assert np.array_equal(p(Image.fromarray(rgb)), from_array)
    assert np.array_equal(p(tmp_path / "a.png"), from_array)
    assert np.array_equal(p(str(tmp_path / "a.png")), from_array)
    assert np.array_equal(p(np.dstack([rgb, np.zeros((150, 210), np.uint8)])), from_array)
    gray = rgb[..., 0]
    assert np.array_equal(p(gray), p(np.dstack([gray] * 3)))
    sizes = [(150, 210), (61, 80), (480, 640)]
    batch = p.predict_batch([rng.integers(0, 256, (*s, 3), dtype=np.uint8) for s in sizes])
    assert [b.shape for b in batch] == sizes and all(b.dtype == np.float32 for b in batch)
    maps = p.coarse_and_fine(rgb)
    assert list(maps) == ["coarse", "fine"] and np.array_equal(maps["fine"], from_array)
    assert np.abs(maps["fine"] - maps["coarse"]).max() > 1e-3  # two different maps


def test_inside_the_network_region_the_depth_is_plain_bilinear_upsampling(tiny_ckpts):  # noqa: F811
    from depth_lightning.api import DepthPredictor
    from depth_lightning.geometry import downsample_image

    p = DepthPredictor.from_checkpoint(tiny_ckpts[0], device="cpu")
    rgb = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    depth = p(rgb)
    # computed another way: the 2x2 mean, the centre crop, the stage, exp, F.interpolate
    x = torch.from_numpy(downsample_image(rgb)).permute(2, 0, 1)[None, :, 6:234, 8:312]
    with torch.no_grad():
        small = torch.exp(p.module(x.contiguous()).float())
    expect = F.interpolate(small, size=(456, 608), mode="bilinear", align_corners=False)[0, 0]
    assert np.abs(depth[12:468, 16:624] - expect.numpy()).max() < 1e-4


def test_bad_images_are_one_clear_error(tiny_ckpts, tmp_path):  # noqa: F811
    from depth_lightning.api import DepthPredictor

    p = DepthPredictor.from_checkpoint(tiny_ckpts[0], device="cpu")
    (tmp_path / "notes.jpg").write_text("not a picture")
    cases = [(tmp_path / "nope.png", "does not exist"), (tmp_path / "notes.jpg", "not an image"),
             (np.zeros((4, 4, 3), np.float32), "uint8"), (np.zeros((4, 4, 2), np.uint8), "shape")]
    for image, needle in cases:
        with pytest.raises(DepthLightningError, match=needle) as e:
            p(image)
        assert str(e.value).startswith("image: ")


def test_a_saved_predictor_reloads_with_its_data_settings(tiny_ckpts, tmp_path):  # noqa: F811
    from depth_lightning.api import DepthPredictor

    p = DepthPredictor.from_checkpoint(tiny_ckpts[1], device="cpu")
    p.data = {"_target_": "x.Y", "batch_size": 3}
    q = DepthPredictor.from_checkpoint(p.save(tmp_path / "again.ckpt"), device="cpu")
    assert q.data == p.data and q.columns == ("coarse", "fine")
    image = np.full((40, 50, 3), 90, np.uint8)
    assert np.array_equal(q(image), p(image))
