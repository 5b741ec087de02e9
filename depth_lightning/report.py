"""Report: `python -m depth_lightning.report RUN_DIR...`.

Runs as the seed's Table 1, beside the published numbers (depth_lightning.reporting.report).
"""

import sys

from depth_lightning.cli.reports import report_main as main

if __name__ == "__main__":
    sys.exit(main())
