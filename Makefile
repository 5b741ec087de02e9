# depth_lightning: `make train` and `make test` work on a fresh machine (they install first).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Installed first when the environment has no torch: without it pip would resolve `torch>=2.4`
# to the newest (CUDA) build. Override with e.g. `make install TORCH=torch==2.5.1`.
TORCH ?= torch==2.13.0
ARGS ?=

.PHONY: install train test test-fast lint sweep docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

$(VENV)/.installed-sweep: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[dev,sweep,app,docs]"
	touch $@

# The main job: coarse, then fine on the frozen coarse network, on the embedded SynthRooms data.
train: install
	$(PY) -m depth_lightning.train +experiment=fine $(ARGS)

# Everything (CI); test-fast: the inner loop, without end-to-end training runs and commands in
# subprocesses.
test: $(VENV)/.installed-sweep
	$(PY) -m pytest -q -n 2 --dist worksteal --durations=25 $(ARGS)

test-fast: $(VENV)/.installed-sweep
	$(PY) -m pytest -q -n 2 --dist worksteal -m "not slow and not cli" --durations=5 $(ARGS)

lint: install
	$(VENV)/bin/ruff check depth_lightning tests

# A Hydra multirun over the loss lambda (see README for the other grids and Optuna).
sweep: $(VENV)/.installed-sweep
	$(PY) -m depth_lightning.train -m +experiment=coarse +hparams_search=lambda $(ARGS)

# The documentation site (MkDocs, strict: a broken link or reference fails) into site/.
docs: $(VENV)/.installed-sweep
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf outputs multirun wandb lightning_logs .pytest_cache .ruff_cache site
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
