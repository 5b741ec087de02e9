"""Evaluate: `python -m depth_lightning.evaluate ckpt_path=PATH [data=nyu_v2] [eval=bts]`.

Scores a trained checkpoint as in Eigen et al. 2014 Table 1 (depth_lightning.evaluation.evaluate).
"""

from depth_lightning.cli.app import hydra_app
from depth_lightning.evaluation.evaluate import run

main = hydra_app("evaluate", run)

if __name__ == "__main__":
    main()
