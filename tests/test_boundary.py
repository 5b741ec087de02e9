"""The tenth metric (depth-boundary precision / recall / F) against an independent NumPy and
SciPy implementation, on the real NYU frames in ../shared/data and on hand-made cases."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from depth_lightning.evaluation.metrics import DepthMetrics
from depth_lightning.evaluation.metrics.boundary import (
    BOUNDARY_KEYS,
    DepthBoundaryMetrics,
    EdgeF1,
    depth_edges,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def numpy_edges(depth: np.ndarray, valid: np.ndarray, threshold: float) -> np.ndarray:
    """Per image: pixel p is an edge if a valid 4-neighbour q is more than `threshold`
    farther (ratio D(q)/D(p) - 1), by explicit neighbour offsets."""
    h, w = depth.shape
    out = np.zeros((h, w), bool)
    for di, dj in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        p = (slice(max(0, -di), h - max(0, di)), slice(max(0, -dj), w - max(0, dj)))
        q = (slice(max(0, di), h - max(0, -di)), slice(max(0, dj), w - max(0, -dj)))
        with np.errstate(divide="ignore", invalid="ignore"):
            farther = depth[q] / depth[p] > 1 + threshold
        out[p] |= valid[p] & valid[q] & farther
    return out


# Millimetre depths make ratios of exactly 1.1 or 1.3 common, where log and ratio tests round
# differently: the comparisons use thresholds no ratio of two millimetre values hits exactly.
THRESHOLD = 0.1037


def numpy_boundary(pred, gt, threshold=THRESHOLD, radius=2, min_depth=1e-3, max_depth=10.0):
    """Precision, recall, F with the chessboard distance transform for matching."""
    counts = np.zeros(4)
    for p, g in zip(pred, gt):
        valid = np.isfinite(g) & (g > min_depth) & (g < max_depth)
        p = np.clip(p, min_depth, max_depth)
        e_gt, e_pr = numpy_edges(g, valid, threshold), numpy_edges(p, valid, threshold)

        def near(a, b):
            if not b.any():
                return np.zeros_like(a)
            return a & (ndimage.distance_transform_cdt(~b, metric="chessboard") <= radius)

        counts += [e_pr.sum(), near(e_pr, e_gt).sum(), e_gt.sum(), near(e_gt, e_pr).sum()]
    precision, recall = counts[1] / counts[0], counts[3] / counts[2]
    return {"edge_precision": precision, "edge_recall": recall,
            "edge_f1": 2 * precision * recall / (precision + recall)}


@pytest.fixture(scope="module")
def nyu_depths() -> np.ndarray:
    """The 17 NYU V1 (filled) and 3 V2 raw (holes = 0) depth frames, metres, 480x640."""
    paths = sorted((SHARED_DATA / "nyu_v1_samples" / "depth").glob("*.png"))
    paths += sorted((SHARED_DATA / "nyu_v2_raw_samples" / "depth").glob("sync_depth_*.png"))
    if not paths:
        pytest.skip(f"shared NYU sample data not found at {SHARED_DATA}")
    return np.stack([np.asarray(Image.open(p)).astype(np.float64) / 1000.0 for p in paths])


def predictions(gt: np.ndarray, kind: str) -> np.ndarray:
    rng = np.random.default_rng(len(kind))
    filled = np.where(gt > 0, gt, 2.5)
    if kind == "blur":  # blurred edges: some found, some smeared below the threshold
        pred = np.stack([ndimage.uniform_filter(g, 5) for g in filled])
    elif kind == "shift":  # every edge 2 pixels off, scaled: found within radius 2
        pred = 1.2 * np.roll(filled, 2, axis=2)
    else:  # multiplicative noise: many false edges
        pred = filled * np.exp(rng.normal(0, 0.08, gt.shape))
    return np.where(gt > 0, pred, rng.uniform(0, 50, gt.shape))  # garbage in the holes


@pytest.mark.parametrize("kind", ["blur", "shift", "noise"])
@pytest.mark.parametrize("radius", [0, 2])
def test_real_nyu_frames_match_numpy(nyu_depths, kind, radius):
    gt = nyu_depths[:, ::4, ::4]  # 120x160, like the network's grid in scale
    pred = predictions(gt, kind)
    m = DepthBoundaryMetrics(threshold=THRESHOLD, radius=radius)
    for i in range(0, len(gt), 8):  # in batches: the summed states add up
        m.update(torch.from_numpy(pred[i:i + 8]).float(), torch.from_numpy(gt[i:i + 8]).float())
    got = {k: float(v) for k, v in m.compute().items()}
    want = numpy_boundary(pred.astype(np.float32), gt.astype(np.float32), radius=radius)
    assert list(got) == list(BOUNDARY_KEYS)
    for k in BOUNDARY_KEYS:
        assert got[k] == pytest.approx(want[k], rel=1e-9, abs=1e-12), k
    # real values, not a trivial 0 or 1: real frames have thousands of edge pixels
    assert int(m.edge_gt_edges) > 1000 and 0.02 < want["edge_f1"] < 0.999


def test_edges_on_real_frames_agree_pixel_for_pixel(nyu_depths):
    gt = nyu_depths[:4, ::2, ::2]
    valid = gt > 0
    for t in (0.0517, THRESHOLD, 0.2989):
        got = depth_edges(torch.from_numpy(gt), torch.from_numpy(valid), t).numpy()
        want = np.stack([numpy_edges(g, v, t) for g, v in zip(gt, valid)])
        assert (got == want).all() and want.any()
    # holes make no edges
    assert not got[~valid].any()


def test_radius_shifted_edges_and_holes_by_hand():
    gt = torch.ones(1, 9, 9)
    gt[0, :, 5:] = 3.0  # a vertical step: edge column 4 (near side)
    pred = torch.ones(1, 9, 9)
    pred[0, :, 7:] = 3.0  # found two columns late
    pred[0, 0, 0] = 10.0  # one false edge pixel pair at the corner: marks (0,1) and (1,0)
    got = {k: float(v) for k, v in _compute(pred, gt, radius=1).items()}
    assert got == {"edge_precision": 0.0, "edge_recall": 0.0, "edge_f1": 0.0}
    got = {k: float(v) for k, v in _compute(pred, gt, radius=2).items()}
    assert got["edge_recall"] == 1.0 and got["edge_precision"] == pytest.approx(9 / 11)
    # a hole column between the two sides removes the true edge's pairs
    holed = gt.clone()
    holed[0, :, 4] = 0
    assert _compute(gt, holed, radius=0)["edge_recall"].isnan()


def _compute(pred, gt, radius):
    m = DepthBoundaryMetrics(radius=radius)
    m.update(pred, gt)
    return m.compute()


def test_scalar_class_reset_prefix_and_bad_settings():
    gt = torch.tensor([[[1.0, 3.0], [1.0, 3.0]]])
    f1 = EdgeF1(radius=0, prefix="val/")
    f1.update(gt, gt)
    assert float(f1.compute()) == 1.0
    f1.reset()
    assert int(f1.edge_gt_edges) == 0
    with pytest.raises(ValueError, match="radius"):
        DepthBoundaryMetrics(radius=-1)
    with pytest.raises(ValueError, match="threshold"):
        DepthBoundaryMetrics(threshold=0)


def test_the_nine_metrics_are_untouched():
    # the tenth metric is its own class: the default DepthMetrics still computes nine keys
    assert len(DepthMetrics().metric_keys) == 9
    assert not set(BOUNDARY_KEYS) & set(DepthMetrics().metric_keys)
