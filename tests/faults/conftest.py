"""Fault tests: a fault-injecting proxy in front of a canned chat server or the real bundled model."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalharness.local import local_server
from tests.faults.harness import FAKE_KEY, KEY_ENV
from tests.faults.proxy import CannedChat


@pytest.fixture(autouse=True)
def _fake_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recognisable key, so any place it leaks to can be found."""
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)


@pytest.fixture
def canned() -> Iterator[CannedChat]:
    with CannedChat() as server:
        yield server


@pytest.fixture(scope="session")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The bundled model's server, started once for every fault test that needs the real thing."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("needs the local extra: pip install -e '.[local]'")
    log = tmp_path_factory.mktemp("local-model") / "server.log"
    with local_server(log) as server:
        yield server.base_url, log
