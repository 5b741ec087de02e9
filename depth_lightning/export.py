"""Export: `python -m depth_lightning.export ckpt_path=PATH format=onnx|torchscript output=FILE`.

The whole network path as one graph (depth_lightning.inference.export).
"""

from depth_lightning.cli.app import hydra_app
from depth_lightning.inference.export import run

main = hydra_app("export", run)

if __name__ == "__main__":
    main()
