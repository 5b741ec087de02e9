"""Demo: `python -m depth_lightning.demo ckpt_path=PATH`.

A web page that turns photos into depth maps and point clouds (depth_lightning.inference.demo).
"""

from depth_lightning.cli.app import hydra_app
from depth_lightning.inference.demo import run

main = hydra_app("demo", run)

if __name__ == "__main__":
    main()
