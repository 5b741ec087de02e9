"""Runs that survive: exact resume in place after kill -9 and SIGTERM, crash-safe checkpoints,
last.ckpt as the newest epoch and best.ckpt as a link to it."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import SMALL_FRAMES, data_module, run_module

from depth_lightning.io import DiskFullError
from depth_lightning.resume import AtomicCheckpointIO, link_or_copy

RUN = ["+experiment=fine", "seed=1", "deterministic=true", "coarse_stage.max_epochs=2",
       "trainer.max_epochs=2", "data.batch_size=4", "data.eval_batch_size=8",
       f"data.source.frames={SMALL_FRAMES}", "callbacks.progress_bar=null",
       "coarse_stage.model.net.coarse6_units=64"]


def start(tmp: Path, data: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "depth_lightning.train", *RUN,
                             f"paths.data_dir={data}", f"paths.log_dir={tmp / 'out'}"],
                            cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def the_run(tmp: Path) -> Path:
    (run,) = (tmp / "out" / "train" / "runs").iterdir()
    return run


def wait_for(path_glob: Path, pattern: str, proc: subprocess.Popen, timeout: float = 600):
    end = time.time() + timeout
    while not list(path_glob.glob(pattern)):
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.time() < end, "timed out"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def reference(synth_data_dir, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("reference")
    proc = start(tmp, synth_data_dir)
    proc.communicate(timeout=900)
    assert proc.returncode == 0
    return json.loads((the_run(tmp) / "metrics.json").read_text())


def stop_and_resume(tmp: Path, data: Path, stage: str, signum: int) -> tuple[int, str, Path]:
    proc = start(tmp, data)
    wait_for(tmp / "out", f"train/runs/*/{stage}/checkpoints/last.ckpt", proc)
    time.sleep(2)  # into the next epoch
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=600)
    run = the_run(tmp)
    res = run_module("depth_lightning.train", f"resume={run}", cwd=tmp)
    assert res.returncode == 0, res.stderr[-3000:]
    return proc.returncode, err, run


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "signum"), [("coarse", signal.SIGKILL),
                                               ("fine", signal.SIGTERM)], ids=["kill9", "term"])
def test_a_stopped_run_resumes_in_place_to_the_same_metrics(stage, signum, reference,
                                                            synth_data_dir, tmp_path):
    code, err, run = stop_and_resume(tmp_path, synth_data_dir, stage, signum)
    assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 143)
    if signum == signal.SIGTERM:
        assert f"resume with: python -m depth_lightning.train resume={run}" in err
    assert [p.name for p in (tmp_path / "out" / "train" / "runs").iterdir()] == [run.name]
    assert json.loads((run / "metrics.json").read_text()) == reference
    rows = (run / stage / "epochs.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"], "epochs.csv continued in place"
    assert (run / ".hydra" / "config.yaml").is_file() and list((run / ".hydra").glob("resume-*"))


def test_a_full_disk_while_saving_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "best.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.zeros(10)}, path)
    good = path.read_bytes()

    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(DiskFullError) as info:
        io.save_checkpoint({"w": torch.zeros(1_000_000)}, path)
    assert str(info.value).startswith(f"{path}: no space left on the device (4.0 MB needed")
    assert path.read_bytes() == good and sorted(tmp_path.iterdir()) == [path]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 3 MB tmpfs (needs root and mount; skipped elsewhere)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_a_real_full_disk_ends_in_one_error_and_keeps_the_good_checkpoint(small_tmpfs):
    # torch's zip writer reports ENOSPC as a RuntimeError ("unexpected pos"): still a full disk
    path = small_tmpfs / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"w": torch.ones(250_000)}, path)  # 1 MB
    with pytest.raises(DiskFullError, match=r"last.ckpt: no space left on the device \(4.0 MB "
                                            r"needed, [0-9.]+ MB free\)"):
        io.save_checkpoint({"w": torch.zeros(1_000_000)}, path)
    assert sorted(small_tmpfs.iterdir()) == [path]
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(250_000))


def test_best_is_a_link_to_the_newest_epoch(tmp_path):
    last, best = tmp_path / "last.ckpt", tmp_path / "best.ckpt"
    last.write_bytes(b"epoch 3")
    link_or_copy(last, best)
    assert best.read_bytes() == b"epoch 3" and best.stat().st_ino == last.stat().st_ino
    tmp = tmp_path / ".last.ckpt.new"
    tmp.write_bytes(b"epoch 4")
    os.replace(tmp, last)  # how every checkpoint is written: the best stays epoch 3
    assert best.read_bytes() == b"epoch 3" and last.read_bytes() == b"epoch 4"


def test_the_training_loader_continues_where_a_checkpoint_stopped(synth_data_dir):
    dm = data_module(synth_data_dir, "data.batch_size=4")
    dm.setup("fit")
    whole = [b["index"].tolist() for b in dm.train_dataloader()]
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    epoch1 = [b["index"].tolist() for b in loader]
    assert epoch1 != whole and sorted(sum(epoch1, [])) == sorted(sum(whole, []))
    dm.setup("fit")  # a new fit, then a checkpoint saying: epoch 1, 2 batches done
    dm.resume_at(1, 2)
    assert [b["index"].tolist() for b in dm.train_dataloader()] == epoch1[2:]
    dm.setup("fit")
    dm.resume_at(0, len(whole))  # saved at the end of epoch 0: epoch 1 comes next, whole
    assert [b["index"].tolist() for b in dm.train_dataloader()] == epoch1
