"""Train/validation splits of a labeled file, as config choices.

official: the source's own split (NYU V2: splits.mat, 795 train / 654 test, 1-based in the file);
seed:     the seed paper's: `subset` random frames (800) split `val_fraction` (0.2 -> 640 / 160);
scene:    a seeded random split that keeps every scene on one side (no near-duplicate leaks);
all:      every frame on both sides (evaluating a file of one's own);
indices:  explicit 0-based index lists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from depth_lightning.errors import DataError

SPLIT_KINDS = ("official", "seed", "scene", "all", "indices")


def load_official_split(path: str | Path, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """0-based (train, test) indices from NYU V2's splits.mat (MATLAB 5 file, 1-based)."""
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: split file not found (set data.split.file)")
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises several types for non-MATLAB files
        raise DataError(f"{path}: not a readable MATLAB split file ({e})") from None
    try:
        train = np.asarray(mat["trainNdxs"]).ravel().astype(np.int64) - 1
        test = np.asarray(mat["testNdxs"]).ravel().astype(np.int64) - 1
    except KeyError as e:
        raise DataError(
            f"{path}: missing {e.args[0]!r} (expected trainNdxs and testNdxs)"
        ) from None
    for name, idx in (("trainNdxs", train), ("testNdxs", test)):
        if idx.size and (idx.min() < 0 or idx.max() >= n_frames):
            raise DataError(
                f"{path}: {name} holds indices {idx.min() + 1}..{idx.max() + 1} but the data file "
                f"has {n_frames} frames (indices are 1-based)"
            )
    if np.intersect1d(train, test).size:
        raise DataError(f"{path}: trainNdxs and testNdxs overlap")
    return train, test


def make_split(
    kind: str,
    n_frames: int,
    scenes: Sequence[str] | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    subset: int | None = None,
    official: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
    train: Sequence[int] | None = None,
    val: Sequence[int] | None = None,
    more_kinds: Sequence[str] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Return sorted 0-based (train, val) index arrays for `n_frames` frames; `official` is
    the source's own split (a callable), for kind ``official``; `more_kinds` are the source's
    own kinds (named in the error for an unknown one)."""
    if kind not in SPLIT_KINDS:
        kinds = tuple(dict.fromkeys((*SPLIT_KINDS, *more_kinds)))
        raise DataError(f"data.split.kind: unknown split {kind!r}; choose one of {kinds}")
    if not 0.0 < val_fraction < 1.0 and kind in ("seed", "scene"):
        raise DataError(f"data.split.val_fraction must be in (0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    if kind == "official":
        if official is None:
            raise DataError("data.split.kind=official: this data source has no official split "
                            "(use scene, seed, all or indices)")
        tr, va = official()
    elif kind == "all":
        tr = va = np.arange(n_frames)
    elif kind == "indices":
        tr, va = (np.asarray(list(x or []), dtype=np.int64) for x in (train, val))
        for name, idx in (("train", tr), ("val", va)):
            if idx.size and (idx.min() < 0 or idx.max() >= n_frames):
                raise DataError(
                    f"data.split.{name}: indices must be in 0..{n_frames - 1}, got {idx.min()}.."
                    f"{idx.max()}"
                )
    elif kind == "seed":
        k = n_frames if subset is None else min(int(subset), n_frames)
        chosen = rng.permutation(n_frames)[:k]
        n_val = int(round(k * val_fraction))
        tr, va = chosen[n_val:], chosen[:n_val]
    else:  # scene
        if scenes is None or len(scenes) != n_frames:
            raise DataError("data.split.kind=scene needs a scene name for every frame")
        names = np.asarray(scenes)
        unique = np.unique(names)
        order = rng.permutation(len(unique))
        target = val_fraction * n_frames
        val_scenes, count = [], 0
        counts = {s: int(c) for s, c in zip(*np.unique(names, return_counts=True))}
        for j in order:
            if count >= target:
                break
            val_scenes.append(unique[j])
            count += counts[unique[j]]
        is_val = np.isin(names, val_scenes)
        tr, va = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    return np.sort(tr), np.sort(va)
