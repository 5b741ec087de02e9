"""Adversarial training of a stage (the seed's future work, after Jung et al. 2017 and Chen et
al. 2018): a conditional PatchGAN discriminator with spectral normalisation judges (RGB, log
depth) pairs at 55x74, and the stage's network is trained against it, alternately, through
Lightning's manual optimisation. Generator loss = the stage's own loss + w x adversarial loss.

Checkpoints stay those of a plain :class:`~depth_lightning.models.fine.FineStage`: their
hyper-parameters and ``state_dict`` hold only the depth networks, so `load_stage`, `evaluate`,
`predict`, a later stage building on this one and `model.coarse_ckpt` read them unchanged.
The discriminator's weights and settings travel beside them under ``checkpoint["adversarial"]``
(its optimiser with the others in ``optimizer_states``), and a resumed fit puts them back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from depth_lightning.core.settings import mapping, number, whole_number
from depth_lightning.errors import DepthLightningError
from depth_lightning.geometry import OUTPUT_SIZE
from depth_lightning.losses import valid_mask
from depth_lightning.losses.adversarial import (
    ADVERSARIAL_LOSSES,
    discriminator_loss,
    generator_loss,
)
from depth_lightning.models.fine import FineStage
from depth_lightning.nets.discriminator import PatchDiscriminator

DEFAULTS = {"weight": 0.01, "loss": "hinge", "d_lr": 2e-4, "d_betas": [0.5, 0.999],
            "d_steps": 1, "width": 64, "noise": 0.1, "centre": True, "depth_gain": 4.0}


def masked_image_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of each image of `x` (B,1,H,W) over its `mask`ed pixels, (B,1,1,1); 0 for an image
    without one."""
    m = mask.to(x.dtype)
    return (x * m).sum((1, 2, 3), keepdim=True) / m.sum((1, 2, 3), keepdim=True).clamp(min=1)


def discriminator_view(log_depth: Tensor, mask: Tensor, noise: float = 0.0,
                       centre: bool = True, gain: float = 1.0) -> Tensor:
    """The log depth (B,1,H,W) as D sees it: plus Gaussian noise of std `noise`, minus each
    image's mean over `mask` if `centre`, times `gain`, and 0 outside `mask`."""
    d = log_depth + noise * torch.randn_like(log_depth) if noise > 0 else log_depth
    if centre:
        d = d - masked_image_mean(d, mask)
    return torch.where(mask, d * gain, 0.0)


def judged_pair(x: Tensor, depth: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """What D is shown besides a predicted map, from the stage's normalised input `x` and the
    batch's depth: the condition (RGB averaged down to 55x74), the true log depth (1 m, log 0,
    at holes) and the valid mask, each (B,C,55,74)."""
    mask = valid_mask(depth).reshape(depth.shape[0], 1, *OUTPUT_SIZE)
    rgb = F.adaptive_avg_pool2d(x.float(), OUTPUT_SIZE)
    real = torch.log(torch.where(mask, depth.reshape(mask.shape).float(), 1.0))
    return rgb, real, mask


def adversarial_settings(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """`model.adversarial`, checked, with the defaults for what is not given."""
    given = dict(mapping(cfg or {}, "model.adversarial", "model.adversarial.weight=0.01"))
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise DepthLightningError(f"model.adversarial.{unknown[0]}: unknown setting (known: "
                                  f"{', '.join(DEFAULTS)})")
    s = {**DEFAULTS, **given}
    if s["loss"] not in ADVERSARIAL_LOSSES:
        raise DepthLightningError(f"model.adversarial.loss: {s['loss']!r} is not one of "
                                  f"{ADVERSARIAL_LOSSES}")
    s["weight"] = number(s["weight"], "model.adversarial.weight", minimum=0.0)
    s["d_lr"] = number(s["d_lr"], "model.adversarial.d_lr", minimum=0.0)
    s["d_steps"] = whole_number(s["d_steps"], "model.adversarial.d_steps")
    s["width"] = whole_number(s["width"], "model.adversarial.width")
    s["noise"] = number(s["noise"], "model.adversarial.noise", minimum=0.0)
    s["depth_gain"] = number(s["depth_gain"], "model.adversarial.depth_gain", minimum=0.0)
    if not isinstance(s["centre"], bool):
        raise DepthLightningError(f"model.adversarial.centre: must be true or false, got "
                                  f"{s['centre']!r}")
    betas = s["d_betas"]
    if not (isinstance(betas, (list, tuple)) and len(betas) == 2
            and all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas)):
        raise DepthLightningError(f"model.adversarial.d_betas: must be two numbers in [0, 1), "
                                  f"got {betas!r}")
    s["d_betas"] = [float(b) for b in betas]
    return s


class AdversarialStage(FineStage):
    """A :class:`~depth_lightning.models.fine.FineStage` trained against a conditional
    discriminator.

    Args:
        adversarial: ``weight`` (w of the adversarial term), ``loss`` (``hinge`` or
            ``non_saturating``), ``d_lr`` and ``d_betas`` (D's Adam), ``d_steps`` (D updates
            per G update, on the same batch), ``width`` (D's first layer's channels),
            ``noise`` (std of the Gaussian "instance noise" added to the log depth D sees,
            real and fake alike, while training: Sønderby et al. 2017; it keeps D from
            separating the two perfectly, which would leave G no useful gradient),
            ``centre`` (subtract each image's mean log depth over its valid pixels: D judges
            the shape of the depth map, not its global scale, which the scale-invariant loss
            leaves partly free) and ``depth_gain`` (the factor on the log depth D sees).
            Spectral normalisation caps the gain of D's first layer at 1, so the log depth's
            structure (steps of 0.1-0.5 within an image) would stay small beside the
            normalised RGB (unit scale) and D would learn it slowly: on the fine stage's
            maps of a `make train` run, D alone reached 0.56 balanced accuracy after 400
            steps on raw log depth and 0.76 on centred log depth x 4
            (`python -m depth_lightning.bench.discriminator`, docs/experiments/after-2014.md).
        others: as :class:`~depth_lightning.models.fine.FineStage`.

    Logged per epoch: ``train/d_loss``, ``train/g_adv`` (G's adversarial term),
    ``train/g_loss`` (stage loss + w x g_adv), ``train/d_acc_real`` and ``train/d_acc_fake``
    (share of patches D calls right: logit > 0 for real, < 0 for fake) and ``train/d_acc``
    (their mean: 0.5 = D tells nothing apart, 1.0 = it separates them perfectly), which is
    also logged every ``trainer.log_every_n_steps`` batches as ``train/d_acc_step``;
    ``train/loss`` stays the stage's own loss, comparable with a plain stage's.
    """

    def __init__(self, *args: Any, adversarial: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.adversarial = adversarial_settings(adversarial)
        self.automatic_optimization = False
        # built after the stage's own network: that one starts exactly as in a plain stage
        self.disc = PatchDiscriminator(self.adversarial["width"])
        if self.hparams.channels_last:
            self.disc.to(memory_format=torch.channels_last)

    # -- the pairs D sees -----------------------------------------------------------------------
    def _judge(self, rgb: Tensor, log_depth: Tensor, mask: Tensor) -> Tensor:
        """D's patch logits for (RGB, log depth), in fp32 (GANs are touchy), with instance
        noise, and the ground truth's holes zeroed in real and fake alike (so that D cannot
        tell them apart by where the holes are); centred per image and scaled as set."""
        with torch.autocast(rgb.device.type, enabled=False):
            s = self.adversarial
            d = discriminator_view(log_depth.float(), mask, s["noise"], s["centre"],
                                   s["depth_gain"])
            return self.disc(rgb, d).float()

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        g_opt, d_opt = self.optimizers()
        depth = batch["depth"]
        x = self.prepare(batch["image"])
        rgb, real, mask = judged_pair(x, depth)
        fake = self.log_depths(x)[self.name]
        kind, stats = self.adversarial["loss"], {}
        for _ in range(self.adversarial["d_steps"]):
            d_real, d_fake = self._judge(rgb, real, mask), self._judge(rgb, fake.detach(), mask)
            d_loss = discriminator_loss(kind, d_real, d_fake)
            d_opt.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            d_opt.step()
        stats["d_loss"] = d_loss.detach()
        stats["d_acc_real"] = (d_real.detach() > 0).float().mean()
        stats["d_acc_fake"] = (d_fake.detach() < 0).float().mean()
        stats["d_acc"] = (stats["d_acc_real"] + stats["d_acc_fake"]) / 2  # balanced accuracy
        self.disc.requires_grad_(False)  # G's step: no gradients for D's weights
        stats["g_adv"] = generator_loss(kind, self._judge(rgb, fake, mask))
        self.disc.requires_grad_(True)
        loss = self.loss_fn(fake, depth, mask.reshape(depth.shape))
        g_loss = loss + self.adversarial["weight"] * stats["g_adv"]
        g_opt.zero_grad(set_to_none=True)
        self.manual_backward(g_loss)
        clip = self.hparams.get("clip_grad_norm")
        if clip:  # manual optimisation: Lightning would not call configure_gradient_clipping
            self.clip_gradients(g_opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        g_opt.step()
        self._step_schedule("step")
        self._log_training(loss, g_loss, stats, fake, depth)
        return g_loss.detach()

    def _log_training(self, loss: Tensor, g_loss: Tensor, stats: dict[str, Tensor],
                      fake: Tensor, depth: Tensor) -> None:
        bs = depth.shape[0]
        self.train_metrics.update(torch.exp(fake.detach().float()), depth)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=bs)
        self.log("train/g_loss", g_loss, on_step=False, on_epoch=True, batch_size=bs)
        self.log_dict({f"train/{k}": v.detach() for k, v in stats.items()}, on_step=False,
                      on_epoch=True, batch_size=bs)
        # D's balanced accuracy every log_every_n_steps as well: is it pinned, and since when?
        self.log("train/d_acc_step", stats["d_acc"], on_step=True, on_epoch=False,
                 batch_size=bs)
        self.log_dict(self.train_metrics, on_step=False, on_epoch=True, batch_size=bs)

    # -- optimisers and schedule (manual optimisation steps them itself) ----------------------
    def configure_optimizers(self) -> Any:
        g = super().configure_optimizers()
        d_opt = torch.optim.Adam([{"name": "disc", "params": self.disc.parameters()}],
                                 lr=self.adversarial["d_lr"], betas=self.adversarial["d_betas"])
        if isinstance(g, dict):
            return [g["optimizer"], d_opt], [g["lr_scheduler"]]
        return [g, d_opt]

    def _step_schedule(self, interval: str) -> None:
        """Step the stage's own schedule: per step (cosine), or per epoch on the monitored
        value (plateau, when validation logged it)."""
        configs = self.trainer.lr_scheduler_configs
        if not configs or configs[0].interval != interval:
            return
        sched = configs[0].scheduler
        if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
            value = self.trainer.callback_metrics.get(configs[0].monitor)
            if value is not None and math.isfinite(float(value)):
                sched.step(float(value))
        else:
            sched.step()

    def on_train_epoch_end(self) -> None:
        self._step_schedule("epoch")

    # -- checkpoints: a plain FineStage's, D beside it ----------------------------------------
    @classmethod
    def inference_class(cls) -> type[FineStage]:
        return FineStage

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        state = checkpoint.get("state_dict", {})
        disc = {k[len("disc."):]: state.pop(k) for k in [k for k in state if
                                                          k.startswith("disc.")]}
        checkpoint["adversarial"] = {"settings": dict(self.adversarial), "disc": disc}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        saved = checkpoint.get("adversarial")
        if saved is None:  # a plain stage's checkpoint: D starts afresh
            own = self.disc.state_dict()
        else:
            own = saved["disc"]
        checkpoint.setdefault("state_dict", {}).update({f"disc.{k}": v for k, v in own.items()})
