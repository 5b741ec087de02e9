"""Scoring depth maps: the metrics (torchmetrics), the protocols that say how a prediction meets
the ground truth, one scoring path for every predictor, and the `evaluate` job."""
