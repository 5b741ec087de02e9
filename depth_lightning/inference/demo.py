"""Web demo: `python -m depth_lightning.demo ckpt_path=PATH [port=7860] [host=127.0.0.1]`.

A Gradio app (the `app` extra): upload or drop a photo and get its depth map, every stage's map
side by side (coarse | coarse+fine) on one colour scale with a colour bar in metres, the 16-bit
millimetre PNG and the coloured point cloud (PLY) to download, and a 3D view of the point
cloud. Served on 127.0.0.1 by default; `host=0.0.0.0` serves the local network and
`share=true` asks Gradio for a public link. The prediction is also an API endpoint
(`/predict`, e.g. through gradio_client).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from depth_lightning.core.extras import need
from depth_lightning.core.files import write_bytes, write_with
from depth_lightning.core.hardware import resolve_device
from depth_lightning.core.settings import required, user_path, whole_number
from depth_lightning.errors import DepthLightningError
from depth_lightning.inference import predict
from depth_lightning.inference.pointcloud import (
    camera_intrinsics,
    glb_bytes,
    ply_bytes,
    point_cloud,
    surface,
)
from depth_lightning.inference.predictor import DepthPredictor, as_photo
from depth_lightning.reporting.colour import check_cmap, figure_png
from depth_lightning.reporting.tables import column_name


def _gradio() -> Any:
    return need("gradio", "the demo")


def depth_outputs(predictor: DepthPredictor, photo: np.ndarray, folder: Path,
                  cmap: str = "viridis", intrinsics: Any = None,
                  max_points: int = 200_000) -> tuple[np.ndarray, Path, Path, Path]:
    """What the demo shows for one photo: the figure (photo | each stage, colour bar in metres)
    as an RGB array, and the files depth.png (uint16 mm), depth.ply and view.glb in `folder`."""
    from PIL import Image

    maps = predictor.coarse_and_fine(photo)
    depth = maps[predictor.name]
    panels = [("photo", photo), *((column_name(c), m) for c, m in maps.items())]
    with Image.open(io.BytesIO(figure_png(panels, cmap=cmap))) as im:
        figure = np.asarray(im.convert("RGB"))
    mm = np.clip(np.round(depth.astype(np.float64) * 1000), 1, predict.MM_MAX).astype(np.uint16)
    png = write_with(folder / "depth.png", lambda tmp: Image.fromarray(mm).save(tmp, "PNG"))
    camera = camera_intrinsics(intrinsics, depth.shape)
    ply = write_bytes(folder / "depth.ply", ply_bytes(*point_cloud(depth, photo, camera)))
    glb = write_bytes(folder / "view.glb",
                      glb_bytes(*surface(depth, photo, camera, max_points)))
    return figure, png, ply, glb


def build_app(predictor: DepthPredictor, cmap: str = "viridis", intrinsics: Any = None,
              max_points: int = 200_000, example: np.ndarray | None = None) -> Any:
    """The Gradio Blocks app around `predictor` (not launched); `example`, a photo shown with
    its depth when the page opens."""
    gr = _gradio()
    work = Path(tempfile.mkdtemp(prefix="depth_lightning-demo-"))

    def estimate(photo: np.ndarray | None) -> tuple:
        if photo is None:
            raise gr.Error("Upload a photo first.")
        folder = Path(tempfile.mkdtemp(dir=work))  # one per request: downloads never mix
        figure, png, ply, glb = depth_outputs(predictor, np.asarray(photo, np.uint8)[..., :3],
                                              folder, cmap, intrinsics, max_points)
        return figure, str(png), str(ply), str(glb)

    # the results live as long as the app (Gradio serves copies of them), or until Python exits
    weakref.finalize(estimate, shutil.rmtree, work, True)

    stages = " + ".join(column_name(c) for c in predictor.columns)
    with gr.Blocks(title="depth_lightning") as app:
        gr.Markdown(f"## Depth from one photo\nEigen et al. 2014, {stages} network. Upload or "
                    "drop a photo (any size; indoor scenes like NYU Depth work best).")
        with gr.Row():
            photo = gr.Image(type="numpy", label="photo", sources=["upload", "clipboard"])
            view = gr.Model3D(label="point cloud (drag to turn)", clear_color=(1, 1, 1, 1))
        button = gr.Button("Estimate depth", variant="primary")
        figure = gr.Image(type="numpy", label="depth (m)", format="png")
        with gr.Row():
            png = gr.File(label="depth.png (16-bit, millimetres)")
            ply = gr.File(label="depth.ply (coloured points, metres)")
        outputs = [figure, png, ply, view]
        button.click(estimate, inputs=photo, outputs=outputs, api_name="predict")
        photo.upload(estimate, inputs=photo, outputs=outputs, api_name=False)
        if example is not None:
            shown = (example, *estimate(example))  # computed once, so the page opens at once
            app.load(lambda: shown, outputs=[photo, *outputs], api_name=False)
    return app


def launch_settings(cfg: DictConfig) -> dict[str, Any]:
    """Gradio's launch arguments from the config, checked."""
    port = cfg.get("port")
    if port is not None:
        port = whole_number(port, "port", minimum=1)
        if port > 65535:
            raise DepthLightningError(f"port: must be 1..65535 or null, got {port}")
    share = cfg.get("share", False)
    if not isinstance(share, bool):
        raise DepthLightningError(f"share: must be true or false, got {share!r}")
    return {"server_name": str(cfg.get("host") or "127.0.0.1"), "server_port": port,
            "share": share}


def run(cfg: DictConfig) -> None:
    """Serve the web demo of a checkpoint as configured, until stopped."""
    ckpt_path = user_path(required(cfg, "ckpt_path", "the checkpoint to serve, e.g. "
                                   "ckpt_path=outputs/train/runs/RUN/fine/checkpoints/best.ckpt"))
    settings = launch_settings(cfg)
    cmap = check_cmap(str(cfg.get("cmap", "viridis")))
    intrinsics = cfg.get("intrinsics")
    if OmegaConf.is_config(intrinsics):
        intrinsics = OmegaConf.to_object(intrinsics)
    if intrinsics is not None:
        camera_intrinsics(intrinsics, (1, 1))  # checked before the server starts
    max_points = whole_number(cfg.get("max_points"), "max_points")
    example = cfg.get("example")
    if example is not None:
        try:
            example = as_photo(user_path(example))
        except DepthLightningError as e:  # named by this setting, not the API's argument
            raise DepthLightningError(f"example: {str(e).removeprefix('image: ')}") from None
    _gradio()
    device = resolve_device(str(cfg.get("device", "auto")), str(cfg.get("cpu_allocator", "reuse")))
    predictor = DepthPredictor.from_checkpoint(ckpt_path, device)
    app = build_app(predictor, cmap, intrinsics, max_points, example)
    try:
        app.launch(**settings, show_error=True)
    except OSError as e:  # the port is taken
        raise DepthLightningError(f"port: cannot serve on {settings['server_name']}:"
                                  f"{settings['server_port']} ({e})") from None
