"""Speed and memory benchmarks: `python -m depth_lightning.bench` (training, inference, loader)
and `python -m depth_lightning.bench.loader` (the loader against the training step, memory).
They may import anything; nothing in the package imports them. They print figures; they are not
timed tests."""
