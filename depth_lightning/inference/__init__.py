"""Using a trained model: the predictor behind `DepthPredictor`, the `predict` and `export` jobs,
videos, point clouds and the web demo."""
