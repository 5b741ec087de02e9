"""Figures: learning curves, the depth grid, a prediction with its scale bar."""

import numpy as np
import pytest
from PIL import Image

from depth_lightning.reporting.figures import (
    depth_range,
    plot_depth_grid,
    plot_learning_curves,
    plot_prediction,
)


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


def test_paper_settings_formats_and_a_shared_colour_scale(tmp_path):
    from depth_lightning.errors import DepthLightningError
    from depth_lightning.reporting.figures import figure_settings

    assert figure_settings("pdf", 300, "figure") == {"fmt": "pdf", "dpi": 300,
                                                     "depth_scale": "figure"}
    for bad, message in ((("jpg", 100, "row"), "viz.format: 'jpg'"),
                         (("png", 0, "row"), "viz.dpi: 0"),
                         (("png", 100, "column"), "viz.depth_scale: 'column'")):
        with pytest.raises(DepthLightningError, match=message):
            figure_settings(*bad)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    near = {"rgb": rgb, "gt": np.full((60, 80), 1.0)}
    far = {"rgb": rgb, "gt": np.full((60, 80), 9.0)}
    row = pixels(plot_depth_grid([near, far], tmp_path / "row.png"))
    shared = pixels(plot_depth_grid([near, far], tmp_path / "shared.png", scale="figure"))
    # one scale per row draws both uniform maps the same colour; a shared scale does not
    h = row.shape[0]
    assert (row[h // 4, row.shape[1] // 2] == row[3 * h // 4, row.shape[1] // 2]).all()
    hs, ws = shared.shape[:2]
    assert not (shared[hs // 4, ws // 2] == shared[3 * hs // 4, ws // 2]).all()
    assert plot_depth_grid([near], tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"
    rows = [{"epoch": e, "val/si_rmse_log": v} for e, v in enumerate((0.3, 0.25, 0.27))]
    plot_learning_curves(rows, tmp_path / "c.svg", references={"mean": 0.31, "coarse": 0.26})
    svg = (tmp_path / "c.svg").read_text()
    assert "best: epoch 1 (0.2500)" in svg and "Mean (val si_rmse_log 0.3100)" in svg
    assert "Coarse (val si_rmse_log 0.2600)" in svg
