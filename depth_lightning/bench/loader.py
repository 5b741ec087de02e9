"""Data loader speed against training speed: `python -m depth_lightning.bench.loader`.

Prints the training loader's frames/s (train transforms, batch 32, from the 320x240 cache, with
DepthDataModule's default worker count) against the coarse training step's frames/s (forward,
backward, SGD step at batch 32; fp32, and the fast default: bf16 autocast where the hardware runs
it natively, plus channels_last), and their ratio: the loader must deliver at least 5x the
training rate so it never holds training up. It also prints the peak resident memory of this
process and of its largest child (cache builders, loader workers): the labeled file is read one
frame at a time and the cache is memory-mapped, so memory does not grow with the file.

Without `--path` it uses a SynthRooms file (NYU V2 layout) generated into a temporary folder;
`--fake-frames N` writes an N-frame V2-layout file of noise instead (fast to write, for memory on
a large file). Timings are noisy on a shared machine: run it when the CPU is otherwise idle.
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from depth_lightning.bench.modules import coarse_stage, train_config
from depth_lightning.bench.timing import timed
from depth_lightning.core.hardware import native_bf16, reuse_freed_memory
from depth_lightning.core.plugins import build
from depth_lightning.data.cache import input_frame
from depth_lightning.data.datamodule import DepthDataModule
from depth_lightning.data.transforms import JointTransform
from depth_lightning.models.optim import build_optimizer

REQUIRED_RATIO = 5.0


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident set size (MB) of this process and of its largest waited-for child."""
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 2**20  # Linux: kB, macOS: bytes
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return own, child


class RssSampler:
    """Peak anonymous and file-backed resident memory of this process (Linux /proc), sampled
    every 50 ms in a thread: file-backed pages (the memory-mapped cache, libraries) are page
    cache the kernel can reclaim, anonymous pages are what the process really holds."""

    def __init__(self) -> None:
        import threading

        self.peak = {"RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.available = Path("/proc/self/status").is_file()
        if self.available:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for line in Path("/proc/self/status").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key in self.peak:
                        self.peak[key] = max(self.peak[key], int(value.split()[0]) // 1024)
            except OSError:
                return
            self._stop.wait(0.05)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        if self.available:
            self._thread.join()
        return self.peak


def write_fake_v2(path: str | Path, n: int, seed: int = 0) -> Path:
    """An N-frame file in the NYU V2 h5py layout (images, depths, rawDepths; no scenes) of
    smooth noise, written frame by frame (one chunk per frame, like a streamed copy)."""
    import h5py

    rng = np.random.default_rng(seed)
    path = Path(path)
    base = np.linspace(1.0, 6.0, 480, dtype=np.float32)[None, :] * np.ones((640, 1), np.float32)
    with h5py.File(path, "w") as f:
        img = f.create_dataset("images", (n, 3, 640, 480), np.uint8, chunks=(1, 3, 640, 480))
        dep = f.create_dataset("depths", (n, 640, 480), np.float32, chunks=(1, 640, 480))
        raw = f.create_dataset("rawDepths", (n, 640, 480), np.float32, chunks=(1, 640, 480))
        for i in range(n):
            img[i] = rng.integers(0, 256, (3, 640, 480), dtype=np.uint8)
            d = base * (1.0 + 0.3 * rng.random())
            dep[i] = d
            r = d.copy()
            r[:, :40] = 0
            raw[i] = r
    return path


def data_module(path: Path, data_dir: Path, batch_size: int = 32, workers: str | int = "auto"
                ) -> DepthDataModule:
    """The data module of training on an NYU-V2-layout file, every frame in training."""
    cfg = train_config("data=nyu_v2", f"data.path={path}", "data.split.kind=all",
                       f"paths.data_dir={data_dir}", f"data.batch_size={batch_size}",
                       f"data.num_workers={workers}", "data/augment=flip_rotate")
    return build(cfg.data, "data")


def loader_rates(path: Path, batches: int, batch: int = 32) -> dict[str, float]:
    """Training loader frames/s straight from the NYU-layout file (each frame read and brought
    to 320x240 as the cache builder does) and from the cache (what training uses)."""
    dm = data_module(path, path.parent, batch)
    dm.prepare_data()
    dm.setup("fit")
    transform = JointTransform(True, dm.augment)
    n = min(len(dm.source), batches * batch)
    start = time.perf_counter()
    for i in range(n):
        image, depth, _, _ = input_frame(dm.source[i])
        transform(image, depth)
    from_file = n / (time.perf_counter() - start)
    cache_rate, _ = loader_rate(dm, batches)
    return {"file": from_file, "cache": cache_rate, "workers": float(dm._workers())}


def loader_rate(dm: DepthDataModule, batches: int) -> tuple[float, int]:
    """Frames/s of the training loader over `batches` batches after the first (worker start-up
    and the first reads excluded), cycling epochs as needed."""
    loader = dm.train_dataloader()
    frames, seen, start = 0, 0, None
    while seen <= batches:
        for batch in loader:
            if start is None:
                start = time.perf_counter()  # after the first batch
            else:
                frames += batch["image"].shape[0]
            seen += 1
            if seen > batches:
                break
    elapsed = time.perf_counter() - start
    del loader
    return frames / elapsed, frames


def step_rate(images: torch.Tensor, depth: torch.Tensor, fast: bool, steps: int,
              device: torch.device) -> float:
    """Frames/s of the coarse stage's training step (forward, loss, backward, SGD step)."""
    from depth_lightning.losses import scale_invariant_loss

    torch.manual_seed(0)
    model = coarse_stage(f"model.channels_last={str(fast).lower()}").to(device).train()
    opt = build_optimizer(model.net, model.hparams.optim)
    images, depth = images.to(device), depth.to(device)
    bf16 = fast and native_bf16()
    ctx = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with ctx():
            log_pred = model(images)
        loss = scale_invariant_loss(log_pred.float(), depth, lam=0.5)
        loss.backward()
        opt.step()

    # one warm-up step: allocations, kernel selection
    return images.shape[0] / timed(step, steps, 1, device)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m depth_lightning.bench.loader",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--path", help="an NYU-layout labeled file (default: generated)")
    p.add_argument("--frames", type=int, default=96, help="SynthRooms frames to generate")
    p.add_argument("--fake-frames", type=int, default=0,
                   help="write an N-frame V2-layout noise file instead of SynthRooms")
    p.add_argument("--data-dir", help="folder for generated data and caches (default: temp)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--batches", type=int, default=12, help="loader batches to time")
    p.add_argument("--steps", type=int, default=3, help="training steps to time")
    p.add_argument("--workers", default="auto", help="loader workers (default: the module's)")
    p.add_argument("--no-train", action="store_true", help="time the loader only")
    return p.parse_args(argv)


def data_file(args: argparse.Namespace, data_dir: Path) -> Path:
    """The file to read: --path, a fake V2 file of noise, or a generated SynthRooms file."""
    if args.path:
        return Path(args.path)
    t = time.perf_counter()
    if args.fake_frames:
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / f"fake_v2_{args.fake_frames}.mat"
        if not path.exists():
            write_fake_v2(path, args.fake_frames)
            print(f"wrote {path} ({path.stat().st_size / 1e9:.2f} GB) in "
                  f"{time.perf_counter() - t:.0f} s")
        return path
    from depth_lightning.data.synthrooms import ensure_synthrooms

    path = ensure_synthrooms(data_dir, n_frames=args.frames, seed=0)
    print(f"SynthRooms: {args.frames} frames in {time.perf_counter() - t:.0f} s")
    return path


def measure_loader(args: argparse.Namespace, path: Path, data_dir: Path
                   ) -> tuple[DepthDataModule, float]:
    """Build the cache, time the loader and print its rate and the peak memory."""
    dm = data_module(path, data_dir, args.batch_size, args.workers)
    sampler = RssSampler()
    t = time.perf_counter()
    dm.prepare_data()
    dm.setup("fit")
    build_s, rss_cache = time.perf_counter() - t, peak_rss_mb()
    print(f"data: {path} ({path.stat().st_size / 1e9:.2f} GB, {len(dm.cache)} frames); cache "
          f"ready in {build_s:.1f} s at {dm.cache.root}")
    n_workers = dm._workers()
    rate, frames = loader_rate(dm, args.batches)
    import gc

    gc.collect()
    time.sleep(0.2)  # let the loader's workers exit, so RUSAGE_CHILDREN includes them
    own, child = peak_rss_mb()
    split = sampler.stop()
    print(f"loader: {rate:8.1f} frames/s  ({frames} frames, batch {args.batch_size}, "
          f"{n_workers} worker{'s' if n_workers != 1 else ''}, train transforms)")
    print(f"peak RSS: this process {own:.0f} MB (after the cache build {rss_cache[0]:.0f} "
          f"MB), largest child {child:.0f} MB")
    if sampler.available:
        print(f"  this process, sampled peaks: anonymous {split['RssAnon']} MB, file-backed "
              f"{split['RssFile']} MB (memory-mapped cache pages and libraries)")
    return dm, rate


def compare_with_training(dm: DepthDataModule, rate: float, args: argparse.Namespace) -> int:
    """The training step's rate in fp32 and with the fast defaults, against the loader's."""
    batch = next(iter(dm._loader(dm.train_idx, True, args.batch_size)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        reuse_freed_memory()  # as training sets the allocator up (cpu_allocator=reuse)
    fp32 = step_rate(batch["image"], batch["depth"], False, args.steps, device)
    fast_name = ("bf16 autocast + " if native_bf16() else "fp32 (no native bf16) + ") + \
        "channels_last"
    fast = step_rate(batch["image"], batch["depth"], True, args.steps, device)
    print(f"train step (coarse, {device.type}, {torch.get_num_threads()} threads):")
    print(f"  fp32                        : {fp32:8.1f} frames/s  (loader / step = "
          f"{rate / fp32:.1f}x)")
    print(f"  {fast_name:<28}: {fast:8.1f} frames/s  (loader / step = {rate / fast:.1f}x)")
    ratio = rate / max(fp32, fast)
    verdict = "OK" if ratio >= REQUIRED_RATIO else "TOO SLOW"
    print(f"loader / fastest step = {ratio:.1f}x (required >= {REQUIRED_RATIO:.0f}x): {verdict}")
    return 0 if ratio >= REQUIRED_RATIO else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        dm, rate = measure_loader(args, data_file(args, data_dir), data_dir)
        return 0 if args.no_train else compare_with_training(dm, rate, args)
    finally:
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
