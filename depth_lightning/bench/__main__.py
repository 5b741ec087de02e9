"""Speed, measured side by side in one process: `python -m depth_lightning.bench`.

With the same batch of 32 frames at 3x228x304 it measures frames/s of
  (a) a plain PyTorch fp32 training loop of the coarse network (the reference), with the
      C library's allocator as it comes, and (a') again with the project's CPU allocator
      setting (`cpu_allocator=reuse`), which every later measurement shares,
  (b) the coarse stage trained through Lightning in fp32 (its overhead is against (a')),
  (c) the coarse stage through Lightning with the project's fast defaults
      (precision `auto`: bf16 autocast where native; channels_last),
  (d) the fine stage with the fast defaults,
  (e) the data loader alone, from the NYU-layout file and from its 320x240 cache,
  (f) inference of coarse+fine with the fast defaults, against a plain fp32 forward pass,
prints a table, and as its last line a JSON object with the figures. Timings are noisy on a
shared machine: run it when the CPU is otherwise idle. `--compile` also measures
`model.compile=true`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from depth_lightning.bench.modules import coarse_stage, fine_stage, synthetic_batch
from depth_lightning.bench.timing import timed
from depth_lightning.core.hardware import native_bf16, resolve_precision, reuse_freed_memory
from depth_lightning.losses import scale_invariant_loss
from depth_lightning.nets import CoarseNet, FineNet, init_weights, normalize_images


def plain_loop_rate(batch: dict, steps: int, device: torch.device) -> float:
    """(a) the reference: a hand-written fp32 loop, SGD with the paper's per-layer rates."""
    torch.manual_seed(0)
    net = CoarseNet().to(device)
    init_weights(net, "kaiming_xavier")
    lrs = {"coarse6": 0.1, "coarse7": 0.1}
    opt = torch.optim.SGD([{"params": m.parameters(), "lr": lrs.get(n, 1e-3)}
                           for n, m in net.named_children() if list(m.parameters())],
                          lr=1e-3, momentum=0.9)
    images, depth = batch["image"].to(device), batch["depth"].to(device)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = scale_invariant_loss(net(normalize_images(images)), depth, lam=0.5)
        loss.backward()
        opt.step()

    return images.shape[0] / timed(step, steps, 1, device)


class _Repeat(torch.utils.data.Dataset):
    """The same batch, `n` times: Lightning's loop runs on identical data to the plain loop."""

    def __init__(self, batch: dict, n: int) -> None:
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return self.batch


def lightning_rate(module: L.LightningModule, batch: dict, steps: int, precision: str,
                   accelerator: str) -> float:
    """(b)-(d): frames/s of `trainer.fit` over `steps` steps (the first, warm-up, excluded)."""
    loader = DataLoader(_Repeat(batch, steps + 1), batch_size=None)
    times: list[float] = []

    class Clock(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, b, i) -> None:
            if i == 1:
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                times.append(time.perf_counter())

        def on_train_end(self, trainer, pl_module) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(max_steps=steps + 1, accelerator=accelerator, devices=1,
                            precision=precision, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, num_sanity_val_steps=0, callbacks=[Clock()],
                            default_root_dir=tmp)
        trainer.fit(module, train_dataloaders=loader)
    return steps * batch["image"].shape[0] / (times[1] - times[0])


def inference_rates(batch: dict, steps: int, device: torch.device, precision: str
                    ) -> tuple[float, float]:
    """(f) coarse+fine inference: plain fp32 forward of both nets vs the fast defaults."""
    torch.manual_seed(0)
    coarse, fine = CoarseNet().to(device).eval(), FineNet().to(device).eval()
    images = batch["image"].to(device)

    def plain() -> None:
        with torch.no_grad():
            x = normalize_images(images)
            fine(x, coarse(x))

    module = fine_stage().to(device).eval()
    bf16 = str(precision).startswith("bf16")
    ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext

    def fast() -> None:
        with torch.inference_mode(), ctx():
            module(images)

    n = images.shape[0]
    return n / timed(plain, steps, 1, device), n / timed(fast, steps, 1, device)


def measured_loader(data: Path | None, batches: int, batch: int) -> dict[str, float]:
    """(e): the loader's frames/s from `data`, else from a 256-frame SynthRooms file."""
    from depth_lightning.bench.loader import loader_rates

    with tempfile.TemporaryDirectory() as tmp:
        path = data
        if path is None:
            from depth_lightning.data.synthrooms import ensure_synthrooms

            path = ensure_synthrooms(tmp, n_frames=256, seed=0)
        return loader_rates(Path(path), batches=batches, batch=batch)


def print_results(rows: list[tuple[str, float]], res: dict, batch: int) -> None:
    """The table, the ratios, and the figures as one JSON line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"frames/s, batch {batch} at 3x228x304 on {res['device']}")
    table.add_column("measurement")
    table.add_column("frames/s", justify="right")
    for name, value in rows:
        table.add_row(name, f"{value:.1f}")
    Console().print(table)
    p, p_same = res["plain_fp32_img_s"], res["plain_fp32_same_alloc_img_s"]
    print(f"fast coarse / plain fp32: {res['coarse_img_s'] / p:.2f}x (/ plain fp32 with the "
          f"same allocator: {res['coarse_img_s'] / p_same:.2f}x); Lightning fp32 overhead: "
          f"{(1 - res['lightning_fp32_img_s'] / p_same) * 100:+.1f}%; inference fast / plain: "
          f"{res['infer_img_s'] / res['infer_plain_fp32_img_s']:.2f}x" +
          (f"; loader / fast coarse: {res['loader_img_s'] / res['coarse_img_s']:.1f}x"
           if "loader_img_s" in res else ""))
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in res.items()}))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m depth_lightning.bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--batch", type=int, default=32, help="frames per batch (default 32)")
    parser.add_argument("--data", type=Path, default=None,
                        help="NYU-layout file for the loader measurement (default: a 256-frame "
                             "SynthRooms file generated in a temporary folder)")
    parser.add_argument("--compile", action="store_true", help="also measure model.compile")
    parser.add_argument("--skip-loader", action="store_true")
    args = parser.parse_args(argv)

    accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    device = torch.device("cuda" if accelerator == "gpu" else "cpu")
    fast = resolve_precision("auto")
    batch = synthetic_batch(args.batch)
    rows: list[tuple[str, float]] = []
    res: dict[str, float | str] = {"device": torch.cuda.get_device_name() if accelerator == "gpu"
                                   else "cpu", "fast_precision": str(fast),
                                   "native_bf16": native_bf16()}

    res["plain_fp32_img_s"] = plain_loop_rate(batch, args.steps, device)
    rows.append(("(a) plain PyTorch loop, coarse, fp32", res["plain_fp32_img_s"]))
    # From here on, the allocator as training sets it up (on the CPU only).
    res["cpu_allocator"] = "reuse" if device.type == "cpu" and reuse_freed_memory() else "system"
    res["plain_fp32_same_alloc_img_s"] = (plain_loop_rate(batch, args.steps, device)
                                          if res["cpu_allocator"] == "reuse"
                                          else res["plain_fp32_img_s"])
    rows.append((f"(a') plain PyTorch loop, coarse, fp32, allocator {res['cpu_allocator']}",
                 res["plain_fp32_same_alloc_img_s"]))
    res["lightning_fp32_img_s"] = lightning_rate(
        coarse_stage("model.channels_last=false"), batch, args.steps, "32-true", accelerator)
    rows.append(("(b) Lightning, coarse, fp32", res["lightning_fp32_img_s"]))
    res["coarse_img_s"] = lightning_rate(coarse_stage(), batch, args.steps, fast, accelerator)
    rows.append((f"(c) Lightning, coarse, fast defaults ({fast}, channels_last)",
                 res["coarse_img_s"]))
    if args.compile:
        res["coarse_compiled_img_s"] = lightning_rate(
            coarse_stage("model.compile=true"), batch, args.steps, fast, accelerator)
        rows.append(("(c') Lightning, coarse, fast defaults + torch.compile",
                     res["coarse_compiled_img_s"]))
    res["fine_img_s"] = lightning_rate(fine_stage(), batch, args.steps, fast, accelerator)
    rows.append(("(d) Lightning, fine (frozen coarse), fast defaults", res["fine_img_s"]))
    if not args.skip_loader:
        rates = measured_loader(args.data, max(4, args.steps), args.batch)
        res["loader_file_img_s"], res["loader_img_s"] = rates["file"], rates["cache"]
        rows.append(("(e) loader from the NYU-layout file (1 process)", rates["file"]))
        rows.append((f"(e) loader from the cache ({int(rates['workers'])} worker(s), "
                     "training transforms)", rates["cache"]))
    res["infer_plain_fp32_img_s"], res["infer_img_s"] = inference_rates(
        batch, args.steps, device, fast)
    rows.append(("(f) inference coarse+fine, plain fp32", res["infer_plain_fp32_img_s"]))
    rows.append(("(f) inference coarse+fine, fast defaults", res["infer_img_s"]))

    print_results(rows, res, args.batch)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
