"""What a run prints: Lightning's own chatter turned off where it starts, and the closing lines
of each stage and of the run (the run folder, the best checkpoint, the next commands).

Lightning has no setting for four of its lines, so each is dropped where it is emitted:

* "💡 Tip ... litlogger", "GPU available ...", "TPU available ...", "Loading `train_dataloader`
  ..." and "`Trainer.fit` stopped: `max_epochs=N` reached." are `rank_zero_info` records of the
  logger ``lightning.pytorch.utilities.rank_zero``; a filter on that logger drops exactly these
  (its other lines, such as "Restoring states from the checkpoint ...", still show). The
  device lines are logged unconditionally by ``Trainer.__init__`` and the tip whenever no
  LitLogger is used (Lightning 2.6).
* The FutureWarning "`isinstance(treespec, LeafSpec)` is deprecated" comes from Lightning's
  own ``lightning/pytorch/utilities/_pytree.py`` calling ``LeafSpec()``, deprecated in torch
  2.10; no released Lightning (2.6.6 is the newest) calls ``treespec_leaf()`` instead, so the
  one message is ignored for that one module (``warnings.filterwarnings(module=...)``). Every
  other warning, the user's own included, still shows.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

from omegaconf import OmegaConf

_NOISE = ("💡 Tip: For seamless cloud logging", "GPU available:", "TPU available:",
          "HPU available:", "Loading `train_dataloader` to estimate",
          "`Trainer.fit` stopped: `max_epochs=")
_RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"


class _LightningNoise(logging.Filter):
    """Drops Lightning's tip, device and loader lines; passes everything else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_NOISE)


def quiet_lightning() -> None:
    """Turn off Lightning's tip, hardware lines and the `_pytree` deprecation (idempotent)."""
    logger = logging.getLogger(_RANK_ZERO_LOGGER)
    if not any(isinstance(f, _LightningNoise) for f in logger.filters):
        logger.addFilter(_LightningNoise())
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning, module=r"lightning\.pytorch\.utilities\._pytree")


def _say(lines: list[str]) -> None:
    print("\n".join(lines), flush=True)


def shown(path: str | Path) -> str:
    """A path as the console shows it: relative to the current directory when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def commands(run_dir: Path, best: str, finished: bool) -> list[str]:
    """The next commands for a run folder and its best checkpoint."""
    best, run = shown(best), shown(run_dir)
    lines = [f"  evaluate:  python -m depth_lightning.evaluate ckpt_path={best}",
             f"  predict:   python -m depth_lightning.predict ckpt_path={best} "
             "input='photos/*.jpg'",
             f"  report:    python -m depth_lightning.report {run}"]
    if not finished:
        lines.append(f"  resume:    python -m depth_lightning.train resume={run}  "
                     "(if the run stops before its last stage)")
    return lines


def stage_done(name: str, run_dir: Path, best: str, table: dict[str, dict[str, float]]) -> None:
    """The closing lines of a stage that is not the run's last."""
    from depth_lightning.tables import print_table

    print_table(table, title=f"after the {name} stage")
    _say([f"{name} stage done", f"  run folder:       {shown(run_dir)}",
          f"  best checkpoint:  {shown(best)}", *commands(run_dir, best, finished=False)])


def run_done(run_dir: Path, best: str | None) -> None:
    """The closing lines of a run, after its final table."""
    lines = ["run done", f"  run folder:       {shown(run_dir)}",
             f"  metrics:          {shown(run_dir / 'metrics.json')}"]
    if best:
        lines += [f"  best checkpoint:  {shown(best)}", *commands(run_dir, best, finished=True)]
    sweep = _sweep_dir()
    if sweep is not None:
        lines.append(f"  compare:   python -m depth_lightning.compare {shown(sweep)}  "
                     "(once every job is done)")
    _say(lines)


def _sweep_dir() -> Path | None:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
        return Path(hc.sweep.dir) if hc.mode == RunMode.MULTIRUN else None
    except ValueError:
        return None


def announce_default_experiment() -> None:
    """A bare `python -m depth_lightning.train` (no +experiment=, no resume=) says what it runs."""
    try:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
    except ValueError:
        return
    given = [o.lstrip("+~") for o in hc.overrides.task]
    if hc.runtime.choices.get("experiment") or any(o.startswith(("resume=", "stages="))
                                                   for o in given):
        return
    print("No +experiment= given: training the coarse stage alone with the seed paper's "
          "settings (trainer.max_epochs, default 41). The recipes: +experiment=coarse | fine "
          "(make train) | seed_paper.", file=sys.stdout, flush=True)


def help_groups(*groups: str) -> str:
    """`--help`'s list of config groups: each of `groups` with the options the package has
    (its conf/<group>/*.yaml; the bases other options extend, `common` and `stage`, left
    out; `local` is the user's own, git-ignored)."""
    root = Path(__file__).parent / "conf"
    lines = []
    for group in groups:
        options = sorted(p.stem for p in (root / group).glob("*.yaml")
                         if p.stem not in ("common", "stage"))
        none = "(your own conf/local/default.yaml, git-ignored; used when it exists)" \
            if group == "local" else "(none)"
        lines.append(f"  {group + ':':<16}{', '.join(options) or none}")
    return "\n".join(lines)


if not OmegaConf.has_resolver("dl_help_groups"):
    OmegaConf.register_new_resolver("dl_help_groups", help_groups)
