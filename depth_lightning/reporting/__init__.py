"""Figures, colour maps and tables, and the commands that read finished runs: `report` (the
seed's Table 1), `compare` (a sweep's jobs side by side) and `compare_edges`."""
