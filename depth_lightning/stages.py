"""The training stage: one LightningModule for every stage of a run (coarse, fine, a third).

A stage trains its network `model.net` with its loss `model.loss`. A stage that builds on
another (fine on coarse) receives that stage's checkpoint as `base_ckpt`: the networks of the
stages below are rebuilt from it and frozen (no gradients, eval mode), and its own network
refines their output, ``net(images, base_log_depth)``. Hyper-parameters are kept primitive
(dicts, lists, numbers, strings) so that checkpoints reload under torch's `weights_only`
loading, and a checkpoint carries the frozen networks too: it reloads without its base file.
"""

from __future__ import annotations

import logging
import math
from copy import deepcopy
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from depth_lightning.checkpoints import CHECKPOINT_FORMAT, base_chain_of, load_checkpoint
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import INPUT_SIZE, OUTPUT_SIZE
from depth_lightning.losses import valid_mask
from depth_lightning.metrics import DepthMetrics, RMSELog, SIRMSELog
from depth_lightning.nets import init_weights, normalize_images
from depth_lightning.optim import build_optimizer, build_scheduler
from depth_lightning.plugins import build, check_log_depth, check_loss
from depth_lightning.protocols import TRAINING_TARGET
from depth_lightning.scoring import update_metrics
from depth_lightning.settings import mapping, number

HEAD_INITS = ("default", "mean_map")

log = logging.getLogger("depth_lightning")


class FrozenChain(nn.Module):
    """The stages a refining stage builds on: their networks in order, each refining the
    previous one's log depth, frozen (no gradients, always in eval mode)."""

    def __init__(self, specs: list[dict]) -> None:
        super().__init__()
        self.names = [s["name"] for s in specs]
        self.nets = nn.ModuleList(build(s["net"], f"{s['name']} stage net") for s in specs)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FrozenChain:
        return super().train(False)  # frozen: dropout off, whatever Lightning asks

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Normalised images -> {stage name: log depth}, bottom stage first."""
        out: dict[str, Tensor] = {}
        prev = None
        for name, net in zip(self.names, self.nets):
            prev = net(x) if prev is None else net(x, prev)
            out[name] = prev
        return out


class DepthStage(L.LightningModule):
    """One training stage: network, loss, optimiser groups and schedule, validation metrics.

    Args:
        name: the stage's name (its folder and its metrics.json key), e.g. ``coarse``.
        net: config of the network (a Hydra `_target_`).
        loss: config of the loss (a Hydra `_target_`).
        optim, scheduler: see depth_lightning.optim.
        init: initialisation scheme of the network's conv and linear layers (nets.init).
        head_init: ``mean_map`` starts the network at the training mean log-depth map through
            its `init_head(mean_log_depth, scale)` (CoarseNet has one), else ``default``.
        head_scale: the weight scale `init_head` is given.
        base_ckpt: checkpoint of the stage this one builds on (frozen below it).
        base: the frozen chain as saved in a checkpoint (``[{"name", "net"}, ...]``); set when
            reloading, instead of `base_ckpt`.
        clip_grad_norm: clip the gradient norm of this stage's network to this value before
            each step (``null``: no clipping).
        channels_last, compile: speed settings (memory format; torch.compile of the network).
    """

    def __init__(self, name: str, net: dict, loss: dict, optim: dict, scheduler: dict,
                 init: str = "kaiming_xavier", head_init: str = "default",
                 head_scale: float = 0.01, base_ckpt: str | None = None,
                 base: list[dict] | None = None, clip_grad_norm: float | None = None,
                 channels_last: bool = True, compile: bool = False) -> None:
        super().__init__()
        if head_init not in HEAD_INITS:
            raise DepthLightningError(f"model.head_init: {head_init!r} is not one of "
                                      f"{HEAD_INITS}")
        net, loss, optim, scheduler = (
            mapping(value, f"model.{key}", example) for value, key, example in (
                (net, "net", "model.net._target_=my.Net"),
                (loss, "loss", "model.loss.lam=0.5"),
                (optim, "optim", "model.optim.momentum=0.9"),
                (scheduler, "scheduler", "model.scheduler.name=cosine")))
        state = None
        if base_ckpt:
            ckpt = load_checkpoint(base_ckpt, setting="model.base_ckpt")
            base, state = base_chain_of(ckpt)
        self.save_hyperparameters(
            {"name": name, "net": dict(net), "loss": dict(loss), "optim": dict(optim),
             "scheduler": dict(scheduler), "init": init, "head_init": head_init,
             "head_scale": head_scale, "base": list(base or []),
             "clip_grad_norm": clip_grad_norm if clip_grad_norm is None else
             number(clip_grad_norm, "model.clip_grad_norm", minimum=0.0),
             "channels_last": channels_last, "compile": compile})
        self.name = name
        # The frozen networks are built before this stage's own: the order the random
        # initialisations are drawn in is part of a run's exact result.
        self.base = FrozenChain(self.hparams.base) if base else None
        if state is not None:
            self.base.load_state_dict(state)
        self.net = build(net, "model.net")
        self.loss_fn = build(loss, "model.loss")
        check_loss(self.loss_fn, "model.loss", OUTPUT_SIZE)
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
        self._head_ready = head_init == "default"
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self._check_net()

    def _check_net(self) -> None:
        """The network contract, checked once on a blank image (eval mode, no gradients)."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                blank = torch.zeros(1, 3, *INPUT_SIZE, dtype=torch.uint8)
                out = self.log_depths(self.prepare(blank))[self.name]
        except DepthLightningError:
            raise
        except Exception as e:
            how = "(images, base log depth)" if self.base is not None else "(images)"
            text = " ".join(str(e).split()) or type(e).__name__
            raise DepthLightningError(f"model.net: calling {type(self.net).__name__} as "
                                      f"{how} failed ({text})") from None
        finally:
            self.train(was_training)
        check_log_depth(out, "model.net", 1, OUTPUT_SIZE)

    # -- forward ------------------------------------------------------------------------------
    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the maps `log_depths` returns: the frozen stages', then this one's."""
        return (*(self.base.names if self.base is not None else ()), self.name)

    def prepare(self, images: Tensor) -> Tensor:
        """uint8 or [0,1] float images (B,3,228,304) -> the networks' normalised input."""
        x = normalize_images(images)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def log_depths(self, x: Tensor) -> dict[str, Tensor]:
        """Normalised input -> {stage name: log depth (B,1,55,74)} for this stage and those it
        builds on (the frozen ones without gradients)."""
        if self.base is None:
            return {self.name: self.net(x)}
        with torch.no_grad():
            out = self._frozen_base(x)(x)
        out[self.name] = self.net(x, out[self.base.names[-1]])
        return out

    def forward(self, images: Tensor) -> Tensor:
        """uint8 or [0,1] float images (B,3,228,304) -> log depth (B,1,55,74)."""
        return self.log_depths(self.prepare(images))[self.name]

    def _frozen_base(self, x: Tensor) -> nn.Module:
        """The frozen networks, or under low-precision autocast a copy of them already in that
        precision: autocast would otherwise cast all 77 M frozen coarse weights again at every
        step (a sixth of a bf16 fine step on a CPU) to the same values. Rebuilt when the weights
        change (a checkpoint loaded in place) or move."""
        kind = x.device.type
        if not torch.is_autocast_enabled(kind):
            return self.base
        dtype = torch.get_autocast_dtype(kind)
        params = list(self.base.parameters())
        key = (dtype, params[0].device, tuple(p._version for p in params),
               tuple(p.data_ptr() for p in params))
        cached = self.__dict__.get("_base_copy")  # not a submodule: never saved or trained
        if cached is None or cached[0] != key:
            copy = deepcopy(self.base).to(dtype).eval()
            self.__dict__["_base_copy"] = cached = (key, copy)
        return cached[1]

    # -- training -----------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        # The mean-map head needs the training set's statistics, known only once data is set up;
        # a resumed fit restores its weights after this, so nothing is lost.
        if stage == "fit" and not self._head_ready:
            self._head_ready = True
            if not hasattr(self.net, "init_head"):
                log.warning("model.head_init=mean_map: %s has no init_head(mean_log_depth, "
                            "scale); it starts as initialised", type(self.net).__name__)
                return
            stats = self.trainer.datamodule.depth_statistics()
            self.net.init_head(stats["mean_log_depth"], self.hparams.head_scale)

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
        update_metrics({self.name: self.val_metrics}, preds, batch, TRAINING_TARGET)
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
        sched = build_scheduler(opt, self.hparams.scheduler, self._total_steps(),
                                int(getattr(self.trainer, "check_val_every_n_epoch", None) or 1))
        return {"optimizer": opt, "lr_scheduler": sched}

    def _total_steps(self) -> int:
        """Optimiser steps of the whole fit, as Lightning's estimate counts them, but from the
        data module's split: asking Lightning would build the training loader before a resumed
        fit has restored where it stopped."""
        t = self.trainer
        dm = t.datamodule
        if t.max_steps is not None and t.max_steps > 0:
            return int(t.max_steps)
        if dm is None or getattr(dm, "train_idx", None) is None:
            return int(t.estimated_stepping_batches)
        batches = math.ceil(math.ceil(len(dm.train_idx) / t.world_size) / dm.batch_size)
        limit = t.limit_train_batches
        if isinstance(limit, int):
            batches = min(batches, limit)
        elif limit is not None and limit < 1.0:
            batches = int(batches * limit)
        return max(1, math.ceil(batches / t.accumulate_grad_batches) * max(t.max_epochs, 1))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        dm = self.trainer.datamodule if self._trainer is not None else None
        checkpoint["depth_lightning"] = {"stage": self.name, "format": CHECKPOINT_FORMAT,
                                         "columns": list(self.columns),
                                         "data": getattr(dm, "settings", None)}
