"""Compare edges: `python -m depth_lightning.compare_edges MULTIRUN_DIR`.

Each job's depth-boundary scores and one frame (depth_lightning.reporting.compare_edges).
"""

import sys

from depth_lightning.cli.reports import compare_edges_main as main

if __name__ == "__main__":
    sys.exit(main())
