"""Depth videos: every frame of a clip through a predictor, written as a colour-mapped depth
video on one colour scale for the whole clip (so a colour means the same distance in every
frame). Needs the `app` extra (imageio with its bundled ffmpeg)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from depth_lightning.core.extras import need
from depth_lightning.core.files import write_with
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import NYU, FrameGeometry
from depth_lightning.inference.predictor import depth_to_photo, prepare_photo
from depth_lightning.reporting.colour import DEFAULT_CMAP, colorize, depth_limits

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


def is_video(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _imageio() -> Any:
    need("imageio_ffmpeg", "input: reading and writing videos")  # the bundled ffmpeg
    return need("imageio.v2", "input: reading and writing videos")


def video_info(path: Path) -> tuple[float, int]:
    """(frames per second, number of frames) of a video file."""
    imageio = _imageio()
    try:
        with imageio.get_reader(path, "ffmpeg") as reader:
            fps = float(reader.get_meta_data().get("fps") or 25.0)
            return fps, int(reader.count_frames())
    except (OSError, RuntimeError, ValueError, IndexError) as e:
        reason = " ".join(str(e).split())[:200] or type(e).__name__
        raise DepthLightningError(f"input: {path} is not a readable video ({reason})") from None


def _frames(path: Path) -> Iterator[np.ndarray]:
    imageio = _imageio()
    with imageio.get_reader(path, "ffmpeg") as reader:
        for frame in reader:
            yield np.ascontiguousarray(frame[..., :3])


def predict_frames(predictor: Any, path: Path, batch_size: int,
                   advance: Callable[[int], None]) -> tuple[torch.Tensor, tuple[int, int]]:
    """The final stage's 55x74 depth (N,1,55,74) for every frame, and the frame size: pass one
    keeps only these small maps, so a long clip needs little memory."""
    preds, batch, size = [], [], (0, 0)
    for frame in itertools.chain(_frames(path), [None]):  # decoded lazily; None flushes
        if frame is not None:
            size = frame.shape[:2]
            batch.append(prepare_photo(frame, predictor.geometry))
        if batch and (frame is None or len(batch) == batch_size):
            out = predictor.log_depth_batch(torch.stack(batch))[predictor.name]
            preds.append(out.cpu())
            advance(len(batch))
            batch = []
    if not preds:
        raise DepthLightningError(f"input: {path} holds no frames")
    return torch.cat(preds), size


def write_depth_video(preds: torch.Tensor, size_hw: tuple[int, int], fps: float, out: Path,
                      limits: tuple[float, float], cmap: str = DEFAULT_CMAP,
                      geometry: FrameGeometry = NYU) -> Path:
    """Pass two: each map brought to the frame size (even, as H.264 needs), colour-mapped on
    `limits` and encoded (H.264, yuv420p) under a temporary name, then renamed into place."""
    imageio = _imageio()
    h, w = size_hw[0] // 2 * 2, size_hw[1] // 2 * 2

    def encode(tmp: Path) -> None:
        named = tmp.with_name(tmp.name + ".mp4")  # imageio picks its writer by the extension
        try:
            with imageio.get_writer(named, format="FFMPEG", mode="I", fps=fps,
                                    codec="libx264", pixelformat="yuv420p",
                                    macro_block_size=1) as writer:
                for pred in preds:
                    writer.append_data(colorize(depth_to_photo(pred, (h, w), geometry), limits,
                                                cmap))
            os.replace(named, tmp)
        finally:
            named.unlink(missing_ok=True)

    return write_with(out, encode)


def depth_video(predictor: Any, path: Path, out: Path, cmap: str = DEFAULT_CMAP,
                limits: tuple[float, float] | None = None, batch_size: int = 8,
                advance: Callable[[int], None] | None = None
                ) -> tuple[Path, tuple[float, float], int]:
    """Write the depth video of `path` to `out`; return it, the colour scale used (`limits`,
    else the clip's own depth range) and the number of frames. `advance` is told how many
    frames each batch predicted (a progress bar)."""
    fps, _ = video_info(path)
    preds, size = predict_frames(predictor, path, batch_size, advance or (lambda n: None))
    limits = limits or depth_limits(preds.numpy())
    return (write_depth_video(preds, size, fps, out, limits, cmap, predictor.geometry), limits,
            len(preds))
