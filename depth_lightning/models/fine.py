"""The fine stage: a network refining the log depth of the frozen stages below it.

It receives the stage it builds on as a checkpoint (`base_ckpt`, or `coarse_ckpt` when used on
its own): the networks of that stage and of those below it are rebuilt from it and frozen (no
gradients, eval mode), and its own network refines their output, ``net(images,
base_log_depth)``. A checkpoint of a fine stage carries the frozen networks too
(hyper-parameter ``base`` and their weights): it reloads without its base file.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import torch
from torch import Tensor, nn

from depth_lightning.core.plugins import build
from depth_lightning.errors import DepthLightningError
from depth_lightning.models.checkpoints import base_chain_of, load_checkpoint
from depth_lightning.models.stage import DepthStage


class FrozenChain(nn.Module):
    """The stages a refining stage builds on: their networks in order, each refining the
    previous one's log depth, frozen (no gradients, always in eval mode)."""

    def __init__(self, specs: list[dict]) -> None:
        super().__init__()
        self.names = [s["name"] for s in specs]
        # (a frozen network's weights come from its stage's checkpoint, never from a file)
        self.nets = nn.ModuleList(build({k: v for k, v in s["net"].items() if k != "weights"},
                                        f"{s['name']} stage net") for s in specs)
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


def frozen_chain(base_ckpt: str | None, coarse_ckpt: str | None, base: list[dict] | None
                 ) -> tuple[list[dict], FrozenChain]:
    """The specs and the frozen networks of the stages below a fine stage: from the checkpoint
    of the stage it builds on, or as saved in its own checkpoint (`base`, weights loaded
    later)."""
    if base_ckpt and coarse_ckpt and str(base_ckpt) != str(coarse_ckpt):
        raise DepthLightningError(f"model.coarse_ckpt: {coarse_ckpt} is not the checkpoint "
                                  f"this stage builds on ({base_ckpt})")
    given, state = base_ckpt or coarse_ckpt, None
    if given:
        setting = "model.base_ckpt" if base_ckpt else "model.coarse_ckpt"
        base, state = base_chain_of(load_checkpoint(given, setting=setting))
    if not base:
        raise DepthLightningError("model: a fine stage builds on another stage (a stage entry "
                                  "with builds_on, or model.coarse_ckpt=PATH)")
    chain = FrozenChain(list(base))
    if state is not None:
        chain.load_state_dict(state)
    return list(base), chain


class FineStage(DepthStage):
    """A stage refining the frozen stages below it (the fine network on the coarse one).

    Args:
        base_ckpt: checkpoint of the stage this one builds on (the training job gives it).
        coarse_ckpt: the same, for a fine stage built on its own from a coarse checkpoint.
        base: the frozen chain as saved in a checkpoint (``[{"name", "net"}, ...]``); set when
            reloading, instead of a checkpoint.
        others: as :class:`~depth_lightning.models.stage.DepthStage`.
    """

    call_signature = "(images, base log depth)"

    def __init__(self, *args: Any, base_ckpt: str | None = None, coarse_ckpt: str | None = None,
                 base: list[dict] | None = None, **kwargs: Any) -> None:
        # The frozen networks are built before this stage's own: the order the random
        # initialisations are drawn in is part of a run's exact result.
        specs, chain = frozen_chain(base_ckpt, coarse_ckpt, base)
        super().__init__(*args, frozen=chain, base=specs, **kwargs)

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the maps `log_depths` returns: the frozen stages', then this one's."""
        return (*self.base.names, self.name)

    def log_depths(self, x: Tensor) -> dict[str, Tensor]:
        """Normalised input -> {stage name: log depth (B,1,55,74)} for this stage and those it
        builds on (the frozen ones without gradients)."""
        with torch.no_grad():
            out = self._frozen_base(x)(x)
        out[self.name] = self.net(x, out[self.base.names[-1]])
        return out

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
