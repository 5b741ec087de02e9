"""The plug-in contracts: building from a target, and checks of outputs and frames."""

import numpy as np
import pytest
import torch

from depth_lightning.core.plugins import build, check_frame, check_log_depth, check_loss
from depth_lightning.errors import DepthLightningError


def test_build_names_the_setting_and_the_target():
    assert build({"_target_": "builtins.dict", "a": 1}, "x") == {"a": 1}
    cases = [({"a": 1}, "x: needs a _target_"),
             ({"_target_": "nope.Thing"}, "x: nope.Thing: cannot import"),
             ({"_target_": "builtins.int", "base": "zz"}, "x: builtins.int: ")]
    for cfg, message in cases:
        with pytest.raises(DepthLightningError) as info:
            build(cfg, "x")
        assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_network_outputs():
    check_log_depth(torch.zeros(2, 1, 55, 74), "model.net", 2, (55, 74))
    for out, words in ((np.zeros((2, 1, 55, 74)), "returned ndarray"),
                       (torch.zeros(2, 55, 74), "returned shape (2, 55, 74)"),
                       (torch.zeros(2, 1, 55, 74, dtype=torch.long), "returned torch.int64")):
        with pytest.raises(DepthLightningError) as info:
            check_log_depth(out, "model.net", 2, (55, 74))
        assert str(info.value).startswith(f"model.net: {words}")


def test_losses():
    check_loss(lambda p, d, m: (p - d.log()).abs().mean(), "model.loss", (55, 74))
    with pytest.raises(DepthLightningError, match="is not callable"):
        check_loss(3, "model.loss", (55, 74))
    with pytest.raises(DepthLightningError, match="calling it as"):
        check_loss(lambda p, d: p.mean(), "model.loss", (55, 74))
    with pytest.raises(DepthLightningError, match="returned float"):
        check_loss(lambda p, d, m: 1.0, "model.loss", (55, 74))


def test_frames():
    image, depth = np.zeros((4, 6, 3), np.uint8), np.ones((4, 6), np.float32)
    check_frame({"image": image, "depth": depth, "scene": "a"}, "data.source")
    bad = [({"image": image}, "has no 'depth'"),
           ([image, depth], "is a list"),
           ({"image": image.astype(float), "depth": depth}, "'image' is float64"),
           ({"image": image, "depth": depth[:2]}, "'depth' is float32 (2, 6)"),
           ({"image": image, "depth": depth.astype(int)}, "'depth' is int64"),
           ({"image": image, "depth": depth, "scene": 3}, "'scene' is int")]
    for frame, words in bad:
        with pytest.raises(DepthLightningError, match="data.source: frame 7") as info:
            check_frame(frame, "data.source", 7)
        assert words in str(info.value)
