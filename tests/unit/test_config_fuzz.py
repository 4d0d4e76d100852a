"""Config fuzzing: whatever a config or suite file holds, loading it gives a clean ConfigError or a valid
config, and ``evalharness validate`` exits 0 or 2 with a one-line message, never a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evalharness.cli import main
from evalharness.config import load_config
from evalharness.errors import ConfigError
from evalharness.params import build_body
from evalharness.plan import make_plan

VALID_CONFIG: dict[str, Any] = {
    "name": "fuzz",
    "target": {"base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key_env": "KEY", "headers": {"X-A": "b"}},
    "pricing": {"currency": "CNY", "input_per_1k": 0.001, "output_per_1k": 0.002},
    "suites": ["suite.yaml"],
    "defaults": {"max_tokens": 16, "temperature": 0.5, "stop": ["\n"], "extra_body": {"top_k": 20}},
    "grid": {"temperature": [0, 0.7], "seed": [None, 42], "response_format": [None, {"type": "json_object"}]},
    "repeats": 2,
    "run": {"concurrency": 2, "stream": True, "timeout_s": 10, "max_retries": 1, "rpm": 60, "tpm": 1000,
            "budget": 1.0},
    "gates": [{"metric": "pass_rate", "min": 0.5, "where": {"temperature": 0}}, {"metric": "e2e_s.p95", "max": 5}],
}
VALID_SUITE: dict[str, Any] = {
    "name": "s",
    "cases": [
        {"id": "a", "system": "Be brief.", "prompt": "Hi {{ who }}", "vars": {"who": "Ann"},
         "params": {"max_tokens": 8}, "expect": {"contains": "Ann", "json_schema": {"type": "object"}},
         "extract": {"regex": "(\\d+)"}, "tags": ["x"]},
        {"id": "b", "messages": [{"role": "user", "content": "hi"}], "expect": {"regex": "h.", "json_valid": True}},
    ],
}

# What YAML can hold once loaded by the safe loader, JSON-like part (YAML-only types are below, by hand).
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | text
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                      max_leaves=12)


def key_paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside ``node`` (mapping keys and list indexes)."""
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += key_paths(child, (*prefix, key))
    elif isinstance(node, list):
        for i, child in enumerate(node):
            out += key_paths(child, (*prefix, i))
    return out


def mutate(doc: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "replace":
        parent[last] = value
    elif how == "delete":
        del parent[last]
    elif isinstance(parent[last], dict):  # "add": an unexpected key beside the expected ones
        parent[last]["unexpected"] = value
    else:
        parent[last] = {"unexpected": value}
    return doc


def validate_cleanly(config: Path, *, unique_ids: bool = False) -> int:
    """Load ``config`` and run ``evalharness validate`` on it; fail on anything but a clean outcome.

    ``unique_ids`` also requires every planned item to have its own id (off in the random tests while
    the known bug 'repeated grid value' below stands, since they find it at once).
    """
    try:
        loaded = load_config(config)
    except ConfigError as exc:
        assert exc.file, "a config error names its file"
    else:
        items = make_plan(loaded).items
        # What validate accepts, a run can send: every request body encodes as JSON.
        for item in items:
            json.dumps(build_body("m", item.messages, item.params, stream=True))
        if unique_ids:
            assert len({i.item_id for i in items}) == len(items), "two work items share an id"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", str(config)])
    assert code in (0, 2), (code, err.getvalue())
    if code == 2:
        assert err.getvalue().startswith("evalharness: error: ") and "Traceback" not in err.getvalue()
    return code


def write(folder: Path, config: Any, suite: Any = VALID_SUITE) -> Path:
    (folder / "suite.yaml").write_text(yaml.safe_dump(suite, allow_unicode=True), encoding="utf-8")
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_the_base_documents_are_valid(tmp_path: Path) -> None:
    assert validate_cleanly(write(tmp_path, VALID_CONFIG), unique_ids=True) == 0


@FUZZ
@given(path=st.sampled_from(key_paths(VALID_CONFIG)), how=st.sampled_from(["replace", "delete", "add"]),
       value=values)
def test_any_value_at_any_key_of_a_config(tmp_path: Path, path: tuple[Any, ...], how: str, value: Any) -> None:
    validate_cleanly(write(tmp_path, mutate(VALID_CONFIG, path, how, value)))


@FUZZ
@given(path=st.sampled_from(key_paths(VALID_SUITE)), how=st.sampled_from(["replace", "delete", "add"]),
       value=values)
def test_any_value_at_any_key_of_a_suite(tmp_path: Path, path: tuple[Any, ...], how: str, value: Any) -> None:
    validate_cleanly(write(tmp_path, VALID_CONFIG, mutate(VALID_SUITE, path, how, value)))


@FUZZ
@given(doc=values)
def test_any_document_as_a_config(tmp_path: Path, doc: Any) -> None:
    validate_cleanly(write(tmp_path, doc))


@FUZZ
@given(source=st.text(st.sampled_from("{}[]:,-?&*!|>'\"#%@`\t\n ab01.") , max_size=60))
def test_any_yaml_ish_text_as_a_config(tmp_path: Path, source: str) -> None:
    (tmp_path / "config.yaml").write_text(source, encoding="utf-8")
    validate_cleanly(tmp_path / "config.yaml")


HEAD = "name: x\ntarget: {base_url: 'http://127.0.0.1:9/v1', model: m}\nsuites: [suite.yaml]\n"


@pytest.mark.parametrize("source", [
    pytest.param(b"", id="empty file"),
    pytest.param(b"\xff\xfe\x00garbage", id="not UTF-8"),
    pytest.param(HEAD.encode() + b"repeats: 1\x00\n", id="NUL byte"),
    pytest.param(HEAD.encode() + b"repeats:\t1\n\tgrid: {}\n", id="tab indentation"),
    pytest.param(HEAD.encode() + b"? [1, 2]\n: x\n", id="unhashable key"),
    pytest.param(HEAD.encode() + b"run: !!python/object/apply:os.system [echo hi]\n", id="python tag"),
    pytest.param(HEAD.encode() + b"---\nname: y\n", id="two documents"),
    pytest.param(HEAD.encode() + b"repeats: &r 1\nrun: {concurrency: *r}\n", id="alias"),
    pytest.param(HEAD.encode() + b"grid: {temperature: " + b"[" * 5000 + b"]" * 5000 + b"}\n", id="deep nesting"),
    pytest.param(HEAD.encode() + b"grid: {stop: [&a [*a]]}\n", id="recursive alias"),
    pytest.param(HEAD.encode() + b"grid: {extra_body: [{a: !!binary aGVsbG8=}]}\n", id="binary"),
    pytest.param(HEAD.encode() + b"defaults: {extra_body: {tags: !!set {a, b}}}\n", id="set"),
    pytest.param(HEAD.encode() + b"defaults: {extra_body: {when: 2001-12-14}}\n", id="timestamp"),
    pytest.param(HEAD.encode() + b"grid: {seed: [1, 1]}\n", id="repeated grid value"),
])
def test_hostile_yaml(tmp_path: Path, source: bytes) -> None:
    (tmp_path / "suite.yaml").write_text("name: s\ncases: [{id: a, prompt: hi}]\n", encoding="utf-8")
    (tmp_path / "config.yaml").write_bytes(source)
    validate_cleanly(tmp_path / "config.yaml", unique_ids=True)


def test_validate_from_the_shell_exits_2_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(HEAD + "run: {concurrency: [1, {a: b}], stream: maybe}\n", encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "evalharness", "validate", "config.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("evalharness: error: config.yaml:4: run.concurrency")
    assert "Traceback" not in proc.stderr and proc.stdout == ""
