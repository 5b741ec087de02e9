"""SynthRooms as a data source: generated on first use, then read like an NYU V2 file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depth_lightning.data.nyu import NYULabeled
from depth_lightning.data.synthrooms.writer import (
    GENERATOR_VERSION,
    ensure_synthrooms,
    synthrooms_path,
)
from depth_lightning.settings import whole_number, writable


class SynthRooms(NYULabeled):
    """`frames` SynthRooms frames of dataset `seed`, generated into `data_dir` on first use
    (deterministic in (frames, seed)) and read through the NYU reader.

    """

    def __init__(self, frames: int, seed: int, data_dir: str | Path) -> None:
        frames = whole_number(frames, "data.source.frames")
        seed = whole_number(seed, "data.source.seed", minimum=0)
        path = synthrooms_path(data_dir, frames, seed)
        if not path.is_file():
            writable(Path(data_dir), "paths.data_dir")
        super().__init__(ensure_synthrooms(data_dir, frames, seed), version="v2")
        self.frames, self.seed = frames, seed

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "generator": GENERATOR_VERSION}
