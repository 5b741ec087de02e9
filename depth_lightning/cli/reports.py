"""The commands that read finished runs (`report`, `compare`, `compare_edges`): their argument
parsers, and their errors as one `error:` line with exit status 1."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from depth_lightning.errors import DepthLightningError


def one_line_errors(work: Callable[[], None], *also: type[Exception]) -> int:
    """Run `work`; a user error (or one of `also`) becomes one `error:` line and status 1."""
    try:
        work()
    except (DepthLightningError, *also) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def report_main(argv: Sequence[str] | None = None) -> int:
    """`python -m depth_lightning.report RUN_DIR... [--out DIR]`."""
    from depth_lightning.reporting.report import write_report

    parser = argparse.ArgumentParser(
        prog="python -m depth_lightning.report",
        description="Training runs as the seed's Table 1 (training and validation RMSE log "
                    "scale-inv., validation RMSE log, Coarse and Coarse+Fine) beside the "
                    "published numbers of the seed and of Eigen et al. 2014; writes report.md "
                    "and report.csv.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR",
                        help="a training run folder (outputs/train/runs/...), or a folder of runs")
    parser.add_argument("--out", default=".", metavar="DIR",
                        help="where report.md and report.csv go (default: current directory)")
    args = parser.parse_args(argv)

    def work() -> None:
        out = Path(args.out)
        print(write_report(args.runs, out))
        print(f"wrote {out / 'report.md'} and {out / 'report.csv'}")

    return one_line_errors(work)


def compare_main(argv: Sequence[str] | None = None) -> int:
    """`python -m depth_lightning.compare MULTIRUN_DIR [--out DIR] [--format F] [--dpi N]`."""
    import yaml

    from depth_lightning.reporting.compare import compare

    parser = argparse.ArgumentParser(
        prog="python -m depth_lightning.compare",
        description="A Hydra multirun's jobs side by side: compare.md, compare.csv and their "
                    "validation curves.")
    parser.add_argument("multirun_dir", help="a multirun folder (outputs/train/multiruns/...)")
    parser.add_argument("--out", help="where to write compare.* (default: the multirun folder)")
    parser.add_argument("--format", default="png", choices=("png", "pdf", "svg"),
                        help="file format of the figure (default png)")
    parser.add_argument("--dpi", type=int, default=100, help="resolution of a png (default 100)")
    args = parser.parse_args(argv)

    def work() -> None:
        rows = compare(args.multirun_dir, args.out, args.format, args.dpi)
        out = Path(args.out or args.multirun_dir)
        print(f"{len(rows)} jobs -> {out / 'compare.md'}, compare.csv, compare.{args.format}")
        print((out / "compare.md").read_text())
        if (out / "seeds.md").is_file():
            print("mean ± standard deviation over seeds -> seeds.md, seeds.csv")
            print((out / "seeds.md").read_text())

    return one_line_errors(work, FileNotFoundError, yaml.YAMLError)


def compare_edges_main(argv: Sequence[str] | None = None) -> int:
    """`python -m depth_lightning.compare_edges DIR [--frame N] [--threshold T] [--radius R]`."""
    from depth_lightning.reporting.compare_edges import compare_edges

    parser = argparse.ArgumentParser(
        prog="python -m depth_lightning.compare_edges",
        description="Depth-boundary scores of each finished job's last stage: edges.md, "
                    "edges.csv and one validation frame per job (frames.png).")
    parser.add_argument("dir", type=Path, help="a multirun folder (or one holding runs)")
    parser.add_argument("--frame", type=int, default=0, help="validation frame to draw")
    parser.add_argument("--threshold", type=float, default=0.1,
                        help="relative depth step that makes an edge (default 0.1)")
    parser.add_argument("--radius", type=int, default=2,
                        help="pixels an edge may be off and still match (default 2)")
    args = parser.parse_args(argv)

    def work() -> None:
        jobs, table = compare_edges(args.dir, args.frame, args.threshold, args.radius)
        print(f"{jobs} jobs -> {args.dir / 'edges.md'}, edges.csv, frames.png")
        print("\n".join(" | ".join(r) for r in table))

    return one_line_errors(work)
