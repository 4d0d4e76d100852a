"""Shared fixtures: write small configs and suites into a temp folder."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests check results, not speed: on a busy machine (CI, other tests starting servers) a generated
# example can take longer than hypothesis's 200 ms deadline without anything being wrong. Speed is measured
# in bench/.
settings.register_profile("evalharness", deadline=None)
settings.load_profile("evalharness")

SUITE = """\
name: mini
cases:
  - id: json-person
    prompt: 'Reply with JSON: {"name": "Ann", "age": 31}'
    expect:
      json_schema: {type: object, required: [name, age]}
    extract: {json_pointer: /age}
  - id: capital
    prompt: What is the capital of France? One word.
    expect: {contains: Paris}
"""


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write ``config.yaml`` (dedented) and a suite ``suite.yaml`` beside it; returns the config path."""

    def write(config: str, suite: str = SUITE, name: str = "config.yaml") -> Path:
        (tmp_path / "suite.yaml").write_text(textwrap.dedent(suite), encoding="utf-8")
        path = tmp_path / name
        path.write_text(textwrap.dedent(config), encoding="utf-8")
        return path

    return write


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never write into the repository's reports/ folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests reach their loopback servers directly unless they set a proxy themselves: a proxy configured on
    the machine (either case of the names: both are read) would otherwise be used for them too."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
