"""What a run prints on the console: the closing lines of each stage and of the run (the run
folder, the best checkpoint, the next commands), and what a bare `train` runs."""

from __future__ import annotations

import sys
from pathlib import Path

from depth_lightning.reporting.tables import print_table

Table = dict[str, dict[str, float]]


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


class ConsoleEvents:
    """The training job's events (depth_lightning.training.job.JobEvents) as console lines."""

    def stage_done(self, name: str, run_dir: Path, best: str, table: Table) -> None:
        """The closing lines of a stage that is not the run's last."""
        print_table(table, title=f"after the {name} stage")
        _say([f"{name} stage done", f"  run folder:       {shown(run_dir)}",
              f"  best checkpoint:  {shown(best)}", *commands(run_dir, best, finished=False)])

    def run_done(self, run_dir: Path, best: str | None, table: Table) -> None:
        """The final table and the closing lines of a run."""
        print_table(table)
        lines = ["run done", f"  run folder:       {shown(run_dir)}",
                 f"  metrics:          {shown(run_dir / 'metrics.json')}"]
        if best:
            lines += [f"  best checkpoint:  {shown(best)}",
                      *commands(run_dir, best, finished=True)]
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
          "(make train) | fine_sgd | seed_paper.", file=sys.stdout, flush=True)
