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
from conftest import SMALL_FRAMES, data_module, made_once, run_module

from depth_lightning.core.files import DiskFullError
from depth_lightning.training.checkpointing import AtomicCheckpointIO, link_or_copy

# 8 fine epochs (~0.3 s each here): the stop must land while the fine stage still trains, on
# a fast machine too (with 2 epochs and a 2 s wait it landed after the stage had ended)
EPOCHS = {"coarse": 2, "fine": 8}
RUN = ["+experiment=fine", "seed=1", "deterministic=true",
       f"coarse_stage.max_epochs={EPOCHS['coarse']}", f"trainer.max_epochs={EPOCHS['fine']}",
       "data.batch_size=4", "data.eval_batch_size=8",
       f"data.source.frames={SMALL_FRAMES}", "callbacks.progress_bar=null",
       "coarse_stage.model.net.coarse6_units=64",
       # no figures: a third of such a run's time, and nothing resume depends on
       "callbacks.depth_panels=null", "callbacks.epoch_table.plot_every=0"]


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


@pytest.fixture(scope="session")
def reference(synth_data_dir, tmp_path_factory) -> dict:
    """The metrics of the run never stopped, trained once per test session (~100 s)."""

    def uninterrupted(tmp: Path) -> dict:
        proc = start(tmp, synth_data_dir)
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        return json.loads((the_run(tmp) / "metrics.json").read_text())

    return made_once(tmp_path_factory, "resume_reference", uninterrupted)


def stop_and_resume(tmp: Path, data: Path, stage: str, signum: int) -> tuple[int, str, Path]:
    proc = start(tmp, data)
    wait_for(tmp / "out", f"train/runs/*/{stage}/checkpoints/last.ckpt", proc)
    time.sleep(0.2)  # past the checkpoint's save, within the stage's later epochs
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
    assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 143), err[-3000:]
    if signum == signal.SIGTERM:
        assert f"resume with: python -m depth_lightning.train resume={run}" in err
    assert [p.name for p in (tmp_path / "out" / "train" / "runs").iterdir()] == [run.name]
    assert json.loads((run / "metrics.json").read_text()) == reference
    rows = (run / stage / "epochs.csv").read_text().splitlines()
    want = [str(e) for e in range(EPOCHS[stage])]
    assert [r.split(",")[0] for r in rows[1:]] == want, "epochs.csv continued in place"
    assert (run / ".hydra" / "config.yaml").is_file() and list((run / ".hydra").glob("resume-*"))


# A callback that sends the training process SIGTERM itself, once, at a chosen point of the
# fine stage: the points a signal from outside hits only by chance.
SIGNAL_AT = '''
import os, signal
from pathlib import Path
import lightning as L

class SignalAt(L.Callback):
    def __init__(self, hook, epoch, marker):
        self.hook, self.epoch, self.marker = hook, epoch, Path(marker)

    def _maybe(self, trainer, last_batch=True):
        if (trainer.lightning_module.name == "fine" and trainer.current_epoch == self.epoch
                and last_batch and not self.marker.exists()):
            self.marker.touch()
            os.kill(os.getpid(), signal.SIGTERM)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.hook == "last_train_batch":
            self._maybe(trainer, batch_idx + 1 == trainer.num_training_batches)

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, *rest):
        if self.hook == "validation":
            self._maybe(trainer)
'''


@pytest.mark.slow
@pytest.mark.parametrize(("hook", "epoch", "where"), [
    ("last_train_batch", 0, "at epoch 1, batch 1;"),
    ("validation", EPOCHS["fine"] - 1, f"after the stage's last epoch ({EPOCHS['fine'] - 1});"),
], ids=["last_batch", "last_validation"])
def test_a_signal_outside_a_batch_stops_where_resume_is_exact(hook, epoch, where, reference,
                                                              synth_data_dir, tmp_path):
    """SIGTERM at an epoch's last batch or in validation: the stop waits for a point that a
    resumed fit continues exactly (Lightning's own handler would exit 0 without a checkpoint)."""
    (tmp_path / "signal_at.py").write_text(SIGNAL_AT)
    res = run_module("depth_lightning.train", *RUN, f"paths.data_dir={synth_data_dir}",
                     f"paths.log_dir={tmp_path / 'out'}", "+callbacks.signal._target_="
                     "signal_at.SignalAt", f"+callbacks.signal.hook={hook}",
                     f"+callbacks.signal.epoch={epoch}",
                     f"+callbacks.signal.marker={tmp_path / 'sent'}", cwd=tmp_path)
    assert res.returncode == 143, res.stderr[-3000:]
    assert f"stopped by SIGTERM {where}" in res.stderr
    run = the_run(tmp_path)
    assert not (run / "metrics.json").exists()
    res = run_module("depth_lightning.train", f"resume={run}", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text()) == reference
    rows = (run / "fine" / "epochs.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == [str(e) for e in range(EPOCHS["fine"])]


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
