"""The shipped suites and configs: all valid, big enough, and their answer extractors read right answers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evalharness.cli import main
from evalharness.config import load_config
from evalharness.errors import ConfigError
from evalharness.scoring.checks import check_expect, extract_answer
from evalharness.suites import Suite, load_suite

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
SUITES = sorted((REPO / "suites").glob("*.yaml"))


def suite(name: str) -> Suite:
    return load_suite(REPO / "suites" / f"{name}.yaml")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_validates_without_a_key(config: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("WCODE_API_KEY", raising=False)
    assert main(["validate", str(config)]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize(("name", "at_least"), [
    ("json_extraction", 10), ("tool_calls", 6), ("gsm_math", 10), ("chinese", 6), ("long_determinism", 4),
    ("creative", 4), ("determinism", 4)])
def test_suites_have_enough_cases(name: str, at_least: int) -> None:
    assert len(suite(name).cases) >= at_least
    assert {p.stem for p in SUITES} >= {name}


def test_quickstart_keeps_its_eight_cases_and_128_requests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(REPO / "configs" / "quickstart.yaml")]) == 0
    assert "8 cases, 8 cells, 128 requests" in capsys.readouterr().out


def test_json_extraction_cases_all_carry_a_schema() -> None:
    s = suite("json_extraction")
    assert set(s.schemas) == {c.id for c in s.cases}


def test_every_tool_case_defines_its_tools_and_expects_one_of_them() -> None:
    for case in suite("tool_calls").cases:
        assert case.params.tools, case.id
        assert case.expect is not None and case.expect.tool_call is not None, case.id
        assert case.expect.tool_call.name in {t["function"]["name"] for t in case.params.tools}, case.id


@pytest.mark.parametrize("name", ["gsm_math", "chinese"])
def test_answer_extractors_read_a_correct_worked_answer(name: str) -> None:
    checked = 0
    for case in suite(name).cases:
        if case.expect is None or case.expect.answer is None or case.extract is None or case.extract.regex is None:
            continue
        want = case.expect.answer
        label = "答案：" if name == "chinese" else "Answer: "
        # Working that mentions other numbers first, then the final line: the last answer line counts.
        text = f"Step 1: 3 + 4 = 7.\nStep 2: 100 - 1 = 99.\n{label}{want}"
        assert extract_answer(text, case.extract) == str(want), case.id
        assert check_expect(text, case.expect, None, case.extract) == [], case.id
        assert check_expect(text.replace(f"{label}{want}", f"{label}99999"), case.expect, None, case.extract), case.id
        checked += 1
    assert checked >= (10 if name == "gsm_math" else 1)


def test_tool_call_expectation_must_name_one_of_the_case_tools(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("""\
name: s
cases:
  - id: c
    prompt: Weather in Oslo?
    params:
      tools: [{type: function, function: {name: get_weather, parameters: {type: object}}}]
    expect:
      tool_call: {name: get_wether}
""")
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert info.value.key == "cases[0].expect.tool_call.name" and info.value.line == 8
    assert "get_weather" in str(info.value)


SELECT = """\
name: sel
target: {base_url: http://127.0.0.1:9/v1, model: m}
suites:
  - {suites}
"""

TAGGED = """\
name: mini
cases:
  - {id: a, prompt: A, tags: [quick]}
  - {id: b, prompt: B}
  - {id: c, prompt: C, tags: [quick, zh]}
"""


@pytest.mark.parametrize(("entry", "ids"), [
    ("suite.yaml", ["a", "b", "c"]),
    ("{path: suite.yaml, cases: [c, b]}", ["b", "c"]),
    ("{path: suite.yaml, tags: [quick]}", ["a", "c"]),
    ("{path: suite.yaml, cases: [b], tags: [zh]}", ["b", "c"]),
])
def test_a_config_can_pick_cases_of_a_suite(write_config: Callable[..., Path], entry: str, ids: list[str]) -> None:
    loaded = load_config(write_config(SELECT.replace("{suites}", entry), TAGGED))
    assert [c.id for c in loaded.suites[0].cases] == ids
    assert sorted(loaded.suites[0].messages) == ids


@pytest.mark.parametrize(("entry", "key", "words"), [
    ("{path: suite.yaml, cases: [a, nope]}", "suites[0].cases[1]", "no case 'nope'"),
    ("{path: suite.yaml, tags: [slow]}", "suites[0].tags", "no case"),
])
def test_picking_a_missing_case_is_a_config_error(write_config: Callable[..., Path], entry: str, key: str,
                                                  words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(SELECT.replace("{suites}", entry), TAGGED))
    assert info.value.key == key and info.value.line == 4
    assert words in str(info.value)
