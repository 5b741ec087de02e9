"""Tests of depth_lightning.evaluation.metrics against a plain NumPy implementation of the
metrics of Eigen et al. 2014 (section 4.1)."""

from __future__ import annotations

import math
import os
import socket
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image
from torchmetrics import MetricCollection

import depth_lightning.evaluation.metrics.functional as metrics_module
from depth_lightning.evaluation.metrics import (
    HIGHER_IS_BETTER,
    METRIC_CLASSES,
    METRIC_KEYS,
    PerImageDepthMetric,
    depth_metrics,
    per_image_errors,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EXPECTED_KEYS = (
    "delta1",
    "delta2",
    "delta3",
    "abs_rel",
    "sq_rel",
    "rmse",
    "rmse_log",
    "si_rmse_log",
    "log10",
)
ATOL = 1e-6


# --------------------------------------------------------------------------------------------
# Plain NumPy reference (REFERENCE.md §3): per image on its valid pixels, then mean over images.
# --------------------------------------------------------------------------------------------
def numpy_reference(
    pred: np.ndarray,
    gt: np.ndarray,
    mask: np.ndarray | None = None,
    min_depth: float = 1e-3,
    max_depth: float | None = 10.0,
) -> dict[str, float]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if mask is None:
        mask = gt > 0
    per_image: dict[str, list[float]] = {k: [] for k in EXPECTED_KEYS}
    for p, g, m in zip(pred, gt, mask, strict=True):
        with np.errstate(invalid="ignore"):
            valid = m.astype(bool) & np.isfinite(g) & (g > min_depth)
            if max_depth is not None:
                valid &= g < max_depth
        if not valid.any():
            continue
        g = g[valid]
        p = np.clip(p[valid], min_depth, max_depth)
        thr = np.maximum(g / p, p / g)
        per_image["delta1"].append(np.mean(thr < 1.25))
        per_image["delta2"].append(np.mean(thr < 1.25**2))
        per_image["delta3"].append(np.mean(thr < 1.25**3))
        per_image["abs_rel"].append(np.mean(np.abs(g - p) / g))
        per_image["sq_rel"].append(np.mean((g - p) ** 2 / g))
        per_image["rmse"].append(np.sqrt(np.mean((g - p) ** 2)))
        per_image["rmse_log"].append(np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2)))
        e = np.log(p) - np.log(g)
        per_image["si_rmse_log"].append(np.sqrt(max(np.mean(e**2) - np.mean(e) ** 2, 0.0)))
        per_image["log10"].append(np.mean(np.abs(np.log10(g) - np.log10(p))))
    return {k: (float(np.mean(v)) if v else math.nan) for k, v in per_image.items()}


def collection_values(
    pred: torch.Tensor,
    gt: torch.Tensor,
    mask: torch.Tensor | None = None,
    **caps: float | None,
) -> dict[str, float]:
    metrics = depth_metrics(**caps)
    metrics.update(pred, gt, mask=mask)
    return {k: float(v) for k, v in metrics.compute().items()}


def assert_values_close(got: dict[str, float], want: dict[str, float], atol: float = ATOL) -> None:
    assert set(got) == set(want)
    for k in want:
        if math.isnan(want[k]):
            assert math.isnan(got[k]), k
        else:
            assert got[k] == pytest.approx(want[k], abs=atol, rel=0), (k, got[k], want[k])


def random_batch(
    seed: int, batch: int = 6, height: int = 13, width: int = 17, garbage: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random depths (some beyond both caps), a random mask, and garbage at masked pixels."""
    rng = np.random.default_rng(seed)
    gt = np.exp(rng.normal(np.log(3.0), 0.9, size=(batch, height, width)))
    gt[rng.random(gt.shape) < 0.05] = 0.0  # holes
    gt[rng.random(gt.shape) < 0.02] = 5e-4  # below min_depth
    pred = gt * np.exp(rng.normal(0.0, 0.3, size=gt.shape)) * rng.uniform(0.7, 1.4)
    pred[rng.random(gt.shape) < 0.05] = 1e-5  # below min_depth: clipped
    pred[rng.random(gt.shape) < 0.05] = 25.0  # above max_depth: clipped
    mask = rng.random(gt.shape) < 0.8
    if garbage:
        junk = rng.choice(np.array([np.nan, np.inf, -np.inf, -3.0, 0.0, 1e9]), size=gt.shape)
        pred = np.where(mask, pred, junk)
        gt = np.where(mask, gt, rng.choice(np.array([np.nan, np.inf, -2.0, 0.0, 4.0]), gt.shape))
    return torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(mask)


# --------------------------------------------------------------------------------------------
# Real NYU frames
# --------------------------------------------------------------------------------------------
def box_blur(x: np.ndarray, radius: int) -> np.ndarray:
    """Separable box blur of a (H, W) array with edge padding."""
    k = 2 * radius + 1
    padded = np.pad(x, radius, mode="edge")
    c = np.cumsum(np.pad(padded, ((1, 0), (0, 0))), axis=0)
    rows = (c[k:] - c[:-k]) / k
    c = np.cumsum(np.pad(rows, ((0, 0), (1, 0))), axis=1)
    return (c[:, k:] - c[:, :-k]) / k


@pytest.fixture(scope="module")
def nyu_depths() -> np.ndarray:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared NYU sample data not found at {SHARED_DATA}")
    paths = sorted((SHARED_DATA / "nyu_v1_samples" / "depth").glob("*.png"))
    paths += sorted((SHARED_DATA / "nyu_v2_raw_samples" / "depth").glob("sync_depth_*.png"))
    if not paths:
        pytest.skip(f"no NYU depth PNGs under {SHARED_DATA}")
    depths = [np.asarray(Image.open(p)).astype(np.float64) / 1000.0 for p in paths]
    assert all(d.shape == (480, 640) for d in depths)
    stacked = np.stack(depths)
    assert (stacked == 0).mean() > 0.01, "expected raw frames with holes among the samples"
    return stacked


def perturb(gt: np.ndarray, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = np.exp(rng.normal(0.0, 0.15, size=gt.shape))
    if kind == "noise":
        pred = gt * noise
    elif kind == "scale":
        pred = 1.3 * gt * noise  # some predictions pass 10 m: exercises the clip
    elif kind == "blur":
        pred = np.stack([box_blur(np.where(g > 0, g, 2.5), 7) for g in gt])
    elif kind == "blur_scale":
        pred = 0.8 * np.stack([box_blur(np.where(g > 0, g, 2.5), 4) for g in gt]) * noise
    else:
        raise AssertionError(kind)
    # predictions in the holes are garbage; they must not matter
    return np.where(gt > 0, pred, rng.uniform(0.0, 50.0, size=gt.shape))


@pytest.mark.parametrize("kind", ["noise", "scale", "blur", "blur_scale"])
def test_real_nyu_frames_match_numpy(nyu_depths: np.ndarray, kind: str) -> None:
    # every sample frame; full 480x640 for one case, every other row and column for the others
    gt = nyu_depths if kind == "noise" else nyu_depths[:, ::2, ::2]
    pred = perturb(gt, kind, seed=len(kind)).astype(np.float32)
    got = collection_values(torch.from_numpy(pred), torch.from_numpy(gt.astype(np.float32)))
    want = numpy_reference(pred, gt.astype(np.float32))
    assert_values_close(got, want)
    # sanity: the numbers are in a plausible range, not a trivially passing 0 or 1
    assert 0.005 < want["abs_rel"] < 0.6 and 0.2 < want["delta1"] < 1.0


@pytest.mark.parametrize("caps", [(0.5, 5.0), (1e-3, None)])
def test_real_nyu_frames_caps_and_eigen_crop(
    nyu_depths: np.ndarray, caps: tuple[float, float | None]
) -> None:
    gt = nyu_depths[-6:]  # 3 filled NYU V1 frames and the 3 raw NYU V2 frames with holes
    pred = perturb(gt, "scale", seed=3)
    mask = np.zeros(gt.shape, dtype=bool)
    mask[:, 45:471, 41:601] = True  # the "Eigen crop"
    mask &= gt > 0
    min_depth, max_depth = caps
    got = collection_values(
        torch.from_numpy(pred),
        torch.from_numpy(gt),
        torch.from_numpy(mask),
        min_depth=min_depth,
        max_depth=max_depth,
    )
    assert_values_close(got, numpy_reference(pred, gt, mask, min_depth, max_depth))


# --------------------------------------------------------------------------------------------
# Generated data
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("caps", [(1e-3, 10.0), (0.5, 5.0), (1e-3, None)])
def test_generated_data_matches_numpy(seed: int, caps: tuple[float, float | None]) -> None:
    pred, gt, mask = random_batch(seed)
    min_depth, max_depth = caps
    got = collection_values(pred, gt, mask, min_depth=min_depth, max_depth=max_depth)
    assert_values_close(got, numpy_reference(pred.numpy(), gt.numpy(), mask.numpy(), *caps))


def test_default_mask_is_positive_finite_target() -> None:
    pred, gt, _ = random_batch(5, garbage=False)
    gt[0, 0, :3] = torch.tensor([math.nan, math.inf, -1.0])
    got = collection_values(pred, gt)
    want = numpy_reference(pred.numpy(), gt.numpy(), (gt > 0).numpy() & np.isfinite(gt.numpy()))
    assert_values_close(got, want)
    assert all(math.isfinite(v) for v in got.values())


def test_per_image_errors_values() -> None:
    pred, gt, mask = random_batch(7)
    mask[2] = False  # an image without a valid pixel
    out = per_image_errors(pred, gt, mask)
    assert set(out) == set(EXPECTED_KEYS) | {"valid", "n_valid"}
    assert out["valid"].tolist() == [True, True, False, True, True, True]
    assert out["n_valid"].tolist() == [
        int(((g > 1e-3) & (g < 10) & m).sum()) for g, m in zip(gt, mask, strict=True)
    ]
    for i in range(len(gt)):
        want = numpy_reference(
            pred[i : i + 1].numpy(), gt[i : i + 1].numpy(), mask[i : i + 1].numpy()
        )
        got = {k: float(out[k][i]) for k in EXPECTED_KEYS}
        assert_values_close(got, want)
    only = per_image_errors(pred, gt, mask, keys=["rmse"])
    assert set(only) == {"rmse", "valid", "n_valid"}
    torch.testing.assert_close(only["rmse"], out["rmse"], equal_nan=True)


def test_bfloat16_and_float16_inputs() -> None:
    pred, gt, mask = random_batch(11, garbage=False)
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        p, g = pred.to(dtype), gt.to(dtype)
        got = collection_values(p, g, mask)
        want = numpy_reference(p.double().numpy(), g.double().numpy(), mask.numpy())
        assert_values_close(got, want)
        assert all(v.dtype == torch.float64 for v in depth_metrics()(p, g, mask).values())


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [0.25, 1.7, 6.0])
def test_si_rmse_log_is_scale_invariant(scale: float) -> None:
    pred, gt, mask = random_batch(3, garbage=False)
    pred = pred.clamp(0.5, 5.0)  # no clipping effects once rescaled (max_depth=None)
    base = METRIC_CLASSES["si_rmse_log"](max_depth=None)
    base.update(pred, gt, mask)
    scaled = METRIC_CLASSES["si_rmse_log"](max_depth=None)
    scaled.update(scale * pred, gt, mask)
    assert float(base.compute()) > 0.1
    assert float(scaled.compute()) == pytest.approx(float(base.compute()), abs=1e-12)
    # the other log metric does see the scale
    rmse_log = METRIC_CLASSES["rmse_log"](max_depth=None)
    rmse_log.update(scale * pred, gt, mask)
    assert abs(float(rmse_log.compute()) - float(base.compute())) > 1e-3


def test_masked_pixels_change_nothing() -> None:
    pred, gt, mask = random_batch(4, garbage=False)
    clean = collection_values(pred, gt, mask)
    rng = np.random.default_rng(0)
    junk = torch.from_numpy(rng.choice(np.array([np.nan, np.inf, -7.0, 0.0, 1e12]), gt.shape))
    dirty = collection_values(torch.where(mask, pred, junk), torch.where(mask, gt, junk), mask)
    assert dirty == clean  # bit-identical
    assert all(math.isfinite(v) for v in clean.values())


def test_two_batches_equal_one_batch() -> None:
    pred, gt, mask = random_batch(8, batch=7)
    whole = collection_values(pred, gt, mask)
    metrics = depth_metrics()
    metrics.update(pred[:3], gt[:3], mask[:3])
    metrics.update(pred[3:], gt[3:], mask[3:])
    split = {k: float(v) for k, v in metrics.compute().items()}
    assert_values_close(split, whole, atol=1e-12)
    # forward() gives the batch value and still accumulates
    metrics.reset()
    first = metrics(pred[:3], gt[:3], mask[:3])
    assert_values_close({k: float(v) for k, v in first.items()}, collection_values(*_head(3)))
    metrics(pred[3:], gt[3:], mask[3:])
    assert_values_close({k: float(v) for k, v in metrics.compute().items()}, whole, atol=1e-12)


def _head(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    pred, gt, mask = random_batch(8, batch=7)
    return pred[:n], gt[:n], mask[:n]


@pytest.mark.parametrize("how", ["mask", "holes", "beyond_max"])
def test_frame_without_valid_pixel_is_skipped(how: str) -> None:
    pred, gt, mask = random_batch(9, batch=4)
    without = collection_values(pred, gt, mask)
    empty_pred = torch.full((1, *gt.shape[1:]), 2.0, dtype=gt.dtype)
    empty_gt = torch.full_like(empty_pred, 20.0 if how == "beyond_max" else 3.0)
    empty_mask = torch.ones_like(empty_pred, dtype=torch.bool)
    if how == "mask":
        empty_mask[:] = False
    elif how == "holes":
        empty_gt[:] = 0.0
    metrics = depth_metrics()
    metrics.update(pred[:2], gt[:2], mask[:2])
    metrics.update(empty_pred, empty_gt, empty_mask)  # a batch made only of the empty frame
    metrics.update(
        torch.cat([pred[2:], empty_pred]),
        torch.cat([gt[2:], empty_gt]),
        torch.cat([mask[2:], empty_mask]),
    )
    got = {k: float(v) for k, v in metrics.compute().items()}
    assert_values_close(got, without, atol=1e-12)
    assert int(metrics.n_images) == 4


def test_no_image_at_all_gives_nan_with_warning() -> None:
    metric = METRIC_CLASSES["rmse"]()
    metric.update(torch.ones(2, 4, 4), torch.zeros(2, 4, 4))
    with pytest.warns(UserWarning, match="no image with a valid pixel"):
        value = metric.compute()
    assert torch.isnan(value) and int(metric.n_images) == 0 and float(metric.sum_value) == 0.0


def test_channel_dim_and_plain_shapes_agree() -> None:
    pred, gt, mask = random_batch(10)
    plain = collection_values(pred, gt, mask)
    assert collection_values(pred[:, None], gt[:, None], mask[:, None]) == plain
    assert collection_values(pred[:, None], gt, mask[:, None]) == plain
    assert collection_values(pred, gt[:, None], mask) == plain


def test_non_bool_mask_and_empty_batch() -> None:
    pred, gt, mask = random_batch(14)
    plain = collection_values(pred, gt, mask)
    assert collection_values(pred, gt, mask.to(torch.uint8)) == plain
    assert collection_values(pred, gt, mask.double()) == plain
    metrics = depth_metrics()
    metrics.update(pred[:0], gt[:0], mask[:0])  # an empty batch adds nothing
    metrics.update(pred, gt, mask)
    assert {k: float(v) for k, v in metrics.compute().items()} == plain


@pytest.mark.parametrize("chunk_elements", [1, 2 * 13 * 17, 1 << 40])
def test_cpu_chunking_does_not_change_results(
    monkeypatch: pytest.MonkeyPatch, chunk_elements: int
) -> None:
    """One image per chunk, a few, and one pass over the batch (the accelerator path)."""
    pred, gt, mask = random_batch(15, batch=7)
    want = numpy_reference(pred.numpy(), gt.numpy(), mask.numpy())
    monkeypatch.setattr(metrics_module, "_CPU_CHUNK_ELEMENTS", chunk_elements)
    assert_values_close(collection_values(pred, gt, mask), want, atol=1e-12)


def test_bad_inputs_raise_clear_errors() -> None:
    metric = METRIC_CLASSES["abs_rel"]()
    g = torch.rand(2, 5, 6) + 1
    with pytest.raises(ValueError, match="shapes differ"):
        metric.update(torch.rand(2, 5, 5) + 1, g)
    with pytest.raises(ValueError, match="shapes differ"):
        metric.update(torch.rand(3, 5, 6) + 1, g)
    with pytest.raises(ValueError, match="mask shape"):
        metric.update(g, g, torch.ones(2, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(B, H, W\) or \(B, 1, H, W\)"):
        metric.update(torch.rand(2, 3, 5, 6), torch.rand(2, 3, 5, 6))
    with pytest.raises(ValueError, match=r"\(B, H, W\) or \(B, 1, H, W\)"):
        metric.update(torch.rand(5, 6), torch.rand(5, 6))
    with pytest.raises(ValueError, match="floating point"):
        metric.update(torch.ones(2, 5, 6, dtype=torch.long), g)
    with pytest.raises(ValueError, match="min_depth"):
        METRIC_CLASSES["rmse"](min_depth=0.0)
    with pytest.raises(ValueError, match="max_depth"):
        depth_metrics(min_depth=1.0, max_depth=0.5)
    with pytest.raises(ValueError, match="unknown metric"):
        per_image_errors(g, g, keys=["silog"])


# --------------------------------------------------------------------------------------------
# The collection and the metric classes
# --------------------------------------------------------------------------------------------
def test_keys_and_metadata() -> None:
    assert METRIC_KEYS == EXPECTED_KEYS
    assert tuple(METRIC_CLASSES) == EXPECTED_KEYS
    assert HIGHER_IS_BETTER == {k: k.startswith("delta") for k in EXPECTED_KEYS}
    assert depth_metrics().metric_keys == EXPECTED_KEYS
    prefixed = depth_metrics(prefix="val/")
    pred, gt, _ = random_batch(3)
    prefixed.update(pred, gt)
    assert list(prefixed.compute()) == [f"val/{k}" for k in EXPECTED_KEYS]
    assert set(prefixed.metric_state) == {f"{k}_sum_value" for k in EXPECTED_KEYS} | {
        "valid_images"}, "one state per metric and one count: nothing repeated per metric"
    state_names: list[str] = []
    for key, cls in METRIC_CLASSES.items():
        metric = cls()
        assert isinstance(metric, PerImageDepthMetric) and metric.key == key
        assert metric.higher_is_better is HIGHER_IS_BETTER[key]
        assert metric.is_differentiable is False and metric.full_state_update is False
        assert metric.plot_lower_bound == 0.0
        assert metric.plot_upper_bound == (1.0 if key.startswith("delta") else None)
        assert cls.__doc__ and ">>>" in cls.__doc__
        state_names += list(metric.metric_state)
        assert set(metric.metric_state) == {f"{key}_sum_value", f"{key}_n_images"}
    assert len(state_names) == len(set(state_names)) == 2 * len(EXPECTED_KEYS)


def test_collection_with_compute_groups_is_right() -> None:
    pred, gt, mask = random_batch(12, batch=5)
    grouped = MetricCollection({k: cls() for k, cls in METRIC_CLASSES.items()}, compute_groups=True)
    ungrouped = depth_metrics()
    for coll in (grouped, ungrouped):
        coll.update(pred[:2], gt[:2], mask[:2])
        coll.update(pred[2:], gt[2:], mask[2:])
    # unique state names: no two metrics ever share a compute group
    assert len(grouped.compute_groups) == len(EXPECTED_KEYS)
    got = {k: float(v) for k, v in grouped.compute().items()}
    want = numpy_reference(pred.numpy(), gt.numpy(), mask.numpy())
    assert_values_close(got, want)
    assert got == {k: float(v) for k, v in ungrouped.compute().items()}


def test_state_dtypes_and_reset() -> None:
    metric = METRIC_CLASSES["delta1"]()
    pred, gt, mask = random_batch(13)
    metric.update(pred.float(), gt.float(), mask)
    assert metric.sum_value.dtype == torch.float64 and metric.n_images.dtype == torch.int64
    assert int(metric.n_images) == len(gt)
    metric.reset()
    assert int(metric.n_images) == 0 and float(metric.sum_value) == 0.0


# --------------------------------------------------------------------------------------------
# DDP: two gloo processes on CPU give the single-process result
# --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(
    rank: int,
    world_size: int,
    port: int,
    shards: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]],
    out_dir: str,
) -> None:
    torch.set_num_threads(1)
    if "lo" in {name for _, name in socket.if_nameindex()}:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=timedelta(seconds=60),
    )
    try:
        metrics = depth_metrics(prefix="test/")
        for pred, gt, mask in shards[rank]:
            metrics.update(pred, gt, mask)
        local_images = {"all": int(metrics.n_images)}
        values = {k: float(v) for k, v in metrics.compute().items()}
        torch.save({"values": values, "local_images": local_images}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.cli  # two processes
def test_ddp_two_processes_equal_one_process(tmp_path: Path) -> None:
    pred, gt, mask = random_batch(21, batch=8, height=24, width=32)
    mask[4] = False  # a frame without a valid pixel, on rank 1
    shards = [
        [(pred[:3], gt[:3], mask[:3])],  # rank 0: 3 images, one batch
        [(pred[3:5], gt[3:5], mask[3:5]), (pred[5:], gt[5:], mask[5:])],  # rank 1: 5, two
    ]
    mp.spawn(_ddp_worker, args=(2, _free_port(), shards, str(tmp_path)), nprocs=2, join=True)
    single = collection_values(pred, gt, mask)
    want = numpy_reference(pred.numpy(), gt.numpy(), mask.numpy())
    for rank, local in ((0, 3), (1, 4)):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        got = {k.removeprefix("test/"): v for k, v in result["values"].items()}
        assert_values_close(got, single, atol=1e-12)
        assert_values_close(got, want)
        assert set(result["local_images"].values()) == {local}
