"""The stage base: one LightningModule per stage of a run, sharing what every stage does.

A stage trains its network `model.net` with its loss `model.loss`, per-layer optimiser groups
and a schedule (`model.optim`, `model.scheduler`), and scores itself on the validation frames.
:class:`DepthStage` is the generic stage a plug-in network trains in (images -> log depth);
:class:`~depth_lightning.models.coarse.CoarseStage` and
:class:`~depth_lightning.models.fine.FineStage` add what is their own. Hyper-parameters are kept
primitive (dicts, lists, numbers, strings) so that checkpoints reload under torch's
`weights_only` loading.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from depth_lightning.core.plugins import build, check_log_depth, check_loss, takes
from depth_lightning.core.settings import mapping, number
from depth_lightning.errors import DepthLightningError
from depth_lightning.evaluation.metrics import DepthMetrics, RMSELog, SIRMSELog
from depth_lightning.evaluation.protocols import TRAINING_TARGET
from depth_lightning.evaluation.scoring import update_metrics
from depth_lightning.geometry import FrameGeometry, geometry_of
from depth_lightning.losses import valid_mask
from depth_lightning.models.checkpoints import CHECKPOINT_FORMAT, class_path
from depth_lightning.models.optim import build_optimizer, build_scheduler, total_steps
from depth_lightning.models.weights import load_net_weights
from depth_lightning.nets import init_weights, normalize_images


class DepthStage(L.LightningModule):
    """One training stage: network, loss, optimiser groups and schedule, validation metrics.

    Args:
        name: the stage's name (its folder and its metrics.json key), e.g. ``coarse``.
        net: config of the network (a Hydra `_target_`).
        loss: config of the loss (a Hydra `_target_`).
        optim, scheduler: see depth_lightning.models.optim.
        init: initialisation scheme of the network's conv and linear layers (nets.init).
        clip_grad_norm: clip the gradient norm of this stage's network to this value before
            each step (``null``: no clipping).
        channels_last, compile: speed settings (memory format; torch.compile of the network).
        geometry: the data's frame chain (depth_lightning.geometry: `nyu`, `kitti`, or its
            sizes), the model config takes it from `data.geometry`; a network whose constructor
            has a `geometry` parameter is given it (saved with the network's settings).
        frozen: the frozen stages below this one, built by a refining stage before this
            stage's own network (the order the random initialisations are drawn in is part of
            a run's exact result); not a setting.
        own: the subclass's own settings, saved with these.
    """

    #: how the network is called, for the contract's error message
    call_signature = "(images)"

    def __init__(self, name: str, net: dict, loss: dict, optim: dict, scheduler: dict,
                 init: str = "kaiming_xavier", clip_grad_norm: float | None = None,
                 channels_last: bool = True, compile: bool = False,
                 geometry: str | dict | None = None, frozen: nn.Module | None = None,
                 **own: Any) -> None:
        super().__init__()
        net, loss, optim, scheduler = (
            mapping(value, f"model.{key}", example) for value, key, example in (
                (net, "net", "model.net._target_=my.Net"),
                (loss, "loss", "model.loss.lam=0.5"),
                (optim, "optim", "model.optim.momentum=0.9"),
                (scheduler, "scheduler", "model.scheduler.name=cosine")))
        self.geometry: FrameGeometry = geometry_of(geometry, "model.geometry")
        # pretrained weights from a file (model.net.weights), loaded when training starts
        self.net_weights = net.get("weights")
        net = {k: v for k, v in net.items() if k != "weights"}
        if "geometry" not in net and takes(net.get("_target_"), "geometry"):
            net = {**net, "geometry": self.geometry.settings()}
        self.save_hyperparameters(
            {"name": name, "net": dict(net), "loss": dict(loss), "optim": dict(optim),
             "scheduler": dict(scheduler), "init": init, **own,
             "clip_grad_norm": clip_grad_norm if clip_grad_norm is None else
             number(clip_grad_norm, "model.clip_grad_norm", minimum=0.0),
             "channels_last": channels_last, "compile": compile,
             "geometry": self.geometry.settings()})
        self.name = name
        self.base = frozen
        self.net = build(net, "model.net")
        self.loss_fn = build(loss, "model.loss")
        check_loss(self.loss_fn, "model.loss", self.geometry.output)
        self.train_metrics = MetricCollection(
            {"si_rmse_log": SIRMSELog(), "rmse_log": RMSELog()}, prefix="train/",
            compute_groups=False)
        self.val_metrics = DepthMetrics(prefix="val/", min_depth=TRAINING_TARGET.min_depth,
                                        max_depth=TRAINING_TARGET.max_depth)
        try:
            init_weights(self.net, init)
        except ValueError as e:
            raise DepthLightningError(str(e)) from None
        if hasattr(self.net, "post_init"):  # a network's own start (FineNet's identity)
            self.net.post_init()
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self._check_net()

    def _check_net(self) -> None:
        """The network contract, checked once on a blank image (eval mode, no gradients)."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                blank = torch.zeros(1, 3, *self.geometry.input, dtype=torch.uint8)
                out = self.log_depths(self.prepare(blank))[self.name]
        except DepthLightningError:
            raise
        except Exception as e:
            text = " ".join(str(e).split()) or type(e).__name__
            raise DepthLightningError(f"model.net: calling {type(self.net).__name__} as "
                                      f"{self.call_signature} failed ({text})") from None
        finally:
            self.train(was_training)
        check_log_depth(out, "model.net", 1, self.geometry.output)

    # -- forward ------------------------------------------------------------------------------
    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the maps `log_depths` returns, bottom stage first."""
        return (self.name,)

    def prepare(self, images: Tensor) -> Tensor:
        """uint8 or [0,1] float images (B,3,228,304) -> the networks' normalised input."""
        x = normalize_images(images)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def log_depths(self, x: Tensor) -> dict[str, Tensor]:
        """Normalised input -> {stage name: log depth (B,1,55,74)}."""
        return {self.name: self.net(x)}

    def forward(self, images: Tensor) -> Tensor:
        """uint8 or [0,1] float images (B,3,228,304) -> log depth (B,1,55,74)."""
        return self.log_depths(self.prepare(images))[self.name]

    # -- training -----------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        # Before a resumed fit restores its checkpoint, which then wins.
        if stage == "fit" and self.net_weights and not getattr(self, "_weights_loaded", False):
            self._weights_loaded = True
            load_net_weights(self.net, self.net_weights)

    def configure_model(self) -> None:
        if self.hparams.compile:
            self.net.compile()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        depth = batch["depth"]
        log_pred = self(batch["image"])
        loss = self.loss_fn(log_pred, depth, valid_mask(depth))
        self.train_metrics.update(torch.exp(log_pred.detach().float()), depth)
        bs = depth.shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=bs)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=bs)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> dict[str, Tensor]:
        """Loss and metrics at the 55x74 target; returns every map predicted (for panels)."""
        depth = batch["depth"]
        logs = self.log_depths(self.prepare(batch["image"]))
        loss = self.loss_fn(logs[self.name], depth, valid_mask(depth))
        self.log("val/loss", loss, on_epoch=True, batch_size=depth.shape[0], sync_dist=True)
        preds = {k: torch.exp(v.detach().float()) for k, v in logs.items()}
        update_metrics({self.name: self.val_metrics}, preds, batch, TRAINING_TARGET,
                       self.geometry)
        return preds

    def on_validation_epoch_end(self) -> None:
        # computed over every process's frames (the states are summed), logged as they are
        values = self.val_metrics.compute()
        self.val_metrics.reset()
        self.log_dict(values, batch_size=1)

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer,
                                    gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        # a per-stage setting: the trainer's gradient_clip_val is shared by every stage
        value = self.hparams.get("clip_grad_norm") or gradient_clip_val
        if value:
            self.clip_gradients(optimizer, gradient_clip_val=value,
                                gradient_clip_algorithm=gradient_clip_algorithm or "norm")

    def configure_optimizers(self) -> Any:
        opt = build_optimizer(self.net, self.hparams.optim)
        if self.hparams.scheduler.get("name") == "none":
            return opt
        sched = build_scheduler(opt, self.hparams.scheduler, total_steps(self.trainer),
                                int(getattr(self.trainer, "check_val_every_n_epoch", None) or 1))
        return {"optimizer": opt, "lr_scheduler": sched}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        dm = self.trainer.datamodule if self._trainer is not None else None
        checkpoint["depth_lightning"] = {"stage": self.name, "format": CHECKPOINT_FORMAT,
                                         "module": class_path(self.inference_class()),
                                         "columns": list(self.columns),
                                         "data": getattr(dm, "settings", None)}

    @classmethod
    def inference_class(cls) -> type[DepthStage]:
        """The class a checkpoint of this stage is rebuilt as for scoring and prediction."""
        return cls

