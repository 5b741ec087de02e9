"""Predict: `python -m depth_lightning.predict ckpt_path=PATH input=PHOTOS|VIDEO output_dir=DIR`.

Depth maps, figures and point clouds of photos and videos (depth_lightning.inference.predict).
"""

from depth_lightning.cli.app import hydra_app
from depth_lightning.inference.predict import run

main = hydra_app("predict", run)

if __name__ == "__main__":
    main()
