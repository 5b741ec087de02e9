"""KITTI on the real sample frames (skipped where they are absent): the reader, sparse depth
through the cache and the transforms, the crops and the protocols."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from nyu_files import require_shared_data
from PIL import Image

from depth_lightning.data.cache import input_frame
from depth_lightning.data.kitti import KITTI
from depth_lightning.data.kitti_layout import EIGEN_TEST_LIST, read_list
from depth_lightning.data.transforms import JointTransform
from depth_lightning.errors import DataError
from depth_lightning.evaluation.metrics import DepthMetrics
from depth_lightning.evaluation.protocols import EvalProtocol
from depth_lightning.evaluation.scoring import update_metrics
from depth_lightning.geometry import KITTI as KITTI_CHAIN

DRIVE = "2011_09_26_drive_0023_sync"


@pytest.fixture(scope="module")
def samples() -> Path:
    return require_shared_data() / "kitti_samples"


@pytest.fixture(scope="module")
def kitti(samples) -> KITTI:
    return KITTI(samples)


def test_the_reader_finds_both_cameras_and_their_calibration(kitti):
    assert len(kitti) == 14
    assert {n.split()[2] for n in kitti.names} == {"l", "r"}
    assert set(kitti.scenes) == {DRIVE}
    f = kitti[0]
    assert f["image"].shape == (375, 1242, 3) and f["depth"].shape == (375, 1242)
    assert f["intrinsics"] == pytest.approx((721.5377, 721.5377, 609.5593, 172.854))


def test_depth_is_the_png_over_256_on_valid_pixels_and_0_elsewhere(kitti, samples):
    for i in (0, 9):
        f = kitti[i]
        day_drive, frame, side = f["name"].split()
        camera = "image_02" if side == "l" else "image_03"
        png = samples / "depth" / "train" / DRIVE / "proj_depth" / "velodyne_raw" / camera / \
            f"{frame}.png"
        raw = np.asarray(Image.open(png)).astype(np.int64)
        valid = raw > 0
        assert np.array_equal(f["depth"][valid], (raw[valid] / 256.0).astype(np.float32))
        assert (f["depth"][~valid] == 0).all()
        assert 0.02 < valid.mean() < 0.08  # single-scan LiDAR: about 4 % of pixels


def test_the_cache_level_keeps_measurements_and_invents_none(kitti):
    f = kitti[3]
    _, depth, _, bad = input_frame(f, KITTI_CHAIN, sparse=True)
    assert depth.shape == KITTI_CHAIN.input_frame and bad == 0
    measured = set(np.unique(f["depth"][f["depth"] > 0]).tolist())
    kept = depth[depth > 0]
    assert set(np.unique(kept).tolist()) <= measured  # every value is a measured one
    # At half resolution nearly every 2x2 block with a measurement keeps one.
    blocks = (f["depth"][:374, :1242] > 0).reshape(187, 2, 621, 2).any(axis=(1, 3))
    assert (depth[:187] > 0).sum() == blocks.sum()


def test_each_kept_measurement_moved_by_less_than_the_resampling_step(kitti):
    f = kitti[5]
    _, depth, _, _ = input_frame(f, KITTI_CHAIN, sparse=True)
    sy = f["depth"].shape[0] / depth.shape[0]
    sx = f["depth"].shape[1] / depth.shape[1]
    for r, c in zip(*np.nonzero(depth)):
        rows = slice(int(np.floor(r * sy)), int(np.ceil((r + 1) * sy)))
        cols = slice(int(np.floor(c * sx)), int(np.ceil((c + 1) * sx)))
        assert depth[r, c] in f["depth"][rows, cols]


def test_an_augmented_training_target_holds_only_measured_depths(kitti):
    from depth_lightning.data.transforms import Augment

    f = kitti[2]
    image, depth, _, _ = input_frame(f, KITTI_CHAIN, sparse=True)
    t = JointTransform(True, Augment(flip=True, rotate=5.0), KITTI_CHAIN, sparse=True)
    img, target = t(image, depth, torch.Generator().manual_seed(3))
    assert tuple(img.shape) == (3, 172, 576) and tuple(target.shape) == (1, 27, 142)
    values = target[target > 0].numpy()
    assert values.size > 0.3 * target.numel()  # a sparse map still fills most target cells
    assert np.isin(values, np.unique(depth[depth > 0])).all()


def test_the_validation_crop_is_the_networks_crop_to_the_pixel(kitti):
    from depth_lightning.geometry import crop_input

    image, depth, _, _ = input_frame(kitti[1], KITTI_CHAIN, sparse=True)
    img, _ = JointTransform(False, geometry=KITTI_CHAIN, sparse=True)(image, depth)
    assert torch.equal(img, crop_input(torch.from_numpy(image).permute(2, 0, 1), KITTI_CHAIN))


def test_pixel_crops_are_checked_on_each_frames_size_and_scalars_refused():
    p = EvalProtocol.from_config({"name": "k", "crop": [153, 371, 44, 1197]})
    assert p.region_for((375, 1242), KITTI_CHAIN) == (153, 371, 44, 1197)
    with pytest.raises(Exception, match="eval.crop: .* not inside a 240x320 frame"):
        p.region_for((240, 320), KITTI_CHAIN)
    with pytest.raises(Exception, match="eval.crop: must be network"):
        EvalProtocol.from_config({"name": "k", "crop": 5})


def test_least_squares_alignment_of_a_constant_gives_the_mean_depth():
    p = EvalProtocol.from_config({"name": "l", "crop": None, "align": "lstsq"})
    gt = torch.tensor([[[2.0, 4.0], [6.0, 0.0]]])
    out = p.finish(torch.full((1, 2, 2), 3.0), gt, gt > 0)
    assert torch.allclose(out, torch.full((1, 2, 2), 4.0))
    scaled = p.finish(gt * 2 + 1, gt, gt > 0)  # an affine copy is aligned back exactly
    assert torch.allclose(scaled[gt > 0], gt[gt > 0])


def test_the_crops_pixel_boxes_are_the_published_fractions():
    garg = EvalProtocol.from_config({"name": "g", "crop": "garg", "upsample": "bilinear"})
    eigen = EvalProtocol.from_config({"name": "e", "crop": "kitti_eigen"})
    h, w = 375, 1242
    assert garg.region_for((h, w), KITTI_CHAIN) == (
        int(0.40810811 * h), int(0.99189189 * h), int(0.03594771 * w), int(0.96405229 * w))
    assert eigen.region_for((h, w), KITTI_CHAIN) == (
        int(0.3324324 * h), int(0.91351351 * h), int(0.03594771 * w), int(0.96405229 * w))
    assert garg.region_for((h, w), KITTI_CHAIN) == (153, 371, 44, 1197)


def _score(protocol: EvalProtocol, pred_full: torch.Tensor, gt: torch.Tensor) -> dict:
    """Score a prediction already at the ground truth's size as the protocol does (aligned,
    clamped, on its region and caps)."""
    m = DepthMetrics(min_depth=protocol.min_depth, max_depth=protocol.max_depth)
    mask = protocol.valid_mask(gt, KITTI_CHAIN)
    pred = protocol.finish(pred_full, gt, mask)
    m.update(pred, gt, mask)
    return {k: float(v) for k, v in m.compute().items()}


@pytest.mark.parametrize("name", ["kitti_garg", "kitti_eigen"])
def test_a_prediction_equal_to_the_ground_truth_scores_0_error(kitti, name):
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(__file__).parents[1] / "depth_lightning" / "conf" / "eval" /
                         f"{name}.yaml")
    protocol = EvalProtocol.from_config(OmegaConf.to_container(cfg))
    gt = torch.from_numpy(np.stack([kitti[i]["depth"] for i in (0, 1)]))
    s = _score(protocol, gt.clone(), gt)
    assert s["abs_rel"] == 0 and s["rmse"] == 0 and s["si_rmse_log"] == pytest.approx(0, abs=1e-6)
    assert s["delta1"] == 1


@pytest.mark.parametrize("factor", [0.37, 1.0, 4.2])
def test_median_alignment_makes_any_scale_score_like_the_unscaled_prediction(kitti, factor):
    protocol = EvalProtocol.from_config({"name": "m", "crop": "garg", "max_depth": 80.0,
                                         "align": "median"})
    gt = torch.from_numpy(kitti[4]["depth"])[None]
    rng = np.random.default_rng(0)
    pred = gt.clone()
    pred[gt > 0] *= torch.from_numpy(rng.uniform(0.8, 1.25, int((gt > 0).sum()))).float()
    base = _score(protocol, pred, gt)
    scaled = _score(protocol, pred * factor, gt)
    for key in ("abs_rel", "rmse", "si_rmse_log", "delta1"):
        assert scaled[key] == pytest.approx(base[key], rel=1e-5, abs=1e-6)


def test_protocols_score_through_the_scoring_path_at_each_frames_size(kitti):
    protocol = EvalProtocol.from_config({"name": "g", "crop": "garg", "max_depth": 80.0,
                                         "upsample": "bilinear", "clamp": True})
    gt = torch.from_numpy(kitti[0]["depth"])[None]
    pred = torch.full((1, 1, *KITTI_CHAIN.output), 10.0)
    metrics = {"x": DepthMetrics(min_depth=1e-3, max_depth=80.0)}
    update_metrics(metrics, {"x": pred}, {"depth": gt}, protocol, KITTI_CHAIN)
    got = {k: float(v) for k, v in metrics["x"].compute().items()}
    top, bottom, left, right = protocol.region_for((375, 1242), KITTI_CHAIN)
    g = gt[0, top:bottom, left:right].numpy()
    v = g[(g > 1e-3) & (g < 80)]
    assert got["abs_rel"] == pytest.approx(np.mean(np.abs(10.0 - v) / v), rel=1e-5)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((10.0 - v) ** 2)), rel=1e-5)


def test_the_eigen_split_list_has_its_697_frames_of_28_drives():
    keys = read_list(EIGEN_TEST_LIST, "eigen")
    assert len(keys) == len(set(keys)) == 697
    assert len({k.split()[0] for k in keys}) == 28
    assert keys[0] == "2011_09_26/2011_09_26_drive_0002_sync 0000000069 l"


def test_splits_of_the_samples(kitti, tmp_path):
    tr, va = kitti.auto_split({"seed": 0, "val_fraction": 0.2})  # no Eigen test frame here
    assert (len(tr), len(va)) == (12, 2) and not set(tr) & set(va)
    moments = [{n.split()[1] for n in (kitti.names[i] for i in part)} for part in (tr, va)]
    assert not moments[0] & moments[1]  # both cameras of a moment on one side
    tr, va = kitti.benchmark_split()
    assert len(tr) == 14 and len(va) == 0
    listed = tmp_path / "test.txt"
    listed.write_text(f"2011_09_26/{DRIVE} 3 l\n2011_09_26/{DRIVE} 0000000004 r\n")
    own = KITTI(kitti.root, test_file=str(listed))
    tr, va = own.eigen_split()
    assert [own.names[i] for i in va] == [f"2011_09_26/{DRIVE} 0000000003 l",
                                          f"2011_09_26/{DRIVE} 0000000004 r"]
    assert len(tr) == 0  # every sample frame is of the test drive


def _copy_samples(samples: Path, dest: Path) -> Path:
    shutil.copytree(samples / "raw", dest / "raw")
    shutil.copytree(samples / "depth", dest / "depth")
    return dest


def test_bad_kitti_files_are_refused_in_one_line(samples, tmp_path):
    root = _copy_samples(samples, tmp_path / "k")
    depth = root / "depth" / "train" / DRIVE / "proj_depth" / "velodyne_raw" / "image_02"
    png = depth / "0000000002.png"
    original = png.read_bytes()
    Image.fromarray(np.zeros((300, 1000), np.uint16)).save(png)
    with pytest.raises(DataError, match=r"0000000002.png: depth map is 1000x300 .* 1242x375"):
        KITTI(root)
    Image.fromarray(np.zeros((375, 1242), np.uint8)).save(png)
    with pytest.raises(DataError, match=r"mode L; KITTI depth maps are 16-bit"):
        KITTI(root)
    png.write_bytes(original)
    listed = tmp_path / "missing.txt"
    listed.write_text(f"2011_09_26/{DRIVE} 0000000099 l\n")
    with pytest.raises(DataError, match=r"data.split.test_file: 1 of the 1 frames .* 0000000099"):
        KITTI(root, test_file=str(listed)).eigen_split()
    (root / "raw" / "2011_09_26" / "calib_cam_to_cam.txt").unlink()
    with pytest.raises(DataError, match=r"calib_cam_to_cam.txt: calibration file not found"):
        KITTI(root)


@pytest.fixture(scope="module")
def kitti_run(samples, tmp_path_factory):
    """`train +experiment=kitti` on the samples (one batch per stage), its checkpoint scored
    under both crops."""
    from conftest import run_job

    work = tmp_path_factory.mktemp("kitti_run")
    common = [f"paths.log_dir={work}/out", f"paths.data_dir={work}/data", "data.num_workers=0"]
    train = run_job("train", "+experiment=kitti", f"data.root={samples}", "debug=fdr",
                    "coarse_stage.model.net.coarse6_units=64", *common, cwd=work)
    assert train.returncode == 0, train.stderr[-2000:]
    (ckpt,) = (work / "out").rglob("fine/checkpoints/*.ckpt")
    return work, ckpt, common


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["kitti_garg", "kitti_eigen"])
def test_a_kitti_run_is_scored_under_both_crops(kitti_run, protocol):
    from conftest import run_job

    work, ckpt, common = kitti_run
    result = run_job("evaluate", f"ckpt_path={ckpt}", f"eval={protocol}", "figure.n=2", *common,
                     cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"{protocol}: depths, bilinear upsampling at each frame's size" in result.stdout
    assert "clamped to the caps" in result.stdout
    import json

    (metrics,) = sorted((work / "out" / "evaluate").rglob("metrics.json"))[-1:]
    scores = json.loads(metrics.read_text())
    assert set(scores) >= {"coarse", "fine", "constant"}
    assert all(0 < scores[c]["abs_rel"] < 10 for c in scores)


@pytest.mark.slow
def test_predict_takes_kitti_photos_and_writes_the_calibrations_point_cloud(kitti_run, samples):
    from conftest import run_job

    work, ckpt, common = kitti_run
    photo = samples / "raw" / "2011_09_26" / DRIVE / "image_02" / "data" / "0000000003.png"
    calib = samples / "raw" / "2011_09_26" / "calib_cam_to_cam.txt"
    out = work / "pred"
    result = run_job("predict", f"ckpt_path={ckpt}", f"input={photo}", f"output_dir={out}",
                     "pointcloud=true", f"calib={calib}", "viz=false", common[0], cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    depth = np.load(out / "0000000003_depth.npy")
    assert depth.shape == (375, 1242)
    header = (out / "0000000003.ply").read_bytes()[:400].decode("latin-1")
    assert f"element vertex {375 * 1242}" in header
    from depth_lightning.inference.pointcloud import backproject

    points, _ = backproject(depth, (721.5377, 721.5377, 609.5593, 172.854))
    body = np.frombuffer((out / "0000000003.ply").read_bytes()[header.index("end_header") + 11:],
                         dtype=np.dtype([("xyz", "<f4", 3), ("rgb", "u1", 3)]))
    assert np.allclose(body["xyz"], points)


def test_the_data_module_batches_kitti_at_its_chains_sizes(samples, tmp_path):
    from conftest import compose

    from depth_lightning.core.plugins import build

    cfg = compose("train", "+experiment=kitti", f"data.root={samples}",
                  f"paths.data_dir={tmp_path}", "data.num_workers=0", "data.batch_size=4")
    dm = build(cfg.data, "data")
    dm.setup("fit")
    assert (len(dm.train_idx), len(dm.val_idx)) == (12, 2)  # auto: no Eigen test frame here
    batch = next(iter(dm.train_dataloader()))
    assert tuple(batch["image"].shape) == (4, 3, 172, 576)
    assert tuple(batch["depth"].shape) == (4, 1, 27, 142)
    targets = dm.eval_targets(dm.val_idx)
    for t, i in zip(targets, dm.val_idx):
        measured = dm.source[int(i)]["depth"]
        assert np.isin(t[t > 0].numpy(), measured[measured > 0]).all()
        assert (t > 0).float().mean() > 0.5  # a sparse map still fills most target cells
