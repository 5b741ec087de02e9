"""Optional features of the generator (`data.source.features`): each makes SynthRooms closer to
real NYU frames in one respect, so its effect on sim-to-real can be measured on its own.

No feature (``()``) is the version-1 generator, byte for byte: every feature draws from its own
random stream, so switching one on never shifts the draws of the others or of the base room.
"""

from __future__ import annotations

from collections.abc import Iterable

from depth_lightning.errors import DepthLightningError

FEATURES = {
    "spaces": "offices, corridors, classrooms, labs, basements: bigger, deeper rooms, partitions "
              "with doorways to a further space, drop ceilings, recessed/fluorescent lights, pipes",
    "clutter": "small objects on furniture tops and the floor, thin-legged chairs, open shelves "
               "full of items",
    "camera": "exposure and white-balance spread, vignetting, blur, sensor and chroma noise",
    "kinect": "disparity quantisation and depth-dependent noise on rawDepths (depths stays clean)",
}
ALL_FEATURES: tuple[str, ...] = tuple(sorted(FEATURES))
# The default stays the version-1 generator: at an equal training budget the features did not
# (yet) bring a model closer to real NYU frames (docs/experiments/sim-to-real.md).
DEFAULT_FEATURES: tuple[str, ...] = ()
# Bump when what a feature renders changes: it is part of the file name of feature datasets.
FEATURES_VERSION = "1"


def canonical(features: Iterable[str] | str | None,
              setting: str = "data.source.features") -> tuple[str, ...]:
    """The sorted, de-duplicated feature names (None: DEFAULT_FEATURES); an unknown name is refused
    with the setting's name, so order and repeats never make a different dataset."""
    if features is None:
        return DEFAULT_FEATURES
    if isinstance(features, str):
        features = [features]
    try:
        names = [str(f) for f in features]
    except TypeError:
        raise DepthLightningError(f"{setting}: must be a list of names out of "
                                  f"{', '.join(FEATURES)}, got {features!r}") from None
    bad = [n for n in names if n not in FEATURES]
    if bad:
        raise DepthLightningError(f"{setting}: unknown feature {bad[0]!r}; known: "
                                  f"{', '.join(FEATURES)} (e.g. [] or [clutter, camera])")
    return tuple(sorted(set(names)))


def tag(features: tuple[str, ...]) -> str:
    """The part of the file name that names the feature set ('' for none: the v1 name)."""
    return f"_f{FEATURES_VERSION}-{'-'.join(features)}" if features else ""
