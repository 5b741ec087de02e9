"""The issue-12 plug-ins end to end: +experiment=adversarial, +experiment=unet and each new loss
through the train command (fast_dev_run), and the adversarial stage's checkpoints with the
existing loaders and with resume=RUN_DIR."""

import json
from pathlib import Path

import pytest
import torch
from conftest import (
    SMALL_FRAMES,
    TEST_COARSE6_UNITS,
    assert_one_line_error,
    compose,
    run_job,
    run_module,
    small_run_args,
)
from omegaconf import OmegaConf

from depth_lightning.core.plugins import build
from depth_lightning.models import FineStage
from depth_lightning.models.adversarial import AdversarialStage
from depth_lightning.models.checkpoints import load_checkpoint, load_stage
from depth_lightning.nets.discriminator import PatchDiscriminator


def the_run(out: Path) -> Path:
    (run,) = sorted((out / "train" / "runs").iterdir())
    return run


def best_of(run: Path, stage: str) -> Path:
    """The checkpoint a finished stage recorded (fast_dev_run: its last)."""
    return Path(json.loads((run / stage / "stage.json").read_text())["best"])


def one_stage_args(data: Path, out: Path) -> list[str]:
    """small_run_args without the coarse network's width (a network that has none)."""
    return [a for a in small_run_args(data, out) if ".net.coarse6_units=" not in a]


@pytest.mark.slow
def test_fast_dev_run_of_unet(synth_data_dir, tmp_path):
    out = tmp_path / "out"
    res = run_module("depth_lightning.train", "+experiment=unet", "++trainer.fast_dev_run=true",
                     *one_stage_args(synth_data_dir, out), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = the_run(out)
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"mean", "unet"} and metrics["unet"]["si_rmse_log"] > 0
    stage = load_stage(best_of(run, "unet"))
    assert stage.columns == ("unet",) and type(stage.net).__name__ == "UNetResNet18"
    # the comparison's edge table and frame figure, on this one run
    res = run_module("depth_lightning.compare_edges", str(out / "train" / "runs"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    edges = json.loads((run / "edges.json").read_text())
    assert edges["stage"] == "unet" and 0 <= edges["edge_recall"] <= 1
    assert "| unet |" in (out / "train" / "runs" / "edges.md").read_text()
    assert (out / "train" / "runs" / "frames.png").read_bytes()[:4] == b"\x89PNG"
    res = run_module("depth_lightning.compare_edges", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert_one_line_error(res, "dir", "nowhere")


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["gradient_matching", "berhu", "log_l1", "log_l2"])
def test_fast_dev_run_of_each_new_loss(loss, synth_data_dir, tmp_path):
    out = tmp_path / "out"
    res = run_job("train", "+experiment=coarse", f"+model/loss={loss}",
                     "++trainer.fast_dev_run=true", *small_run_args(synth_data_dir, out),
                     cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = the_run(out)
    assert json.loads((run / "metrics.json").read_text())["coarse"]["si_rmse_log"] > 0
    saved = OmegaConf.load(run / "config.yaml")
    assert saved.model.loss._target_.split(".")[-1] in (
        "GradientMatchingLoss", "BerHuLoss", "LogL1Loss", "ScaleInvariantLoss")


@pytest.mark.slow
def test_fast_dev_run_of_adversarial_and_its_checkpoint(synth_data_dir, tmp_path):
    out = tmp_path / "out"
    res = run_job("train", "+experiment=adversarial",
                     "++trainer.fast_dev_run=true",
                     *small_run_args(synth_data_dir, out, two_stage=True), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = the_run(out)
    assert set(json.loads((run / "metrics.json").read_text())) == {"mean", "coarse", "fine"}
    path = best_of(run, "fine")
    ckpt = load_checkpoint(path, "fine")
    # a plain stage's hyper-parameters and weights; D and its Adam beside them
    assert not any(k.startswith("disc.") for k in ckpt["state_dict"])
    assert ckpt["adversarial"]["settings"]["loss"] == "hinge"
    assert any(k.endswith("original") for k in ckpt["adversarial"]["disc"])
    assert len(ckpt["optimizer_states"]) == 2
    assert "exp_avg" in next(iter(ckpt["optimizer_states"][1]["state"].values()))
    fine = load_stage(path)  # the existing loader reads it as a plain FineStage
    assert type(fine) is FineStage and fine.columns == ("coarse", "fine")
    # a fine stage on a given coarse checkpoint, as for +experiment=fine
    res = run_job("train", "+experiment=adversarial",
                     "++trainer.fast_dev_run=true",
                     f"model.coarse_ckpt={best_of(run, 'coarse')}",
                     *small_run_args(synth_data_dir, out, two_stage=True), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]


@pytest.mark.slow
def test_adversarial_resume_run_dir_equals_the_uninterrupted_run(synth_data_dir, tmp_path):
    """A run stopped after the first adversarial epoch continues with resume=RUN_DIR (D's
    weights and Adam state come back from the checkpoint) and should end with the metrics of
    the run never stopped. The stop is made by hand: the first leg's
    fine stage is given one epoch, then its saved config two and its stage record removed."""
    args = ["+experiment=adversarial", "seed=1", "deterministic=true",
            "coarse_stage.max_epochs=1", "model.scheduler.name=none",
            "callbacks.depth_panels=null", "callbacks.epoch_table.plot_every=0",
            *small_run_args(synth_data_dir, tmp_path / "x", two_stage=True)[2:],
            f"paths.data_dir={synth_data_dir}"]
    ref_out, cut_out = tmp_path / "ref", tmp_path / "cut"
    for out, epochs in ((ref_out, 2), (cut_out, 1)):
        res = run_module("depth_lightning.train", *args, f"trainer.max_epochs={epochs}",
                         f"paths.log_dir={out}", cwd=tmp_path)
        assert res.returncode == 0, res.stderr[-3000:]
    run = the_run(cut_out)
    saved = run / ".hydra" / "config.yaml"
    cfg = OmegaConf.load(saved)
    assert cfg.trainer.max_epochs == 1
    cfg.trainer.max_epochs = 2  # the fine stage's epochs (coarse_stage.max_epochs stays 1)
    OmegaConf.save(cfg, saved)
    (run / "fine" / "stage.json").unlink()
    (run / "metrics.json").unlink()  # a finished run is not resumed
    res = run_module("depth_lightning.train", f"resume={run}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    want = json.loads((the_run(ref_out) / "metrics.json").read_text())
    got = json.loads((run / "metrics.json").read_text())
    rows = (run / "fine" / "epochs.csv").read_text().splitlines()
    assert len(rows) == 3 and "lr/disc" in rows[0]  # the second epoch was trained on resume
    assert got["coarse"] == want["coarse"]
    assert got["fine"] == want["fine"]  # D and its Adam state came back exactly


@pytest.mark.parametrize("setting, value", [("loss", "wasserstein"), ("centre", "maybe"),
                                            ("depth_gain", "-1")])
def test_bad_adversarial_setting_is_one_line(setting, value, synth_data_dir, tmp_path):
    res = run_job("train", "+experiment=adversarial",
                     f"model.adversarial.{setting}={value}",
                     *small_run_args(synth_data_dir, tmp_path / "out", two_stage=True),
                     cwd=tmp_path)
    assert_one_line_error(res, f"model.adversarial.{setting}", value)


def _adversarial_module(**adversarial) -> AdversarialStage:
    cfg = compose("train", "+experiment=adversarial",
                  f"coarse_stage.model.net.coarse6_units={TEST_COARSE6_UNITS}")
    model = OmegaConf.to_container(cfg.model, resolve=True)
    model.pop("coarse_ckpt")
    model["adversarial"].update(adversarial)
    coarse = OmegaConf.to_container(cfg.coarse_stage.model.net, resolve=True)
    return build(model, "model", name="fine", base=[{"name": "coarse", "net": coarse}])


@pytest.mark.parametrize("kind", ["hinge", "non_saturating"])
def test_a_training_step_moves_both_networks(kind, synth_data_dir):
    import lightning as L
    from conftest import data_module

    module = _adversarial_module(loss=kind, d_steps=2)
    module.hparams.clip_grad_norm = 1.0  # the per-stage clipping runs in manual optimisation too
    dm = data_module(synth_data_dir, "data.batch_size=4")
    before_g = module.net.fine4.weight.detach().clone()
    before_d = [p.detach().clone() for p in module.disc.parameters()]
    trainer = L.Trainer(max_steps=6, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, accelerator="cpu",
                        enable_model_summary=False)
    trainer.fit(module, datamodule=dm)
    # manual optimisation counts every optimiser step: 2 batches of 2 D steps + 1 G step
    assert trainer.global_step == 6
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 2
    assert not torch.equal(before_g, module.net.fine4.weight)
    assert all(not torch.equal(a, b) for a, b in zip(before_d, module.disc.parameters()))
    m = trainer.callback_metrics
    for key in ("train/d_loss", "train/g_adv", "train/d_acc_real", "train/d_acc_fake"):
        assert torch.isfinite(m[key]), key
    assert 0 <= float(m["train/d_acc_real"]) <= 1
    balanced = (float(m["train/d_acc_real"]) + float(m["train/d_acc_fake"])) / 2
    assert float(m["train/d_acc"]) == pytest.approx(balanced)
    assert not any(p.requires_grad is False for p in module.disc.parameters())


def test_discriminator_judges_patches_and_is_spectrally_normalised():
    disc = PatchDiscriminator(width=8)
    out = disc(torch.randn(2, 3, 55, 74), torch.randn(2, 1, 55, 74))
    assert out.shape == (2, 1, 11, 16)
    conv = disc.layers[0]
    sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
    for _ in range(20):  # power iteration converges in training mode
        disc(torch.randn(1, 3, 55, 74), torch.randn(1, 1, 55, 74))
    sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
    assert float(sigma) == pytest.approx(1.0, rel=0.05)


def test_small_frames_constant_is_what_the_runs_use():
    assert SMALL_FRAMES == 24  # the tiny runs above assume the shared 24-frame file


def test_discriminator_sees_shape_not_global_scale():
    """With `centre`, D's view of a depth map does not change when the map is multiplied by a
    constant (a shift of its log); `depth_gain` scales what it sees; holes stay zero."""
    module = _adversarial_module(noise=0.0, width=8)
    module.disc.eval()
    rgb = torch.randn(2, 3, 55, 74)
    log_depth = torch.randn(2, 1, 55, 74) * 0.3 + 1.0
    mask = torch.rand(2, 1, 55, 74) > 0.2
    seen = []
    module.disc.forward = lambda rgb, d: seen.append(d) or d.mean((1, 2, 3))
    module._judge(rgb, log_depth, mask)
    module._judge(rgb, log_depth + torch.log(torch.tensor(2.0)), mask)
    assert torch.allclose(seen[0], seen[1], atol=1e-5)
    assert bool((seen[0][~mask] == 0).all())
    # by hand: (log depth - its mean over the valid pixels) x 4 on the valid pixels
    m = mask.float()
    mean = (log_depth * m).sum((1, 2, 3), keepdim=True) / m.sum((1, 2, 3), keepdim=True)
    assert torch.allclose(seen[0], torch.where(mask, (log_depth - mean) * 4.0, 0.0), atol=1e-5)
    module.adversarial.update(centre=False, depth_gain=1.0)
    module._judge(rgb, log_depth, mask)
    assert torch.equal(seen[2], torch.where(mask, log_depth, 0.0))
