"""Predict: `python -m depth_lightning.predict ckpt_path=PATH input=IMAGE|DIR|GLOB output_dir=DIR`.

For each photo writes, into `output_dir` (default: this run's folder under outputs/predict/runs):

* `NAME_depth.png`: 16-bit PNG of the depth in millimetres, rounded (so PNG / 1000 equals the
  npy within 0.5 mm) and clipped to 1..65535 (0 never appears: in NYU files it means "no
  depth"; nothing indoors lies beyond 65.5 m);
* `NAME_depth.npy`: float32 depth in metres, the photo's height x width;
* `NAME_viz.png`: the photo beside its colour-mapped depth, with a scale bar in metres.

Preparation, as in evaluation: the photo is made RGB (grayscale replicated, alpha dropped, EXIF
rotation applied), resized to 320x240 (the size NYU's 640x480 frames are downsampled to; a photo
of another aspect ratio is squashed or stretched to it, so the network sees the whole photo at
the field of view it was trained on rather than a crop of it) by area averaging when shrinking
(exactly the training cache's 2x2 mean for a 640x480 photo) and bilinearly when enlarging, then
centre-cropped to 304x228. The 55x74 prediction is mapped back onto the whole photo with the
inverse geometry (depth_lightning.protocols.upsample_to_frame): bilinear upsampling inside the
region the network saw, edge replication in the 2.5% border outside it.

Files that are not images are reported (`skipped FILE: not an image (reason)`) and skipped; the
command fails only when no image at all could be processed.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from depth_lightning import resolvers  # noqa: F401  (registers ${dl_uid:} before composing)
from depth_lightning.checkpoints import load_stage
from depth_lightning.entry import hydra_main, required, resolve_device, run_task, user_path
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import network_input, upsample_to_frame
from depth_lightning.io import write_with
from depth_lightning.scoring import StagePredictor
from depth_lightning.settings import whole_number

log = logging.getLogger("depth_lightning")

OUTPUT_SUFFIXES = ("_depth.png", "_depth.npy", "_viz.png")
MM_MAX = 65535  # the largest depth a 16-bit millimetre PNG holds: 65.535 m


def list_inputs(spec: str) -> list[Path]:
    """The files named by `input`: one file, every file in a folder (sorted, not recursive),
    or the files a glob pattern matches (`**` recurses)."""
    path = user_path(spec)
    if any(ch in str(spec) for ch in "*?["):
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in files if p.is_file()]
        if not files:
            raise DepthLightningError(f"input: no files match {path}")
        return files
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        if not files:
            raise DepthLightningError(f"input: the folder {path} holds no files")
        return files
    if path.is_file():
        return [path]
    raise DepthLightningError(f"input: {path} does not exist")


def output_names(files: list[Path]) -> list[str]:
    """NAME for each input: its stem, or its file name where two inputs share a stem (a.jpg and
    a.png), with a counter as the last resort, so no output overwrites another."""
    stems = [p.stem for p in files]
    names, used = [], set()
    for p, stem in zip(files, stems):
        name = stem if stems.count(stem) == 1 else p.name
        base, k = name, 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        names.append(name)
    return names


def load_photo(path: Path) -> np.ndarray:
    """An image file as uint8 RGB (H,W,3). Raises ValueError with the reason when the file is
    not an image PIL can decode."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
                im = _gray_to_8bit(np.asarray(im, dtype=np.float64))
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise ValueError("unrecognised image format") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(reason) from None


def _gray_to_8bit(a: np.ndarray):
    """16-bit or float grayscale -> 8-bit, stretched to its own range (PIL would clip it)."""
    from PIL import Image

    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scaled = (np.nan_to_num(a, nan=lo) - lo) / max(hi - lo, 1e-12) * 255.0
    return Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8))


def prepare_photo(photo: np.ndarray) -> torch.Tensor:
    """uint8 RGB photo (H,W,3) of any size -> the uint8 network input (3,228,304) (see the
    module docstring for why the photo is resized to 320x240 whole): for a 640x480 photo
    exactly the training cache's 2x2 mean (depth_lightning.geometry.network_input)."""
    return network_input(photo)


def depth_to_photo(depth: torch.Tensor, size_hw: tuple[int, int]) -> np.ndarray:
    """Predicted depth (1,55,74) in metres -> float32 depth in metres at the photo's size."""
    out = upsample_to_frame(depth.float()[None], size_hw, mode="bilinear")
    return out[0].cpu().numpy().astype(np.float32)


def save_depth(depth: np.ndarray, photo: np.ndarray, out_dir: Path, name: str,
               viz: bool = True) -> list[Path]:
    """Write NAME_depth.png (uint16 mm), NAME_depth.npy (float32 m) and NAME_viz.png, each
    under a temporary name first and then renamed into place."""
    from PIL import Image

    from depth_lightning.viz import plot_prediction

    mm = np.clip(np.round(depth.astype(np.float64) * 1000.0), 1, MM_MAX).astype(np.uint16)
    png, npy, viz_png = (out_dir / f"{name}{s}" for s in OUTPUT_SUFFIXES)
    write_with(png, lambda tmp: Image.fromarray(mm).save(tmp, format="PNG"))
    write_with(npy, lambda tmp: _save_npy(tmp, depth.astype(np.float32)))
    written = [png, npy]
    if viz:
        written.append(plot_prediction(photo, depth, viz_png, title=name))
    return written


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append .npy to a bare name
        np.save(f, array)


def _batches(files: list[Path], names: list[str], batch_size: int,
             on_skip: Callable[[Path, str], None]) -> Iterator[list[tuple[str, np.ndarray]]]:
    """(NAME, photo) pairs in batches; files that do not decode go to `on_skip` instead."""
    batch = []
    for path, name in zip(files, names):
        try:
            batch.append((name, load_photo(path)))
        except ValueError as e:
            on_skip(path, str(e))
            continue
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def run(cfg: DictConfig) -> list[Path]:
    """Predict for every image of `input`; return the NAME_depth.npy files written."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    ckpt_path = user_path(required(cfg, "ckpt_path", "the checkpoint to predict with, e.g. "
                                   "ckpt_path=outputs/train/runs/RUN/fine/checkpoints/best.ckpt"))
    spec = str(required(cfg, "input", "an image, a folder or a glob pattern, e.g. "
                        "input=photos/ or input='photos/*.jpg'"))
    out_dir = user_path(cfg.get("output_dir") or cfg.paths.output_dir)
    batch_size = whole_number(cfg.get("batch_size"), "batch_size")
    device = resolve_device(str(cfg.get("device", "auto")), str(cfg.get("cpu_allocator", "reuse")))
    files = list_inputs(spec)
    # Outputs of an earlier run into the same folder are not inputs.
    files = [p for p in files
             if not (p.parent.resolve() == out_dir.resolve() and p.name.endswith(OUTPUT_SUFFIXES))]
    if not files:
        raise DepthLightningError(f"input: {spec} holds only earlier predictions")
    if out_dir.exists() and not (out_dir.is_dir() and os.access(out_dir, os.W_OK)):
        raise DepthLightningError(f"output_dir: {out_dir} is not a writable folder")
    module = load_stage(ckpt_path).to(device)
    predictor = StagePredictor(module, columns=module.columns[-1:])

    console = Console(stderr=True)
    skipped: list[Path] = []
    written: list[Path] = []

    columns = (TextColumn("predicting"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("predict", total=len(files))

        def on_skip(path: Path, reason: str) -> None:
            # One line each, never wrapped: scripts may grep for them.
            console.print(f"skipped {path}: not an image ({reason})", soft_wrap=True,
                          markup=False, highlight=False)
            skipped.append(path)
            bar.advance(task)

        for batch in _batches(files, output_names(files), batch_size, on_skip):
            if not written:  # created with the first image, so a run with none leaves nothing
                try:
                    out_dir.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise DepthLightningError(f"output_dir: cannot create {out_dir} "
                                              f"({e.strerror})") from None
            images = torch.stack([prepare_photo(photo) for _, photo in batch])
            out = predictor({"image": images})[module.name]
            for (name, photo), pred in zip(batch, out):
                depth = depth_to_photo(pred, photo.shape[:2])
                written.append(save_depth(depth, photo, out_dir, name,
                                          viz=bool(cfg.get("viz", True)))[1])
                bar.advance(task)
    if not written:
        raise DepthLightningError(f"input: none of the {len(files)} file(s) of {spec} is an "
                                  "image that could be read")
    stage = "+".join(module.columns)
    print(f"wrote {len(written)} depth map(s) ({stage}) to {out_dir}"
          + (f"; skipped {len(skipped)} file(s) that are not images" if skipped else ""))
    return written


@hydra_main("predict")
def main(cfg: DictConfig) -> None:
    run_task(cfg, run)


if __name__ == "__main__":
    main()
