"""Export: `python -m depth_lightning.export ckpt_path=PATH format=onnx|torchscript output=FILE`.

The exported graph holds the whole network path: input ``image``, uint8 (B,3,228,304) RGB, the
photo already resized and centre-cropped as
depth_lightning.inference.predictor.prepare_photo does (a 640x480 frame: its 2x2 mean, then rows
6:234 and columns 8:312); inside the graph the normalisation
(/255, ImageNet mean and std), every stage's network and exp; output ``depth``, float32
(B,55,74) in metres (the final stage's map, covering the 304x228 crop). The batch axis is
dynamic. ONNX uses opset 17 (`opset=`); TorchScript is a traced module (`torch.jit.load`).
After writing, the file is run once against PyTorch on random images and the largest relative
difference is printed (ONNX: with onnxruntime when installed).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from depth_lightning.core.extras import has, need
from depth_lightning.core.files import write_with
from depth_lightning.core.settings import required, user_path, whole_number
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import NYU, FrameGeometry
from depth_lightning.models.checkpoints import load_stage
from depth_lightning.nets import normalize_images

log = logging.getLogger("depth_lightning")

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
INPUT_NAME, OUTPUT_NAME = "image", "depth"
DEFAULT_OPSET = 17
EXPORTERS = ("auto", "dynamo", "legacy")


class DepthGraph(nn.Module):
    """A stage as one function: uint8 images (B,3,228,304) -> depth in metres (B,55,74).

    It holds the stage's plain networks, not the LightningModule (which tracing cannot walk),
    and runs them as DepthStage.log_depths does: the frozen chain, then the stage's own."""

    def __init__(self, stage: nn.Module) -> None:
        super().__init__()
        self.base = stage.base
        self.net = stage.net
        self.geometry = getattr(stage, "geometry", NYU)
        self.eval()

    def forward(self, image: Tensor) -> Tensor:
        x = normalize_images(image)
        if self.base is None:
            log_depth = self.net(x)
        else:
            log_depth = self.net(x, self.base(x)[self.base.names[-1]])
        return torch.exp(log_depth.float())[:, 0]


def example_images(batch: int = 2, seed: int = 0, geometry: FrameGeometry = NYU) -> Tensor:
    """Random uint8 network inputs (batch,3,228,304 for NYU), for tracing and checking."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, *geometry.input), dtype=torch.uint8, generator=g)


def onnx_exporter(choice: str = "auto") -> str:
    """The ONNX exporter to use: ``dynamo`` (torch.export, needs onnxscript) or ``legacy``
    (TorchScript-based, deprecated by torch); ``auto`` = dynamo where onnxscript is installed."""
    if choice not in EXPORTERS:
        raise DepthLightningError(f"exporter: must be one of {EXPORTERS}, got {choice!r}")
    if choice == "auto":
        return "dynamo" if has("onnxscript") else "legacy"
    if choice == "dynamo":
        need("onnxscript", "exporter=dynamo")
    return choice


def export_onnx(stage: nn.Module, path: str | Path, opset: int = DEFAULT_OPSET,
                exporter: str = "auto") -> tuple[Path, str]:
    """Write `stage` as ONNX with a dynamic batch size, atomically; the file and the exporter
    used (:func:`onnx_exporter`)."""
    need("onnx", "format=onnx")
    exporter = onnx_exporter(exporter)
    graph = DepthGraph(stage)
    images = example_images(geometry=graph.geometry)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
            if exporter == "dynamo":
                batch = torch.export.Dim("batch", min=1, max=1024)
                program = torch.onnx.export(graph, (images,), dynamo=True,
                                            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                            opset_version=max(opset, 18), verbose=False,
                                            dynamic_shapes=({0: batch},))
                program.save(str(tmp))
            else:
                torch.onnx.export(graph, (images,), str(tmp), dynamo=False,
                                  input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                  opset_version=opset, do_constant_folding=True,
                                  dynamic_axes={INPUT_NAME: {0: "batch"},
                                                OUTPUT_NAME: {0: "batch"}})

    return write_with(path, write), exporter


def export_torchscript(stage: nn.Module, path: str | Path) -> Path:
    """Write `stage` as a traced TorchScript module, atomically."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = DepthGraph(stage)
        traced = torch.jit.trace(graph, (example_images(geometry=graph.geometry),),
                                 check_trace=False)
    return write_with(path, lambda tmp: torch.jit.save(traced, str(tmp)))


def run_exported(path: str | Path, images: Tensor) -> np.ndarray:
    """Depth from an exported file for `images` (ONNX through onnxruntime, else TorchScript)."""
    if Path(path).suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(images).numpy()


def max_relative_difference(stage: nn.Module, path: str | Path, batch: int = 3) -> float:
    """Largest |exported - PyTorch| / PyTorch over a random batch (another size than traced)."""
    images = example_images(batch, seed=1, geometry=getattr(stage, "geometry", NYU))
    with torch.no_grad():  # the stage itself, not DepthGraph: the graph's wiring is checked
        reference = torch.exp(stage(images).float())[:, 0].numpy()
    got = run_exported(path, images)
    if got.shape != reference.shape:
        raise DepthLightningError(f"output: {path} gives shape {got.shape}, expected "
                                  f"{reference.shape}")
    return float(np.max(np.abs(got - reference) / np.abs(reference)))


def run(cfg: DictConfig) -> Path:
    """Export as configured; return the file written."""
    ckpt_path = user_path(required(cfg, "ckpt_path", "the checkpoint to export, e.g. "
                                   "ckpt_path=outputs/train/runs/RUN/fine/checkpoints/best.ckpt"))
    fmt = str(cfg.get("format"))
    if fmt not in FORMATS:
        raise DepthLightningError(f"format: must be one of {', '.join(FORMATS)}, got {fmt!r}")
    opset = whole_number(cfg.get("opset"), "opset", minimum=13)
    out = user_path(cfg.get("output") or ckpt_path.with_suffix(FORMATS[fmt]))
    if out.is_dir() or not out.parent.is_dir():
        raise DepthLightningError(f"output: {out} is a folder or its folder does not exist; "
                                  "give a file name, e.g. output=depth.onnx")
    stage = load_stage(ckpt_path).to("cpu").float()
    exporter = str(cfg.get("exporter", "auto"))
    if fmt == "onnx":
        _, exporter = export_onnx(stage, out, opset, exporter)
    else:
        export_torchscript(stage, out)
    (ih, iw), (oh, ow) = stage.geometry.input, stage.geometry.output
    line = f"wrote {out} ({fmt}, {'+'.join(stage.columns)}): input '{INPUT_NAME}' uint8 " \
           f"(batch,3,{ih},{iw}), output '{OUTPUT_NAME}' float32 (batch,{oh},{ow}) in metres"
    if fmt == "onnx":
        line += f", {exporter} exporter, opset {max(opset, 18) if exporter == 'dynamo' else opset}"
    try:
        line += f"; max relative difference to PyTorch {max_relative_difference(stage, out):.1e}"
    except ImportError:
        line += "; not checked (install onnxruntime, in the app extra)"
    print(line)
    return out
