# Everything a fresh machine needs: `make demo` and `make test` create/refresh .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo lab test lint typecheck unit bench clean

$(STAMP): pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints-cpu.txt -e '.[dev,api,host,notebook,tensorboard,mlflow,ray]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ktrdr train rsi_mean_reversion --symbols AAPL --timeframes 1d

# JupyterLab (the notebook extra) on the quickstart: its live widget and its plots.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/quickstart.ipynb

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/features.py
	$(BIN)/python bench/pipeline_scale.py
	$(BIN)/python bench/training_throughput.py
	$(BIN)/python bench/bridge_overhead.py
	$(BIN)/python bench/cancel_latency.py
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/host_roundtrip.py
	$(BIN)/python bench/widget_overhead.py
	$(BIN)/python bench/ray_sweep.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
