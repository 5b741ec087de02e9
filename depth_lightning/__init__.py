"""depth_lightning: Eigen et al. 2014 multi-scale depth prediction with Lightning and Hydra."""

__version__ = "0.1.0"
__all__ = ["DepthPredictor", "__version__"]


def __getattr__(name: str):
    # imported on first use: `import depth_lightning` stays free of torch and Lightning
    if name == "DepthPredictor":
        from depth_lightning.inference.predictor import DepthPredictor

        return DepthPredictor
    raise AttributeError(f"module 'depth_lightning' has no attribute {name!r}")
