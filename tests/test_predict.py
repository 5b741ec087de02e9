"""The predict command: photos of any size and mode in, depth PNG / npy / figure out."""

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import run_job
from fixtures_runs import tiny_run  # noqa: F401
from PIL import Image

from depth_lightning.inference.predict import list_inputs, output_names
from depth_lightning.inference.predictor import depth_to_photo, load_photo, prepare_photo


def make_photos(folder: Path) -> dict[str, tuple[int, int]]:
    """An RGB png, a grayscale jpg and an RGBA png of different sizes, plus two files that are
    not images (one of them named .png). Returns NAME -> (H, W) of the images."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:420]
    rgb = np.dstack([xx % 256, yy % 256, (xx + yy) % 256]).astype(np.uint8)
    Image.fromarray(rgb).save(folder / "room.png")
    gray = rng.integers(0, 256, (161, 250), dtype=np.uint8)
    Image.fromarray(gray, "L").save(folder / "hall.jpg")
    rgba = np.dstack([rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
                      np.full((480, 640), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(folder / "kitchen.png")
    (folder / "notes.png").write_text("this is text, not a picture\n")
    (folder / "README.txt").write_text("photos for the test\n")
    return {"room": (300, 420), "hall": (161, 250), "kitchen": (480, 640)}


def test_photos_of_any_mode_become_the_network_input(tmp_path):
    sizes = make_photos(tmp_path / "in")
    for name, ext in (("room", "png"), ("hall", "jpg"), ("kitchen", "png")):
        photo = load_photo(tmp_path / "in" / f"{name}.{ext}")
        assert photo.dtype == np.uint8 and photo.shape == (*sizes[name], 3)
        x = prepare_photo(photo)
        assert x.dtype == torch.uint8 and x.shape == (3, 228, 304)
    for bad in ("notes.png", "README.txt"):
        with pytest.raises(ValueError):
            load_photo(tmp_path / "in" / bad)


def test_a_640x480_photo_is_prepared_exactly_like_an_evaluation_frame():
    from depth_lightning.data.cache import input_frame
    from depth_lightning.geometry import crop_input

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    frame = {"image": image, "depth": np.ones((480, 640), np.float32)}
    cached = torch.from_numpy(input_frame(frame)[0]).permute(2, 0, 1)  # as training sees it
    assert torch.equal(prepare_photo(image), crop_input(cached))


def test_prediction_is_brought_back_to_the_photo_size():
    depth = depth_to_photo(torch.linspace(1, 5, 74).expand(1, 55, 74), (333, 401))
    assert depth.dtype == np.float32 and depth.shape == (333, 401)
    assert depth.min() >= 1 - 1e-5 and depth.max() <= 5 + 1e-5
    assert np.all(np.diff(depth[160]) >= -1e-6)  # the ramp survives, edges replicated
    assert depth[:, 0].std() < 1e-6 and depth[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_inputs_and_names(tmp_path):
    make_photos(tmp_path / "in")
    assert [p.name for p in list_inputs(str(tmp_path / "in"))] == sorted(
        ["room.png", "hall.jpg", "kitchen.png", "notes.png", "README.txt"])
    assert [p.name for p in list_inputs(str(tmp_path / "in" / "*.png"))] == [
        "kitchen.png", "notes.png", "room.png"]
    assert output_names([Path("a/x.jpg"), Path("a/x.png"), Path("b/y.png")]) == [
        "x.jpg", "x.png", "y"]
    from depth_lightning.errors import DepthLightningError

    with pytest.raises(DepthLightningError, match="does not exist"):
        list_inputs(str(tmp_path / "nothing"))
    with pytest.raises(DepthLightningError, match="no files match"):
        list_inputs(str(tmp_path / "in" / "*.tiff"))


def test_predict_folder_end_to_end(tiny_run, tmp_path):  # noqa: F811
    sizes = make_photos(tmp_path / "photos")
    res = run_job("predict", f"ckpt_path={tiny_run.fine_ckpt}",
                     "input=photos", "output_dir=preds", "batch_size=2",
                     f"paths.log_dir={tmp_path / 'outputs'}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    skipped = [ln for ln in res.stderr.splitlines() if ln.startswith("skipped ")]
    assert len(skipped) == 2, res.stderr
    assert any("notes.png: not an image" in ln for ln in skipped)
    assert any("README.txt: not an image" in ln for ln in skipped)
    assert "wrote 3 depth map(s) (coarse+fine)" in res.stdout
    out = tmp_path / "preds"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{n}{s}" for n in sizes for s in ("_depth.png", "_depth.npy", "_viz.png"))
    for name, hw in sizes.items():
        with Image.open(out / f"{name}_depth.png") as im:
            mm = np.asarray(im)
        metres = np.load(out / f"{name}_depth.npy")
        assert mm.shape == hw and metres.shape == hw
        assert mm.dtype == np.uint16 and metres.dtype == np.float32
        assert np.abs(mm / 1000.0 - metres).max() <= 1e-3  # within 1 mm
        assert metres.min() > 0 and np.isfinite(metres).all()
        with Image.open(out / f"{name}_viz.png") as im:
            assert im.width > 2 * im.height * 0.9 and im.width > 400  # photo beside depth


class Payload:
    """Stands for code pickled into a checkpoint."""


def test_predict_refuses_a_checkpoint_with_pickled_code(tmp_path):
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"depth_lightning": {"stage": "coarse"}, "x": Payload()}, ckpt)
    (tmp_path / "photo.png").write_bytes(b"")  # never reached
    res = run_job("predict", f"ckpt_path={ckpt}", "input=photo.png",
                     "output_dir=preds", f"paths.log_dir={tmp_path / 'outputs'}", cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-3000:]
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr[-3000:]
    assert "ckpt_path" in lines[0] and "evil.ckpt" in lines[0] and "pickled code" in lines[0]
    assert not (tmp_path / "preds").exists()
    assert not list((tmp_path / "outputs").glob("predict/runs/*"))


def test_predict_with_no_image_at_all_fails_with_one_message(tiny_run, tmp_path,  # noqa: F811
                                                             monkeypatch):
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from depth_lightning.errors import DepthLightningError
    from depth_lightning.inference.predict import run

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    (folder / "b.txt").write_text("text")
    monkeypatch.chdir(tmp_path)
    GlobalHydra.instance().clear()
    with initialize_config_module("depth_lightning.conf", version_base="1.3"):
        cfg = compose("predict", overrides=[f"ckpt_path={tiny_run.coarse_ckpt}", "input=docs",
                                            "output_dir=preds", f"paths.output_dir={tmp_path}"])
    with pytest.raises(DepthLightningError, match="none of the 2 file"):
        run(cfg)
    assert not (tmp_path / "preds").exists()
