"""Predict: `python -m depth_lightning.predict ckpt_path=PATH input=PHOTOS|VIDEO output_dir=DIR`.

For each photo writes, into `output_dir` (default: this run's folder under outputs/predict/runs):

* `NAME_depth.png`: 16-bit PNG of the depth in millimetres, rounded (so PNG / 1000 equals the
  npy within 0.5 mm) and clipped to 1..65535 (0 never appears: in NYU files it means "no
  depth"; nothing indoors lies beyond 65.5 m);
* `NAME_depth.npy`: float32 depth in metres, the photo's height x width;
* `NAME_viz.png` (`viz=true`): the photo beside its colour-mapped depth, with a colour bar in
  metres; `viz=depth`: the colour-mapped depth alone, at the photo's size; `viz=false`: none;
* `NAME.ply` (`pointcloud=true`): one coloured point per pixel, back-projected with the camera
  of the model's frame chain (NYU V2's Kinect; KITTI's left colour camera) scaled to the
  photo's size, `intrinsics=[fx,fy,cx,cy]`, or a KITTI calibration file's rectified camera
  (`calib=PATH/calib_cam_to_cam.txt`, `calib_camera=image_02|image_03`)
  (depth_lightning/inference/pointcloud.py).

A video (`.mp4`, `.mov`, `.avi`, `.mkv`, `.webm`, `.m4v`) becomes `NAME_depth.mp4`: its frames'
depth colour-mapped on one scale for the whole clip (`depth_lightning/inference/video.py`).

Photos are prepared and predictions brought back to the photo's size by
depth_lightning.inference.predictor (the same code as `DepthPredictor`). Files that are not
images are reported (`skipped FILE: not an image (reason)`) and skipped; the command fails only
when nothing could be processed. With `output_dir` given nothing is created outside it: Hydra's
record of the invocation goes to a private temporary folder that is removed when the command
ends.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from depth_lightning.core.files import write_with
from depth_lightning.core.hardware import resolve_device
from depth_lightning.core.settings import required, user_path, whole_number
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import NYU
from depth_lightning.inference.pointcloud import camera_intrinsics, point_cloud, write_ply
from depth_lightning.inference.predictor import DepthPredictor, load_photo
from depth_lightning.models.checkpoints import load_stage
from depth_lightning.reporting.colour import (
    check_cmap,
    check_range,
    colorize,
    depth_limits,
    write_figure,
)

log = logging.getLogger("depth_lightning")

OUTPUT_SUFFIXES = ("_depth.png", "_depth.npy", "_viz.png", ".ply", "_depth.mp4")
MM_MAX = 65535  # the largest depth a 16-bit millimetre PNG holds: 65.535 m
VIZ_CHOICES = (True, False, "depth")

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


def save_depth(depth: np.ndarray, photo: np.ndarray, out_dir: Path, name: str,
               options: dict[str, Any] | None = None) -> list[Path]:
    """Write NAME_depth.png (uint16 mm), NAME_depth.npy (float32 m) and, as `options` say
    (`viz`, `cmap`, `limits`, `pointcloud`, `intrinsics`), NAME_viz.png and NAME.ply, each under
    a temporary name first and then renamed into place."""
    from PIL import Image

    opt = {"viz": True, "cmap": "viridis", "limits": None, "pointcloud": False,
           "intrinsics": None, "geometry": NYU, **(options or {})}
    mm = np.clip(np.round(depth.astype(np.float64) * 1000.0), 1, MM_MAX).astype(np.uint16)
    png, npy, viz_png, ply = (out_dir / f"{name}{s}" for s in OUTPUT_SUFFIXES[:4])
    write_with(png, lambda tmp: Image.fromarray(mm).save(tmp, format="PNG"))
    write_with(npy, lambda tmp: _save_npy(tmp, depth.astype(np.float32)))
    written = [png, npy]
    if opt["viz"] == "depth":
        rgb = colorize(depth, opt["limits"] or depth_limits(depth), opt["cmap"])
        written.append(write_with(viz_png, lambda tmp: Image.fromarray(rgb).save(tmp, "PNG")))
    elif opt["viz"]:
        written.append(write_figure(viz_png, [(name, photo), ("depth", depth)],
                                    cmap=opt["cmap"], limits=opt["limits"]))
    if opt["pointcloud"]:
        camera = camera_intrinsics(opt["intrinsics"], depth.shape, geometry=opt["geometry"])
        written.append(write_ply(ply, *point_cloud(depth, photo, camera)))
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


def output_options(cfg: DictConfig) -> dict[str, Any]:
    """The output settings, checked before any work: viz, cmap, depth_range, pointcloud and
    intrinsics."""
    viz = cfg.get("viz", True)
    if viz not in VIZ_CHOICES:
        raise DepthLightningError(f"viz: must be true, false or depth, got {viz!r}")
    pointcloud = cfg.get("pointcloud", False)
    if not isinstance(pointcloud, bool):
        raise DepthLightningError(f"pointcloud: must be true or false, got {pointcloud!r}")
    intrinsics = cfg.get("intrinsics")
    if intrinsics is not None:
        intrinsics = OmegaConf.to_object(intrinsics) if OmegaConf.is_config(intrinsics) \
            else intrinsics
        camera_intrinsics(intrinsics, (1, 1))  # checked now, not after the first photo
    calib = cfg.get("calib")
    if calib is not None:
        if intrinsics is not None:
            raise DepthLightningError("calib: give intrinsics or calib, not both")
        intrinsics = calib_intrinsics(user_path(calib), str(cfg.get("calib_camera", "image_02")))
    limits = cfg.get("depth_range")
    limits = check_range(OmegaConf.to_object(limits) if OmegaConf.is_config(limits) else limits)
    return {"viz": viz, "cmap": check_cmap(str(cfg.get("cmap", "viridis"))), "limits": limits,
            "pointcloud": pointcloud, "intrinsics": intrinsics}


def calib_intrinsics(path: Path, camera: str) -> list[float]:
    """[fx, fy, cx, cy] of `camera`'s rectified projection in a KITTI calib_cam_to_cam.txt."""
    from depth_lightning.data.kitti_layout import CAMERAS, intrinsics_of, read_calib

    if camera not in CAMERAS:
        raise DepthLightningError(f"calib_camera: must be one of {tuple(CAMERAS)}, got "
                                  f"{camera!r}")
    try:
        return list(intrinsics_of(read_calib(path), camera, path))
    except DepthLightningError as e:
        raise DepthLightningError(f"calib: {e}") from None


def _inputs(cfg: DictConfig, out_dir: Path) -> list[Path]:
    spec = str(required(cfg, "input", "an image, a folder, a glob pattern or a video, e.g. "
                        "input=photos/ or input='photos/*.jpg' or input=clip.mp4"))
    files = list_inputs(spec)
    # Outputs of an earlier run into the same folder are not inputs.
    files = [p for p in files
             if not (p.parent.resolve() == out_dir.resolve() and p.name.endswith(OUTPUT_SUFFIXES))]
    if not files:
        raise DepthLightningError(f"input: {spec} holds only earlier predictions")
    if out_dir.exists() and not (out_dir.is_dir() and os.access(out_dir, os.W_OK)):
        raise DepthLightningError(f"output_dir: {out_dir} is not a writable folder")
    return files


def _make_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DepthLightningError(f"output_dir: cannot create {out_dir} ({e.strerror})") from None


def run(cfg: DictConfig) -> list[Path]:
    """Predict for every image and video of `input`; return the NAME_depth.npy files and the
    depth videos written."""
    from depth_lightning.inference.video import is_video

    ckpt_path = user_path(required(cfg, "ckpt_path", "the checkpoint to predict with, e.g. "
                                   "ckpt_path=outputs/train/runs/RUN/fine/checkpoints/best.ckpt"))
    out_dir = user_path(cfg.get("output_dir") or cfg.paths.output_dir)
    batch_size = whole_number(cfg.get("batch_size"), "batch_size")
    options = output_options(cfg)
    device = resolve_device(str(cfg.get("device", "auto")), str(cfg.get("cpu_allocator", "reuse")))
    files = _inputs(cfg, out_dir)
    predictor = DepthPredictor(load_stage(ckpt_path), device, batch_size)
    options["geometry"] = predictor.geometry
    names = output_names(files)
    videos = [(p, n) for p, n in zip(files, names) if is_video(p)]
    photos = [(p, n) for p, n in zip(files, names) if not is_video(p)]
    written, skipped = _predict_photos(predictor, photos, out_dir, options) if photos else ([], [])
    for path, name in videos:
        written.append(_predict_video(predictor, path, out_dir / f"{name}_depth.mp4", options))
    if not written:
        raise DepthLightningError(f"input: none of the {len(files)} file(s) of {cfg.input} is an "
                                  "image that could be read")
    stage = "+".join(predictor.columns)
    n_maps = len(written) - len(videos)
    print(f"wrote {n_maps} depth map(s)" + (f" and {len(videos)} depth video(s)" if videos
                                           else "") + f" ({stage}) to {out_dir}"
          + (f"; skipped {len(skipped)} file(s) that are not images" if skipped else ""))
    return written


def _progress(label: str) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=Console(stderr=True), transient=True)


def _predict_photos(predictor: DepthPredictor, photos: list[tuple[Path, str]], out_dir: Path,
                    options: dict[str, Any]) -> tuple[list[Path], list[Path]]:
    """Depth files for each photo (NAME_depth.npy listed); the files that are not images."""
    skipped: list[Path] = []
    written: list[Path] = []
    with _progress("predicting") as bar:
        task = bar.add_task("predict", total=len(photos))

        def on_skip(path: Path, reason: str) -> None:
            # One line each, never wrapped: scripts may grep for them.
            bar.console.print(f"skipped {path}: not an image ({reason})", soft_wrap=True,
                              markup=False, highlight=False)
            skipped.append(path)
            bar.advance(task)

        files, names = [p for p, _ in photos], [n for _, n in photos]
        for batch in _batches(files, names, predictor.batch_size, on_skip):
            if not written:  # created with the first image, so a run with none leaves nothing
                _make_dir(out_dir)
            maps = predictor.depth_maps([photo for _, photo in batch], columns=[predictor.name])
            for (name, photo), depth in zip(batch, maps):
                written.append(save_depth(depth[predictor.name], photo, out_dir, name,
                                          options)[1])
                bar.advance(task)
    return written, skipped


def _predict_video(predictor: DepthPredictor, path: Path, out: Path,
                   options: dict[str, Any]) -> Path:
    from depth_lightning.inference.video import depth_video, video_info

    _, total = video_info(path)
    _make_dir(out.parent)
    with _progress(path.name) as bar:
        task = bar.add_task("video", total=total)
        out, limits, n = depth_video(predictor, path, out, options["cmap"], options["limits"],
                                     predictor.batch_size, lambda k: bar.advance(task, k))
    print(f"{out}: {n} frames, colour scale {limits[0]:.2f}..{limits[1]:.2f} m "
          f"({options['cmap']})")
    return out
