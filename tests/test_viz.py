"""Figures: learning curves, the depth grid, a prediction with its scale bar."""

import numpy as np
import pytest
from PIL import Image

from depth_lightning.viz import depth_range, plot_depth_grid, plot_learning_curves, plot_prediction


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_depth_grid_has_a_column_per_map(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    depth = rng.random((60, 80)) * 4 + 1
    row = {"rgb": rgb, "gt": depth, "mean": depth * 0 + 2, "coarse": depth, "label": "frame 3"}
    two = pixels(plot_depth_grid([row, row], tmp_path / "two.png"))
    three = pixels(plot_depth_grid([{**row, "fine": depth}], tmp_path / "three.png"))
    assert three.shape[1] > two.shape[1], "one more column for the fine map"
    assert two.shape[0] > three.shape[0], "one row per frame"
    assert not list(tmp_path.glob(".*"))
    with pytest.raises(ValueError):
        plot_depth_grid([], tmp_path / "none.png")


def test_curves_and_prediction(tmp_path):
    rows = [{"epoch": e, "train/loss": 1 / (e + 1), "val/loss": 1 / (e + 2),
             "val/si_rmse_log": 0.3 - 0.01 * e} for e in range(4)]
    plot_learning_curves(rows, tmp_path / "curves.png")
    assert pixels(tmp_path / "curves.png").std() > 10
    photo = np.zeros((120, 160, 3), np.uint8)
    depth = np.linspace(1, 5, 160, dtype=np.float32)[None].repeat(120, 0)
    assert pixels(plot_prediction(photo, depth, tmp_path / "p.png")).shape[1] > 300
    assert depth_range(depth, np.array([[0.0, np.nan]])) == (1.0, 5.0)
