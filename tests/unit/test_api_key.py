"""An API key variable that is named but unset or empty stops ``run`` and ``probe`` before anything is sent."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from evalharness.cli import main
from evalharness.config import load_config
from evalharness.errors import ConfigError
from tests.faults.proxy import CannedChat

REPO = Path(__file__).resolve().parents[2]
KEY_ENV = "EVALHARNESS_TEST_UNSET_KEY"


@pytest.fixture
def canned() -> Iterator[CannedChat]:
    with CannedChat() as server:
        yield server


def config_text(base_url: str, api_key_env: str) -> str:
    return f"""\
        name: keys
        target:
          base_url: {base_url}
          model: canned-model
          api_key_env: {api_key_env}
        suites: [suite.yaml]
        run: {{max_retries: 0}}
        """


@pytest.mark.parametrize("command", ["run", "probe"])
@pytest.mark.parametrize("value", [None, ""])
def test_an_unset_or_empty_key_variable_is_exit_2_naming_it_and_the_target(
        command: str, value: str | None, write_config: Callable[..., Path], canned: CannedChat,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    if value is None:
        monkeypatch.delenv(KEY_ENV, raising=False)
    else:
        monkeypatch.setenv(KEY_ENV, value)
    config = write_config(config_text(canned.base_url, KEY_ENV))
    assert main([command, str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{config}:5: target.api_key_env: {KEY_ENV} is not set" in err
    assert canned.base_url in err and "canned-model" in err
    assert "api_key_env: null" in err and "Traceback" not in err
    assert canned.bodies == []  # nothing was sent
    assert not (tmp_path / "out").exists()


def test_api_key_env_null_runs_without_a_key(write_config: Callable[..., Path], canned: CannedChat,
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(config_text(canned.base_url, "null"))
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    assert len(canned.bodies) == 2


def test_a_set_key_variable_runs(write_config: Callable[..., Path], canned: CannedChat, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-some-key-0123456789")
    config = write_config(config_text(canned.base_url, KEY_ENV))
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 0, capsys.readouterr().err


def test_a_dry_run_and_validate_need_no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WCODE_API_KEY", raising=False)
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    shutil.copytree(REPO / "suites", tmp_path / "suites")
    config = str(tmp_path / "configs" / "qwen3-8b.yaml")
    assert main(["validate", config]) == 0
    assert main(["run", config, "--dry-run"]) == 0
    assert main(["run", config]) == 2
    assert "WCODE_API_KEY is not set" in capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "configs").glob("*.yaml")))
def test_the_shipped_local_configs_need_no_key_and_the_others_name_theirs(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = load_config(REPO / "configs" / name)
    target = loaded.config.target
    if target.api_key_env:
        monkeypatch.delenv(target.api_key_env, raising=False)
    if target.kind == "local" or not target.api_key_env:
        assert loaded.api_key() is None
    else:
        with pytest.raises(ConfigError, match=f"{target.api_key_env} is not set"):
            loaded.api_key()
