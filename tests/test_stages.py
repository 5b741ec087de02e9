import lightning as L
import pytest
import torch
from conftest import TEST_COARSE6_UNITS
from torch.utils.data import DataLoader

from depth_lightning.errors import CheckpointError
from depth_lightning.stages import CoarseStage, FineStage, load_checkpoint


def random_batches(n=4, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n * batch):
        depth = torch.rand(1, 55, 74, generator=g) * 5 + 0.5
        depth[:, :3] = 0
        items.append({"image": torch.randint(0, 256, (3, 228, 304), dtype=torch.uint8,
                                             generator=g), "depth": depth, "index": i})
    return DataLoader(items, batch_size=batch)


def fit(model, tmp_path, epochs=1):
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, num_sanity_val_steps=0)
    trainer.fit(model, random_batches(), random_batches(2, seed=1))
    return trainer


def groups(model):
    opt = model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    return opt, {g["name"]: g["lr"] for g in opt.param_groups}


def test_coarse_optimizer_groups_carry_the_seed_learning_rates():
    opt, lrs = groups(CoarseStage(scheduler={"name": "none"}))
    assert lrs == {"coarse1": 0.001, "coarse2": 0.001, "coarse3": 0.001, "coarse4": 0.001,
                   "coarse5": 0.001, "coarse6": 0.1, "coarse7": 0.1}
    assert isinstance(opt, torch.optim.SGD)
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    n_params = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_params == sum(p.numel() for p in CoarseStage().coarse.parameters())


@pytest.fixture(scope="module")
def coarse_ckpt(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("coarse")
    model = CoarseStage(net={"coarse6_units": TEST_COARSE6_UNITS}, scheduler={"name": "none"})
    trainer = fit(model, tmp)
    path = tmp / "coarse.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_fine_optimizer_groups_and_frozen_coarse(coarse_ckpt):
    model = FineStage(coarse_ckpt=str(coarse_ckpt), scheduler={"name": "none"})
    opt, lrs = groups(model)
    assert lrs == {"fine1": 0.001, "fine3": 0.01, "fine4": 0.001}
    assert not any(p.requires_grad for p in model.coarse.parameters())
    trained = {id(p) for g in opt.param_groups for p in g["params"]}
    assert not trained & {id(p) for p in model.coarse.parameters()}


def test_training_the_fine_stage_leaves_coarse_weights_bitwise_unchanged(coarse_ckpt, tmp_path):
    model = FineStage(coarse_ckpt=str(coarse_ckpt), scheduler={"name": "none"})
    before = {k: v.clone() for k, v in model.coarse.state_dict().items()}
    fine_before = model.fine.fine3.weight.detach().clone()
    fit(model, tmp_path)
    assert not model.coarse.training, "the frozen coarse network stays in eval mode"
    for k, v in model.coarse.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(model.fine.fine3.weight.detach(), fine_before), "fine did train"


def test_checkpoint_round_trip_with_plain_load_from_checkpoint(coarse_ckpt, tmp_path):
    coarse = CoarseStage.load_from_checkpoint(coarse_ckpt).eval()
    x = torch.randint(0, 256, (2, 3, 228, 304), dtype=torch.uint8)
    fine = FineStage(coarse_ckpt=str(coarse_ckpt), scheduler={"name": "none"})
    trainer = fit(fine, tmp_path)
    path = tmp_path / "fine.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)  # no pickled objects in it
    assert raw["depth_lightning"]["stage"] == "fine"
    reloaded = FineStage.load_from_checkpoint(path).eval()
    fine.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x), fine(x))
        torch.testing.assert_close(reloaded.coarse(reloaded.prepare(x)),
                                   coarse.coarse(coarse.prepare(x)))


def test_fine_stage_refuses_a_checkpoint_that_is_not_coarse(coarse_ckpt, tmp_path):
    fine = FineStage(coarse_ckpt=str(coarse_ckpt), scheduler={"name": "none"})
    trainer = fit(fine, tmp_path)
    path = tmp_path / "fine.ckpt"
    trainer.save_checkpoint(path)
    with pytest.raises(CheckpointError, match="fine-stage checkpoint, expected coarse"):
        FineStage(coarse_ckpt=str(path))
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        FineStage(coarse_ckpt=str(junk))
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, plain)
    with pytest.raises(CheckpointError, match="not a depth_lightning checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="does not exist"):
        FineStage(coarse_ckpt=str(tmp_path / "missing.ckpt"))


def test_frozen_coarse_runs_from_a_bf16_copy_that_matches_autocast_bitwise():
    torch.manual_seed(0)
    fine = FineStage(coarse_net={"coarse6_units": TEST_COARSE6_UNITS},
                     scheduler={"name": "none"}).eval()
    x = fine.prepare(torch.randint(0, 256, (2, 3, 228, 304), dtype=torch.uint8))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        used = fine._frozen_coarse(x)
        assert used is not fine.coarse and next(used.parameters()).dtype == torch.bfloat16
        assert torch.equal(fine.coarse_log_depth(x), fine.coarse(x))  # autocast's own casts
    with torch.no_grad():
        assert fine._frozen_coarse(x) is fine.coarse, "fp32 runs use the weights themselves"
    assert not any("copy" in k for k in fine.state_dict()), "the copy is never saved"
    # new weights loaded in place: the copy is rebuilt from them
    other = FineStage(coarse_net={"coarse6_units": TEST_COARSE6_UNITS},
                      scheduler={"name": "none"}).eval()
    fine.coarse.load_state_dict(other.coarse.state_dict())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(fine.coarse_log_depth(x), other.coarse(x))
