"""Configs given to the Python API as mappings and with overrides: validated as files are."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evalharness.api import load
from evalharness.config import merge_overrides
from evalharness.errors import ConfigError

CONFIG = {"name": "d", "target": {"kind": "local"}, "suites": ["suite.yaml"],
          "defaults": {"max_tokens": 64, "temperature": 0}, "repeats": 3}


def test_a_mapping_is_validated_like_a_file_and_its_errors_name_the_key_path(
        write_config: Callable[..., Path]) -> None:
    write_config("name: unused\n")  # writes suite.yaml into the current folder
    with pytest.raises(ConfigError) as err:
        load({**CONFIG, "grid": {"seed": [1, 1]}})
    assert str(err.value) == ("<config>: grid.seed[1]: repeats an earlier value of this axis "
                              "(each cell of the grid must differ; use repeats for more samples)")
    with pytest.raises(ConfigError, match=r"^<config>: repets: unknown key"):
        load({**CONFIG, "repets": 2})


def test_a_mappings_suites_are_found_in_base_dir(write_config: Callable[..., Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    write_config("name: unused\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ConfigError, match=r"suite file not found: suite\.yaml .*relative to base_dir"):
        load(CONFIG)
    assert [s.name for s in load(CONFIG, base_dir=tmp_path).suites] == ["mini"]


def test_overrides_merge_mappings_and_replace_everything_else(write_config: Callable[..., Path]) -> None:
    path = write_config("""\
        name: o
        target: {kind: local}
        suites: [suite.yaml]
        defaults: {max_tokens: 64, temperature: 0}
        grid: {seed: [1, 2, 3]}
        repeats: 5
        gates: [{metric: error_rate, max: 0}]
    """)
    cfg = load(path, overrides={"repeats": 2, "defaults": {"max_tokens": 8}, "grid": {"seed": [7]},
                                "gates": []}).config
    assert (cfg.repeats, cfg.defaults.max_tokens, cfg.defaults.temperature) == (2, 8, 0)
    assert cfg.grid == {"seed": [7]} and cfg.gates == []
    assert load(path).config.repeats == 5  # the file is untouched


def test_an_invalid_override_is_named_as_such_not_as_a_line_of_the_file(write_config: Callable[..., Path]) -> None:
    path = write_config("name: o\ntarget: {kind: local}\nsuites: [suite.yaml]\nrepeats: 5\n")
    with pytest.raises(ConfigError, match=r"^overrides: repeats: Input should be greater than or equal to 1"):
        load(path, overrides={"repeats": 0})


def test_merging_leaves_both_inputs_alone() -> None:
    base = {"defaults": {"max_tokens": 64}, "grid": {"seed": [1]}}
    over = {"defaults": {"temperature": 0}, "grid": {"seed": [2]}}
    merged, paths = merge_overrides(base, over)
    assert merged == {"defaults": {"max_tokens": 64, "temperature": 0}, "grid": {"seed": [2]}}
    assert paths == {("defaults", "temperature"), ("grid", "seed")}
    assert base == {"defaults": {"max_tokens": 64}, "grid": {"seed": [1]}}
