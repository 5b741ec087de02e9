"""Lightning modules for the two training stages: CoarseStage, then FineStage on a frozen coarse.

Hyper-parameters are kept primitive (dicts, lists, numbers, strings) so that checkpoints reload
with a plain `load_from_checkpoint` under torch's `weights_only` loading.
"""

from __future__ import annotations

import math
from copy import deepcopy
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from depth_lightning.errors import CheckpointError
from depth_lightning.losses import scale_invariant_loss
from depth_lightning.metrics import depth_metrics
from depth_lightning.nets import (
    CoarseNet,
    FineNet,
    init_coarse_head,
    init_fine_identity,
    init_weights,
    normalize_images,
)

COARSE_LR = {"coarse1": 1e-3, "coarse2": 1e-3, "coarse3": 1e-3, "coarse4": 1e-3,
             "coarse5": 1e-3, "coarse6": 0.1, "coarse7": 0.1}
FINE_LR = {"fine1": 1e-3, "fine3": 1e-2, "fine4": 1e-3}
PLATEAU = {"name": "plateau", "factor": 0.1, "patience": 10, "threshold": 1e-4,
           "monitor": "val/loss"}
CHECKPOINT_FORMAT = 1


def load_checkpoint(path: str | Path, expect_stage: str | None = None,
                    setting: str = "ckpt_path") -> dict:
    """Load a depth_lightning checkpoint safely (`weights_only=True`) and check its stage."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{setting}: {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickled code, truncated file, not a torch file at all
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "Unsupported global" in str(e):
            raise CheckpointError(
                f"{setting}: {path} holds pickled code, refused (only plain weights are loaded)"
            ) from None
        raise CheckpointError(f"{setting}: {path} is not a readable checkpoint ({first})") from None
    info = ckpt.get("depth_lightning") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict) or "stage" not in info:
        raise CheckpointError(f"{setting}: {path} is not a depth_lightning checkpoint")
    if expect_stage and info["stage"] != expect_stage:
        raise CheckpointError(
            f"{setting}: {path} is a {info['stage']}-stage checkpoint, expected {expect_stage}"
        )
    return ckpt


class DepthStage(L.LightningModule):
    """What both stages share: loss, metrics, optimiser groups and schedule."""

    stage = ""

    def _build_metrics(self) -> None:
        self.lam = float(self.hparams.loss.get("lam", 0.5))
        self.train_metrics = depth_metrics(prefix="train/", keys=("si_rmse_log", "rmse_log"))
        self.val_metrics = depth_metrics(prefix="val/")
        self.test_metrics = depth_metrics(prefix="test/")

    # -- forward ------------------------------------------------------------------------------
    def prepare(self, images: Tensor) -> Tensor:
        x = normalize_images(images)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, images: Tensor) -> Tensor:
        """uint8 or [0,1] float images (B,3,228,304) -> log depth (B,1,55,74)."""
        raise NotImplementedError

    def _finish_build(self) -> None:
        if self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)

    def configure_model(self) -> None:
        if self.hparams.compile:
            for net in self.trainable_nets():
                net.compile()

    def trainable_nets(self) -> list[nn.Module]:
        raise NotImplementedError

    # -- steps --------------------------------------------------------------------------------
    def _step(self, batch: dict, split: str) -> Tensor:
        log_pred = self(batch["image"])
        depth = batch["depth"]
        loss = scale_invariant_loss(log_pred, depth, lam=self.lam)
        metrics = getattr(self, f"{split}_metrics")
        metrics.update(torch.exp(log_pred.detach().float()), depth)
        bs = depth.shape[0]
        self.log(f"{split}/loss", loss, on_step=split == "train", on_epoch=True,
                 prog_bar=split == "train", batch_size=bs, sync_dist=split != "train")
        self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int) -> Tensor:
        return torch.exp(self(batch["image"]).float())

    # -- optimisation -------------------------------------------------------------------------
    def param_groups(self) -> list[dict]:
        """One named SGD group per layer, with that layer's learning rate from the config."""
        lrs: dict[str, float] = self.hparams.optim["lr"]
        wd = self.hparams.optim.get("weight_decay", 0.0)
        groups = []
        for net in self.trainable_nets():
            for name, layer in net.named_children():
                params = [p for p in layer.parameters() if p.requires_grad]
                if not params:
                    continue
                if name not in lrs:
                    raise ValueError(f"model.optim.lr: no learning rate for layer {name!r}")
                decay = wd.get(name, 0.0) if isinstance(wd, dict) else float(wd)
                groups.append({"name": name, "params": params, "lr": float(lrs[name]),
                               "weight_decay": float(decay)})
        return groups

    def configure_optimizers(self) -> Any:
        o = self.hparams.optim
        opt = torch.optim.SGD(self.param_groups(), lr=0.0, momentum=float(o["momentum"]),
                              nesterov=bool(o.get("nesterov", False)))
        s = dict(self.hparams.scheduler)
        name = s.get("name", "plateau")
        if name == "none":
            return opt
        if name == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
                opt, mode="min", factor=float(s["factor"]), patience=int(s["patience"]),
                threshold=float(s["threshold"]),
            )
            # Step only when the monitored value exists: once per validation run.
            every = int(getattr(self.trainer, "check_val_every_n_epoch", None) or 1)
            return {"optimizer": opt, "lr_scheduler": {
                "scheduler": sched, "monitor": s.get("monitor", "val/loss"),
                "interval": "epoch", "frequency": every}}
        if name == "cosine":
            total = max(1, int(self.trainer.estimated_stepping_batches))
            warmup = int(float(s.get("warmup_fraction", 0.05)) * total)
            floor = float(s.get("min_factor", 0.0))

            def factor(step: int) -> float:
                if step < warmup:
                    return (step + 1) / (warmup + 1)
                t = (step - warmup) / max(1, total - warmup)
                return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        raise ValueError(f"model.scheduler.name: unknown scheduler {name!r} "
                         "(plateau, cosine or none)")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["depth_lightning"] = {"stage": self.stage, "format": CHECKPOINT_FORMAT}


class CoarseStage(DepthStage):
    """Stage 1: the coarse network trained alone with the scale-invariant loss."""

    stage = "coarse"

    def __init__(
        self,
        net: dict | None = None,
        init: str = "kaiming_xavier",
        head_init: str = "default",
        head_scale: float = 0.01,
        loss: dict | None = None,
        optim: dict | None = None,
        scheduler: dict | None = None,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__()
        net = dict(net or {})
        loss = dict(loss or {"lam": 0.5})
        optim = {"momentum": 0.9, "lr": dict(COARSE_LR), "weight_decay": 0.0, **(optim or {})}
        scheduler = dict(scheduler or PLATEAU)
        if head_init not in ("default", "mean_map"):
            raise ValueError(f"model.head_init: {head_init!r} is not default or mean_map")
        self.save_hyperparameters(
            {"net": net, "init": init, "head_init": head_init, "head_scale": head_scale,
             "loss": loss, "optim": optim, "scheduler": scheduler,
             "channels_last": channels_last, "compile": compile}
        )
        self._build_metrics()
        self.coarse = CoarseNet(**net)
        init_weights(self.coarse, init)
        self._head_ready = head_init == "default"
        self._finish_build()

    def trainable_nets(self) -> list[nn.Module]:
        return [self.coarse]

    def setup(self, stage: str) -> None:
        # The mean-map head needs the training set's statistics, known only once data is set up;
        # a resumed fit restores its weights after this, so nothing is lost.
        if stage == "fit" and not self._head_ready:
            stats = self.trainer.datamodule.depth_statistics()
            init_coarse_head(self.coarse, stats["mean_log_depth"], self.hparams.head_scale)
            self._head_ready = True

    def forward(self, images: Tensor) -> Tensor:
        return self.coarse(self.prepare(images))


class FineStage(DepthStage):
    """Stage 2: the fine network on top of a frozen coarse network (no gradients, eval mode)."""

    stage = "fine"

    def __init__(
        self,
        coarse_ckpt: str | None = None,
        coarse_net: dict | None = None,
        init: str = "kaiming_xavier",
        fine_init: str = "default",
        loss: dict | None = None,
        optim: dict | None = None,
        scheduler: dict | None = None,
        channels_last: bool = True,
        compile: bool = False,
    ) -> None:
        super().__init__()
        state = None
        if coarse_ckpt:
            ckpt = load_checkpoint(coarse_ckpt, "coarse", setting="model.coarse_ckpt")
            coarse_net = ckpt["hyper_parameters"]["net"]
            state = {k[len("coarse."):]: v for k, v in ckpt["state_dict"].items()
                     if k.startswith("coarse.")}
        elif coarse_net is None:
            raise CheckpointError("model.coarse_ckpt: the fine stage needs a coarse checkpoint")
        loss = dict(loss or {"lam": 0.5})
        optim = {"momentum": 0.9, "lr": dict(FINE_LR), "weight_decay": 0.0, **(optim or {})}
        scheduler = dict(scheduler or PLATEAU)
        if fine_init not in ("default", "identity"):
            raise ValueError(f"model.fine_init: {fine_init!r} is not default or identity")
        # The coarse architecture is saved, not the path: a fine checkpoint carries the coarse
        # weights itself and reloads without the coarse file.
        self.save_hyperparameters(
            {"coarse_net": dict(coarse_net), "init": init, "fine_init": fine_init, "loss": loss,
             "optim": optim, "scheduler": scheduler, "channels_last": channels_last,
             "compile": compile}
        )
        self._build_metrics()
        self.coarse = CoarseNet(**coarse_net)
        if state is not None:
            self.coarse.load_state_dict(state)
        self.coarse.requires_grad_(False)
        self.coarse.eval()
        self.fine = FineNet()
        init_weights(self.fine, init)
        if fine_init == "identity":
            init_fine_identity(self.fine)
        self._finish_build()

    def trainable_nets(self) -> list[nn.Module]:
        return [self.fine]

    def train(self, mode: bool = True) -> FineStage:
        super().train(mode)
        self.coarse.eval()  # frozen: dropout off, whatever Lightning asks of the rest
        return self

    def coarse_log_depth(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self._frozen_coarse(x)(x)

    def _frozen_coarse(self, x: Tensor) -> nn.Module:
        """The frozen coarse network, or under low-precision autocast a copy of it already in
        that precision: autocast would otherwise cast all 77 M frozen weights again at every
        step (a sixth of a bf16 fine step on a CPU) to the same values. Rebuilt when the
        weights change (a checkpoint loaded in place) or move."""
        kind = x.device.type
        if not torch.is_autocast_enabled(kind):
            return self.coarse
        dtype = torch.get_autocast_dtype(kind)
        params = list(self.coarse.parameters())
        key = (dtype, params[0].device, tuple(p._version for p in params),
               tuple(p.data_ptr() for p in params))
        cached = self.__dict__.get("_coarse_copy")  # not a submodule: never saved or trained
        if cached is None or cached[0] != key:
            copy = deepcopy(self.coarse).to(dtype).eval()
            self.__dict__["_coarse_copy"] = cached = (key, copy)
        return cached[1]

    def forward(self, images: Tensor) -> Tensor:
        x = self.prepare(images)
        return self.fine(x, self.coarse_log_depth(x))

    def forward_both(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(coarse, coarse+fine) log depth in one pass, for evaluation and figures."""
        x = self.prepare(images)
        coarse = self.coarse_log_depth(x)
        return coarse, self.fine(x, coarse)


def load_stage(path: str | Path, setting: str = "ckpt_path") -> DepthStage:
    """The CoarseStage or FineStage saved in a depth_lightning checkpoint, in eval mode.

    The file is read once with `weights_only=True` (load_checkpoint refuses pickled code and
    files that are not depth_lightning checkpoints); the module is rebuilt from its saved
    primitive hyper-parameters, as `load_from_checkpoint` would, and given the saved weights.
    """
    if Path(path).is_dir():
        raise CheckpointError(f"{setting}: {path} is a folder; give a checkpoint file such as "
                              f"{Path(path) / 'fine' / 'checkpoints' / 'best.ckpt'}")
    ckpt = load_checkpoint(path, setting=setting)
    stage = ckpt["depth_lightning"]["stage"]
    cls = {"coarse": CoarseStage, "fine": FineStage}.get(stage)
    if cls is None:
        raise CheckpointError(f"{setting}: {path} holds an unknown stage {stage!r}")
    try:
        module = cls(**ckpt["hyper_parameters"])
        module.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{setting}: {path} does not hold a loadable {stage} stage "
                              f"({first})") from None
    return module.eval()
