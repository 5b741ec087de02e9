"""Training: the stage loop (`run(cfg) -> scores`, in-process), stage planning, the Trainer
builder with its explicit stage context, callbacks, exact resume, crash-safe checkpoint files,
signals, and W&B tracking."""
