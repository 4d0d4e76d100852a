"""Config loading: valid configs resolve; every kind of mistake names file, key path and line (exit 2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evalharness.cli import main
from evalharness.config import load_config
from evalharness.errors import ConfigError

GOOD = """\
name: t
target: {base_url: http://127.0.0.1:9/v1, model: m}
suites: [suite.yaml]
defaults: {max_tokens: 16}
grid:
  temperature: [0, 0.7]
  seed: [null, 42]
repeats: 2
"""


def test_valid_config_loads_suites_relative_to_config(write_config: Callable[..., Path]) -> None:
    loaded = load_config(write_config(GOOD))
    assert loaded.config.name == "t"
    assert [s.name for s in loaded.suites] == ["mini"]
    assert loaded.suites[0].schemas["json-person"]["required"] == ["name", "age"]


@pytest.mark.parametrize(("text", "key", "line", "words"), [
    (GOOD.replace("repeats: 2", "repeats: two"), "repeats", 8, "integer"),
    (GOOD.replace("grid:", "gird:"), "gird", 5, "unknown key"),
    (GOOD.replace("  seed: [null, 42]", "  seed: [null, 4.5]"), "grid.seed[1]", 7, "integer"),
    (GOOD.replace("  seed: [null, 42]", "  sead: [1]"), "grid", 5, "unknown grid axis"),
    (GOOD.replace("defaults: {max_tokens: 16}", "defaults: {max_tokens: 16, temprature: 1}"),
     "defaults.temprature", 4, "extra_body"),
    (GOOD.replace("suites: [suite.yaml]", "suites: [missing.yaml]"), "suites[0]", 3, "not found"),
    (GOOD.replace("target: {base_url: http://127.0.0.1:9/v1, model: m}", "target: {model: m}"),
     "target", 2, "base_url"),
    (GOOD.replace("name: t\n", ""), "name", None, "required"),
])
def test_errors_name_file_key_and_line(write_config: Callable[..., Path], text: str, key: str,
                                       line: int | None, words: str) -> None:
    path = write_config(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.file == str(path)
    assert err.key == key
    if line is not None:
        assert err.line == line
    assert words in str(err)


def test_yaml_syntax_error_has_line(write_config: Callable[..., Path]) -> None:
    path = write_config(GOOD.replace("repeats: 2", "repeats: [2"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "YAML syntax error" in str(info.value)
    assert info.value.line is not None and info.value.line >= 8


def test_error_in_suite_points_into_the_suite_file(write_config: Callable[..., Path], tmp_path: Path) -> None:
    suite = """\
    name: mini
    cases:
      - id: a
        prompt: hi
        expect: {containz: x}
    """
    with pytest.raises(ConfigError) as info:
        load_config(write_config(GOOD, suite=suite))
    assert info.value.file == str(tmp_path / "suite.yaml")
    assert info.value.key == "cases[0].expect.containz"
    assert info.value.line == 5


def test_undefined_template_variable_is_a_config_error(write_config: Callable[..., Path]) -> None:
    suite = "name: s\ncases:\n  - id: a\n    prompt: 'Hello {{ who }}'\n"
    with pytest.raises(ConfigError, match="template error"):
        load_config(write_config(GOOD, suite=suite))


def test_api_key_in_headers_is_refused(write_config: Callable[..., Path]) -> None:
    text = GOOD.replace("model: m}", "model: m, headers: {Authorization: Bearer abc}}")
    with pytest.raises(ConfigError, match="api_key_env"):
        load_config(write_config(text))


def test_cli_validate_exit_codes_and_no_traceback(write_config: Callable[..., Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    good = write_config(GOOD)
    assert main(["validate", str(good)]) == 0
    assert "valid" in capsys.readouterr().out
    bad = write_config(GOOD.replace("repeats: 2", "repeats: -1"), name="bad.yaml")
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:8: repeats:" in err
    assert "Traceback" not in err


def test_cli_missing_config_file_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "does-not-exist.yaml"]) == 2
    assert "file not found" in capsys.readouterr().err


@pytest.mark.parametrize(("snippet", "words"), [
    ("grid: {seed: [1, 2, 1]}", "repeats an earlier value"),
    ("defaults: {extra_body: {when: 2001-12-14}}", "YAML type 'timestamp'"),
    ("grid: {stop: [&a [*a]]}", "alias refers to itself"),
])
def test_yaml_that_cannot_become_a_request_is_refused_with_its_line(write_config: Callable[..., Path], snippet: str,
                                                                    words: str) -> None:
    text = "name: t\ntarget: {base_url: http://127.0.0.1:9/v1, model: m}\nsuites: [suite.yaml]\n" + snippet + "\n"
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text))
    assert words in str(info.value)
    assert info.value.line == 4


@pytest.mark.parametrize("value", ["0", "-1", "7200", "soon"])
def test_max_retry_wait_s_must_be_a_positive_number_of_seconds_up_to_an_hour(
        write_config: Callable[..., Path], value: str) -> None:
    with pytest.raises(ConfigError, match="max_retry_wait_s") as info:
        load_config(write_config(GOOD + f"run: {{max_retry_wait_s: {value}}}\n"))
    assert info.value.line == 9


def test_max_retry_wait_s_defaults_to_a_minute(write_config: Callable[..., Path]) -> None:
    assert load_config(write_config(GOOD)).config.run.max_retry_wait_s == 60
