"""Callbacks: the per-epoch table and curves, and depth panels drawn from validation's maps."""

import csv

import lightning as L
import numpy as np
import pytest
from PIL import Image
from test_stages import coarse_stage, random_batches

from depth_lightning.training.callbacks import DepthPanels, EpochTable


@pytest.mark.slow  # a short fit
def test_epoch_table_and_panels_of_a_short_fit(tmp_path):
    model = coarse_stage()
    calls = []
    original = model.log_depths
    model.log_depths = lambda x: calls.append(x.shape[0]) or original(x)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path,
                        num_sanity_val_steps=0, enable_checkpointing=False,
                        callbacks=[EpochTable(tmp_path, plot_every=1), DepthPanels(n_frames=3)])
    trainer.fit(model, random_batches(), random_batches(2, seed=1))
    with open(tmp_path / "epochs.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"] and [r["step"] for r in rows] == ["4", "8"]
    assert float(rows[1]["val/si_rmse_log"]) > 0 and float(rows[0]["lr/coarse1"]) == 0.001
    assert {"train/loss", "train/si_rmse_log", "val/loss", "val/delta1"} <= set(rows[0])
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    panels = sorted((tmp_path / "panels").glob("*.png"))
    assert [p.name for p in panels] == ["epoch_000.png", "epoch_001.png"]
    with Image.open(panels[0]) as im:
        assert np.asarray(im.convert("L")).std() > 10
    # every forward pass was training's or validation's: 4 + 2 batches per epoch, none extra
    assert len(calls) == 2 * (4 + 2)


def test_progress_shows_validation_and_the_best_and_logs_one_line_per_epoch(tmp_path,
                                                                            monkeypatch):
    import io

    from depth_lightning.training.callbacks import DepthProgressBar, EpochLines, progress_bar

    monkeypatch.setattr("sys.stdout.isatty", lambda: False, raising=False)
    assert isinstance(progress_bar(leave=False), EpochLines)
    monkeypatch.setattr("sys.stdout.isatty", lambda: True, raising=False)
    assert isinstance(progress_bar(leave=False), DepthProgressBar)
    stream = io.StringIO()
    lines, table = EpochLines(stream), EpochTable(tmp_path, plot_every=0)
    model = coarse_stage()
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_model_summary=False,
                        default_root_dir=tmp_path, num_sanity_val_steps=0,
                        enable_checkpointing=False, callbacks=[table, lines])
    trainer.fit(model, random_batches(), random_batches(2, seed=1))
    printed = stream.getvalue().splitlines()
    assert [ln.split("  ")[0] for ln in printed] == ["coarse epoch 0/1", "coarse epoch 1/1"]
    best = min(table.rows, key=lambda r: r["val/si_rmse_log"])
    assert f"best {best['val/si_rmse_log']:.4f} (epoch {best['epoch']})" in printed[1]
    assert f"val/si_rmse_log {table.rows[1]['val/si_rmse_log']:.4f}" in printed[1]
    bar = DepthProgressBar()
    bar._best.seen = [(9.0, 0)]  # worse than any epoch of the table: the best is the table's
    shown = bar.get_metrics(trainer, model)
    assert shown["best"] == f"{best['val/si_rmse_log']:.4f} (epoch {best['epoch']})"
    assert "val/si_rmse_log" in shown and not any(k.startswith("v_num") for k in shown)
    assert not {"train/loss_epoch", "train/loss_step"} & set(shown)
