"""Depth from Python: :class:`DepthPredictor`, one call from a photo to depth in metres.

The `predict` command, the web demo, video and export all go through this module, so a photo
gives the same numbers everywhere. Preparation, as in evaluation: the photo is made RGB
(grayscale replicated, alpha dropped, EXIF rotation applied), resized whole to 320x240 (area
averaging when shrinking, exactly the training cache's 2x2 mean for a 640x480 photo; bilinear
when enlarging; another aspect ratio is squashed, so the network sees the whole photo at the
field of view it was trained on) and centre-cropped to 304x228. The 55x74 prediction is mapped
back onto the whole photo with the inverse geometry (bilinear inside the region the network
saw, edge replication in the 2.5% border outside it). Those sizes are NYU's frame chain; a model
trained on another chain (KITTI's: 621x188, cropped to 576x172, 142x27 out) uses its own, saved
in its checkpoint.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from depth_lightning.core.files import write_with
from depth_lightning.core.hardware import resolve_device
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import NYU, FrameGeometry, network_input, upsample_to_frame
from depth_lightning.models.checkpoints import (
    CHECKPOINT_FORMAT,
    load_checkpoint,
    stage_from_checkpoint,
)
from depth_lightning.models.weights import SUFFIX, save_safetensors

if TYPE_CHECKING:
    from PIL.Image import Image

    from depth_lightning.models.stage import DepthStage

_GRAY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def load_photo(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file as uint8 RGB (H,W,3). Raises ValueError with the reason when the file is
    not an image PIL can decode."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
            return pil_to_rgb(im)
    except UnidentifiedImageError:
        raise ValueError("unrecognised image format") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(reason) from None


def pil_to_rgb(im: Image) -> np.ndarray:
    """A PIL image of any mode as uint8 RGB (H,W,3); 16-bit and float grayscale are stretched
    to their own range (PIL's conversion would clip them)."""
    from PIL import Image

    if im.mode in _GRAY_MODES:
        a = np.asarray(im, dtype=np.float64)
        finite = a[np.isfinite(a)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        scaled = (np.nan_to_num(a, nan=lo) - lo) / max(hi - lo, 1e-12) * 255.0
        im = Image.fromarray(np.clip(np.round(scaled), 0, 255).astype(np.uint8))
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def as_photo(image: Any) -> np.ndarray:
    """A PIL image, an array (HxWx3 or HxWx4 uint8, or HxW uint8 grayscale) or an image file's
    path -> uint8 RGB (H,W,3). Anything else is a DepthLightningError naming what was given."""
    if isinstance(image, str | os.PathLike):
        if not Path(image).is_file():
            raise DepthLightningError(f"image: {image} does not exist or is not a file")
        try:
            return load_photo(image)
        except ValueError as e:
            raise DepthLightningError(f"image: {image} is not an image ({e})") from None
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image
        return pil_to_rgb(image)
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise DepthLightningError(f"image: expected uint8 pixels (0..255), got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or min(a.shape[:2]) < 1:
        raise DepthLightningError(f"image: expected an HxWx3 RGB array, got shape {a.shape}")
    return np.ascontiguousarray(a[..., :3])


def prepare_photo(photo: np.ndarray, geometry: FrameGeometry = NYU) -> torch.Tensor:
    """uint8 RGB photo (H,W,3) of any size -> the uint8 network input (3,228,304 for NYU) (see
    the module docstring): for a 640x480 photo exactly the training cache's 2x2 mean."""
    return network_input(photo, geometry)


def depth_to_photo(depth: torch.Tensor, size_hw: tuple[int, int],
                   geometry: FrameGeometry = NYU) -> np.ndarray:
    """Predicted depth (1,55,74 for NYU) in metres -> float32 depth in metres at the photo's
    size."""
    out = upsample_to_frame(depth.float()[None], size_hw, mode="bilinear", geometry=geometry)
    return out[0].cpu().numpy().astype(np.float32)


class DepthPredictor:
    """A trained stage as a function from photos to depth maps in metres.

    Example (an untrained coarse stage, saved and reloaded as a trained one would be):

        >>> import tempfile, numpy as np
        >>> from depth_lightning.models.stage import DepthStage
        >>> stage = DepthStage("coarse",
        ...     net={"_target_": "depth_lightning.nets.CoarseNet", "coarse6_units": 8},
        ...     loss={"_target_": "depth_lightning.losses.ScaleInvariantLoss", "lam": 0.5},
        ...     optim={"_target_": "torch.optim.SGD", "_partial_": True, "lr": {"default": 0.1}},
        ...     scheduler={"name": "none"})
        >>> path = Path(tempfile.mkdtemp()) / "coarse.ckpt"
        >>> DepthPredictor(stage).save(path).name
        'coarse.ckpt'
        >>> p = DepthPredictor.from_checkpoint(path, device="cpu")
        >>> depth = p(np.full((300, 400, 3), 128, np.uint8))
        >>> depth.shape, depth.dtype, bool((depth > 0).all())
        ((300, 400), dtype('float32'), True)
        >>> list(p.coarse_and_fine(np.zeros((48, 64, 3), np.uint8)))
        ['coarse']
    """

    def __init__(self, module: DepthStage, device: str | torch.device = "cpu",
                 batch_size: int = 8, data: dict | None = None) -> None:
        from depth_lightning.evaluation.scoring import StagePredictor

        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()
        self.batch_size = int(batch_size)
        self.data = data  # the data settings the checkpoint was trained on, if it says
        self._predict = StagePredictor(self.module)
        self.geometry: FrameGeometry = getattr(module, "geometry", NYU)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: str | torch.device = "auto",
                        batch_size: int = 8) -> DepthPredictor:
        """Load a coarse or fine checkpoint written by `train` (weights only, safely)."""
        ckpt = load_checkpoint(path)
        module = stage_from_checkpoint(ckpt, path)
        return cls(module, device, batch_size, data=ckpt["depth_lightning"].get("data"))

    @property
    def columns(self) -> tuple[str, ...]:
        """The maps predicted, bottom stage first: ("coarse",) or ("coarse", "fine")."""
        return tuple(self.module.columns)

    @property
    def name(self) -> str:
        """The final stage, whose map `__call__` returns."""
        return self.module.name

    def log_depth_batch(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Network inputs uint8 (B,3,228,304) -> {column: depth in metres (B,1,55,74)}."""
        return self._predict({"image": images})

    def depth_maps(self, images: Iterable[Any],
                   columns: Sequence[str] | None = None) -> list[dict[str, np.ndarray]]:
        """{column: float32 depth in metres at the photo's size} for each image, computed in
        batches of `batch_size`."""
        columns = tuple(columns or self.columns)
        out: list[dict[str, np.ndarray]] = []
        batch: list[np.ndarray] = []
        for image in itertools.chain(images, [None]):  # None flushes the last batch
            if image is not None:
                batch.append(as_photo(image))
            if batch and (image is None or len(batch) == self.batch_size):
                preds = self.log_depth_batch(torch.stack([prepare_photo(p, self.geometry)
                                                          for p in batch]))
                out += [{c: depth_to_photo(preds[c][j], photo.shape[:2], self.geometry)
                         for c in columns}
                        for j, photo in enumerate(batch)]
                batch = []
        return out

    def __call__(self, image: Any) -> np.ndarray:
        """Depth in metres (float32, the image's height x width) from the final stage."""
        return self.depth_maps([image], columns=[self.name])[0][self.name]

    def predict_batch(self, images: Iterable[Any]) -> list[np.ndarray]:
        """`__call__` for many images (each at its own size), in batches."""
        return [m[self.name] for m in self.depth_maps(images, columns=[self.name])]

    def coarse_and_fine(self, image: Any) -> dict[str, np.ndarray]:
        """Every stage's map for one image: {"coarse": ..., "fine": ...} (a coarse checkpoint:
        {"coarse": ...})."""
        return self.depth_maps([image])[0]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write a lean checkpoint (weights and settings, no optimiser state) that
        `from_checkpoint`, `predict` and `evaluate` read like a training one; a path ending in
        `.safetensors` gets a safetensors file (no pickle: safe to share and to load)."""
        module = self.module
        ckpt = {"state_dict": {k: v.cpu() for k, v in module.state_dict().items()},
                "hyper_parameters": dict(module.hparams),
                "depth_lightning": {"stage": module.name, "format": CHECKPOINT_FORMAT,
                                    "columns": list(module.columns), "data": self.data}}
        if str(path).endswith(SUFFIX):
            return save_safetensors(ckpt, path)
        return write_with(path, lambda tmp: torch.save(ckpt, tmp))
