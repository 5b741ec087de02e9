"""One scoring path: predictors, batches and protocols, checked against the metric classes."""

import pytest
import torch
from torch import nn

from depth_lightning.evaluation.metrics import METRIC_CLASSES, METRIC_KEYS
from depth_lightning.evaluation.metrics.boundary import BOUNDARY_KEYS, DepthBoundaryMetrics
from depth_lightning.evaluation.protocols import TRAINING_TARGET, EvalProtocol
from depth_lightning.evaluation.scoring import MeanPredictor, StagePredictor, panel_rows, score

BTS = EvalProtocol(name="bts", target="rawDepths", upsample="bilinear", crop=(45, 471, 41, 601),
               min_depth=1e-3, max_depth=10.0)


class Doubling:
    """A predictor: twice the ground truth at the network's output pixels."""

    columns = ("double",)

    def __call__(self, batch):
        return {"double": 2 * batch["small"]}


def frames(n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 1, 55, 74, generator=g) * 5 + 0.5
    depth = torch.rand(n, 480, 640, generator=g) * 8 + 0.5
    depth[0] = 0  # a frame without ground truth is skipped
    depth[1, :100] = 0  # holes
    return [{"image": torch.zeros(2, 3, 228, 304, dtype=torch.uint8), "small": small[i:i + 2],
             "depth": depth[i:i + 2], "index": torch.arange(i, i + 2)} for i in (0, 2, 4)]


def classes_on(batches, predictor, protocol):
    """The same figures from the nine per-metric classes, each on its own."""
    metrics = {k: cls(min_depth=protocol.min_depth, max_depth=protocol.max_depth)
               for k, cls in METRIC_CLASSES.items()}
    for b in batches:
        pred = protocol.resample(predictor(b)["double"])
        mask = protocol.valid_mask(b["depth"])
        for m in metrics.values():
            m.update(pred, b["depth"], mask)
    return {k: float(m.compute()) for k, m in metrics.items()}


@pytest.mark.parametrize("protocol", [BTS, EvalProtocol(name="eigen2014")], ids=["bts", "eigen"])
def test_score_equals_the_nine_metric_classes(protocol):
    batches = frames()
    got, panels = score([Doubling()], batches, protocol)
    assert list(got) == ["double"] and list(got["double"]) == [*METRIC_KEYS, *BOUNDARY_KEYS]
    nine = {k: got["double"][k] for k in METRIC_KEYS}
    assert nine == pytest.approx(classes_on(batches, Doubling(), protocol), rel=1e-12)
    edges = DepthBoundaryMetrics(min_depth=protocol.min_depth, max_depth=protocol.max_depth)
    for b in batches:  # the boundary scores: the metric class on the same region and mask
        top, bottom, left, right = protocol.region
        region = (..., slice(top, bottom), slice(left, right))
        pred = protocol.resample(Doubling()(b)["double"])
        edges.update(pred[region], b["depth"][region], protocol.valid_mask(b["depth"])[region])
    want = {k: float(v) for k, v in edges.compute().items()}
    assert {k: got["double"][k] for k in BOUNDARY_KEYS} == pytest.approx(want, nan_ok=True)
    assert panels == []


def test_mean_predictor_and_panels_of_chosen_frames():
    batches = frames()
    mean = torch.full((1, 55, 74), 3.0)
    got, panels = score([MeanPredictor(mean), Doubling()], batches, BTS, keep=[1, 4])
    assert list(got) == ["mean", "double"]
    assert [p["label"] for p in panels] == ["frame 1", "frame 4"]
    top, bottom, left, right = BTS.region
    row = panels[0]
    assert row["gt"].shape == row["mean"].shape == (bottom - top, right - left)
    assert abs(row["mean"] - 3.0).max() < 1e-5  # bilinear upsampling of a constant map
    assert torch.isnan(torch.from_numpy(row["gt"][:100 - top])).all(), "holes drawn as NaN"


def test_the_training_target_counts_each_image_once():
    g = torch.Generator().manual_seed(3)
    depth = torch.rand(6, 1, 55, 74, generator=g) + 1
    batches = [{"depth": depth[:4]}, {"depth": depth[4:]}]
    got, _ = score([MeanPredictor(depth.mean(0))], batches, TRAINING_TARGET)
    one, _ = score([MeanPredictor(depth.mean(0))], [{"depth": depth}], TRAINING_TARGET)
    assert got["mean"] == pytest.approx(one["mean"], rel=1e-12)


class Constant(nn.Module):
    """Stands for a trained stage: a fixed log depth per column."""

    name, columns = "fine", ("coarse", "fine")

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def prepare(self, images):
        return images.float()

    def log_depths(self, x):
        b = x.shape[0]
        return {"coarse": torch.zeros(b, 1, 55, 74), "fine": torch.full((b, 1, 55, 74), 1.0)}


def test_stage_predictor_gives_metres_for_each_column():
    batch = {"image": torch.zeros(2, 3, 228, 304, dtype=torch.uint8)}
    out = StagePredictor(Constant())(batch)
    assert set(out) == {"coarse", "fine"}
    assert torch.allclose(out["fine"], torch.full((2, 1, 55, 74), torch.e))
    only = StagePredictor(Constant(), columns=("fine",))(batch)
    assert list(only) == ["fine"]
    rows = panel_rows({**batch, "depth": torch.ones(2, 1, 55, 74)}, out, TRAINING_TARGET, [1])
    assert rows[0]["rgb"].shape == (228, 304, 3) and rows[0]["fine"].shape == (55, 74)


def test_constant_predictor_scores_the_frames_own_log_depth_spread():
    import numpy as np

    from depth_lightning.evaluation.scoring import ConstantPredictor

    protocol = EvalProtocol(name="eigen2014")
    batches = frames()
    metrics, _ = score([ConstantPredictor()], batches, protocol)
    top, bottom, left, right = protocol.region
    spreads = []
    for b in batches:
        for depth in b["depth"].numpy():
            region = depth[top:bottom, left:right]
            logs = np.log(region[region > protocol.min_depth])
            if logs.size:
                spreads.append(logs.std())  # population std: sqrt(mean(e^2) - mean(e)^2)
    assert len(spreads) == 4  # 5 frames; frame 0 has no ground truth and is skipped
    assert metrics["constant"]["si_rmse_log"] == pytest.approx(np.mean(spreads), rel=1e-5)
    # the median of the frame: as many pixels above it as below (within the ties)
    pred = ConstantPredictor()(batches[1])["constant"]
    assert pred.shape == (2, 1, 55, 74)
    depth = batches[1]["depth"][0]
    assert float(pred[0, 0, 0, 0]) == pytest.approx(float(depth[depth > 0].median()))
