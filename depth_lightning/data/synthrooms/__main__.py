"""``python -m depth_lightning.data.synthrooms``: the command line lives in `cli` (the package
re-exports `main`; importing this file from the package would make runpy warn)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
