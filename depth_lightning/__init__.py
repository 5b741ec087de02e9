"""depth_lightning: Eigen et al. 2014 multi-scale depth prediction with Lightning and Hydra."""

__version__ = "0.2.0"  # the one place the version is set (pyproject.toml reads it)
__all__ = ["DepthPredictor", "__version__"]


def __getattr__(name: str):
    # imported on first use: `import depth_lightning` stays free of torch and Lightning
    if name == "DepthPredictor":
        from depth_lightning.inference.predictor import DepthPredictor

        return DepthPredictor
    raise AttributeError(f"module 'depth_lightning' has no attribute {name!r}")
