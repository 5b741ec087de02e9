"""Depth videos: `predict input=clip.mp4` on a short generated clip, one colour scale."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import assert_one_line_error, run_job
from fixtures_app import tiny_ckpts  # noqa: F401


def make_clip(path, n=10, size=(96, 128)):
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("imageio_ffmpeg")
    yy, xx = np.mgrid[0:size[0], 0:size[1]]
    frames = [np.dstack([(xx * 2 + 12 * k) % 256, yy * 2 % 256, np.full(size, 40 * k % 256)])
              .astype(np.uint8) for k in range(n)]  # brightness changes: depth changes too
    imageio.mimwrite(path, frames, fps=10, codec="libx264", macro_block_size=1)
    return path


def test_a_clip_becomes_a_depth_video_on_one_colour_scale(tiny_ckpts, tmp_path):  # noqa: F811
    import imageio.v2 as imageio
    import torch

    from depth_lightning.api import DepthPredictor, prepare_photo
    from depth_lightning.reporting.colour import colorize, depth_limits

    clip = make_clip(tmp_path / "clip.mp4")
    res = run_job("predict", f"ckpt_path={tiny_ckpts[1]}", "input=clip.mp4",
                     "output_dir=out", cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "1 depth video(s)" in res.stdout
    lo, hi = map(float, re.search(r"colour scale ([\d.]+)\.\.([\d.]+) m", res.stdout).groups())
    frames = imageio.mimread(clip)  # as predict decoded them
    out = imageio.mimread(tmp_path / "out" / "clip_depth.mp4")
    assert len(out) == len(frames) == 10 and out[0].shape == (96, 128, 3)
    p = DepthPredictor.from_checkpoint(tiny_ckpts[1], device="cpu")
    maps = p.predict_batch(frames)
    # the scale: the whole clip's range at the network's 55x74 (it spans the upsampled maps)
    small = p.log_depth_batch(torch.stack([prepare_photo(f) for f in frames]))["fine"]
    limits = depth_limits(small.numpy())
    assert limits[0] <= min(m.min() for m in maps) and limits[1] >= max(m.max() for m in maps)
    assert (lo, hi) == pytest.approx(limits, abs=0.006)  # printed with two decimals
    one_scale = np.mean([np.abs(colorize(m, limits).astype(int) - o).mean()
                         for m, o in zip(maps, out)])
    own_scale = np.mean([np.abs(colorize(m, depth_limits(m)).astype(int) - o).mean()
                         for m, o in zip(maps, out)])
    assert one_scale < 6 < own_scale  # H.264 is lossy; a per-frame scale is far off


def test_a_video_that_does_not_decode_is_one_line(tiny_ckpts, tmp_path):  # noqa: F811
    pytest.importorskip("imageio_ffmpeg")
    (tmp_path / "broken.mp4").write_bytes(b"\0" * 1000)
    res = run_job("predict", f"ckpt_path={tiny_ckpts[0]}",
                     "input=broken.mp4", "output_dir=out", cwd=tmp_path)
    assert_one_line_error(res, "input:", "broken.mp4", "not a readable video")
    assert not (tmp_path / "out").exists()
