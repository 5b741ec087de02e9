"""SynthRooms as a data source: generated on first use, then read like an NYU V2 file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from depth_lightning.core.settings import whole_number, writable
from depth_lightning.data.nyu import NYULabeled
from depth_lightning.data.synthrooms.features import canonical
from depth_lightning.data.synthrooms.writer import (
    GENERATOR_VERSION,
    ensure_synthrooms,
    synthrooms_path,
)


class SynthRooms(NYULabeled):
    """`frames` SynthRooms frames of dataset `seed` with the generator `features` (None: the
    default; []: the v1 generator), generated into `data_dir` on first use (deterministic in
    (frames, seed, features)) and read through the NYU reader.

    """

    def __init__(self, frames: int, seed: int, data_dir: str | Path,
                 features: list[str] | tuple[str, ...] | None = None) -> None:
        frames = whole_number(frames, "data.source.frames")
        seed = whole_number(seed, "data.source.seed", minimum=0)
        features = canonical(features, "data.source.features")
        path = synthrooms_path(data_dir, frames, seed, features)
        if not path.is_file():
            writable(Path(data_dir), "paths.data_dir")
        super().__init__(ensure_synthrooms(data_dir, frames, seed, features), version="v2")
        self.frames, self.seed, self.features = frames, seed, features

    def fingerprint(self) -> dict[str, Any]:
        # no features: exactly the v1 fingerprint, so existing caches of v1 files stay valid
        extra = {"features": list(self.features)} if self.features else {}
        return {**super().fingerprint(), "generator": GENERATOR_VERSION, **extra}
