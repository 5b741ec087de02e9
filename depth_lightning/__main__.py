"""`python -m depth_lightning [--version]`: the version, or the commands there are."""

from __future__ import annotations

import sys

from depth_lightning import __version__

COMMANDS = ("train", "evaluate", "predict", "export", "demo", "report", "compare")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]):
        print(f"depth_lightning {__version__}")
        return 0
    print(f"depth_lightning {__version__}: python -m depth_lightning.<command> [key=value ...]"
          f"\ncommands: {', '.join(COMMANDS)} (each with --help)")
    return 0 if not args else 2


if __name__ == "__main__":
    sys.exit(main())
