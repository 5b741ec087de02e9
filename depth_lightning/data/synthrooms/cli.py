"""Command line: ``python -m depth_lightning.data.synthrooms OUT --frames N ...``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .features import DEFAULT_FEATURES, FEATURES, canonical
from .preview import save_preview
from .writer import generate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m depth_lightning.data.synthrooms",
        description="Generate a SynthRooms dataset in the NYU Depth V2 labeled layout.")
    p.add_argument("out", type=Path, help="output .mat (HDF5) file")
    p.add_argument("--frames", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--level", type=int, default=1, help="gzip level (default 1)")
    p.add_argument("--features", default=",".join(DEFAULT_FEATURES),
                   help="comma-separated generator features out of " + ", ".join(FEATURES)
                   + " (default: none, the v1 generator; '' or none: the same)")
    p.add_argument("--preview", type=Path, default=None, help="also write a PNG grid of frames")
    a = p.parse_args(argv)
    names = [] if a.features.strip() in ("", "none") else a.features.split(",")
    features = canonical([n.strip() for n in names], "--features")
    generate(a.out, n_frames=a.frames, seed=a.seed, workers=a.workers, level=a.level,
             features=features)
    if a.preview is not None:
        print(f"preview -> {save_preview(a.out, a.preview)}")
    return 0
