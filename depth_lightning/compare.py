"""Compare: `python -m depth_lightning.compare MULTIRUN_DIR`.

A sweep's jobs side by side, table and curves (depth_lightning.reporting.compare).
"""

import sys

from depth_lightning.cli.reports import compare_main as main

if __name__ == "__main__":
    sys.exit(main())
