"""depth_lightning: Eigen et al. 2014 multi-scale depth prediction with Lightning and Hydra."""

__version__ = "0.1.0"
