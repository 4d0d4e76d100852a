"""Checks of your own: loading by file path at validation, the registry (decorator and entry points), verdicts
of every kind, and a check's own errors recorded per sample while scoring and reporting go on."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import evalharness
from evalharness.app import report
from evalharness.errors import ConfigError
from evalharness.scoring import registry
from evalharness.scoring.metrics import CaseSpec
from evalharness.suites import load_suite
from tests.report.factory import make_run

CHECKS = '''\
import evalharness

def is_polite(answer, case):
    return "please" in answer.lower()

def politeness(answer, case):
    return 0.8 if "please" in answer.lower() else 0.2

def explained(answer, case):
    return evalharness.CheckResult("please" in answer.lower(), reason=f"{case.case_id}: no please")

def broken(answer, case):
    return {"a": 1}["b"]

def wrong_type(answer, case):
    return "yes"

def sees_the_case(answer, case):
    return case.vars["who"] == "Ann" and case.messages[0]["content"] == "Greet Ann." and case.args == {"n": 2}

NOT_A_FUNCTION = 3

def one_argument(answer):
    return True
'''


def suite_with(tmp_path: Path, expect: str, checks: str = CHECKS) -> Path:
    (tmp_path / "checks.py").write_text(checks)
    path = tmp_path / "suite.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: polite
        cases:
          - id: greet
            prompt: Greet {{{{ who }}}}.
            vars: {{who: Ann}}
            expect: {expect}
        """))
    return path


def test_a_file_check_is_resolved_beside_the_suite_and_hashed(tmp_path: Path) -> None:
    (tmp_path / "suites").mkdir()
    suite = load_suite(suite_with(tmp_path / "suites", '{python: "checks.py:is_polite"}'))
    [ref] = suite.checks["greet"]
    assert ref.path == str((tmp_path / "suites" / "checks.py").resolve())
    assert ref.sha256 is not None and len(ref.sha256) == 64 and ref.min == 0.5


@pytest.mark.parametrize(("expect", "key", "message"), [
    ('{python: "nothere.py:is_polite"}', "cases[0].expect.python", "check file not found: nothere.py"),
    ('{python: "checks.py:is_rude"}', "cases[0].expect.python", "checks.py has no function 'is_rude'"),
    ('{python: "checks.py:NOT_A_FUNCTION"}', "cases[0].expect.python", "is a int, not a function"),
    ('{python: "checks.py:one_argument"}', "cases[0].expect.python", "must take two arguments (answer, case)"),
    ('{python: "checks.py"}', "cases[0].expect.python", "is not file.py:function"),
    ('{python: [checks.py:is_polite, {fn: "checks.py:nope"}]}', "cases[0].expect.python[1].fn", "no function"),
    ("{check: no-such-check}", "cases[0].expect.check", "no check is named 'no-such-check'"),
])
def test_a_bad_check_reference_is_a_config_error_naming_suite_key_and_line(
        tmp_path: Path, expect: str, key: str, message: str) -> None:
    path = suite_with(tmp_path, expect)
    with pytest.raises(ConfigError) as info:
        load_suite(path)
    assert info.value.file == str(path) and info.value.key == key and info.value.line == 6
    assert message in info.value.message


def test_a_check_file_that_fails_to_import_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"importing checks.py failed: ZeroDivisionError"):
        load_suite(suite_with(tmp_path, '{python: "checks.py:f"}', checks="x = 1 / 0\n"))


def spec_for(path: Path) -> CaseSpec:
    suite = load_suite(path)
    case = suite.cases[0]
    return CaseSpec(expect=case.expect, checks=tuple(suite.checks[case.id]),
                    context={"suite": suite.name, "case_id": case.id, "vars": case.vars,
                             "messages": suite.messages[case.id]})


def record(content: str | None) -> dict[str, Any]:
    return {"ok": True, "suite": "polite", "case_id": "greet", "content": content, "params": {"max_tokens": 8}}


@pytest.mark.parametrize(("expect", "answer", "failures"), [
    ('{python: "checks.py:is_polite"}', "Hello, please sit.", []),
    ('{python: "checks.py:is_polite"}', "Hello.", ["checks.py:is_polite failed"]),
    ('{python: "checks.py:politeness"}', "Hello.", ["checks.py:politeness: score 0.2 < 0.5"]),
    ('{python: {fn: "checks.py:politeness", min: 0.9}}', "Please.", ["checks.py:politeness: score 0.8 < 0.9"]),
    ('{python: "checks.py:explained"}', "Hi.", ["checks.py:explained: greet: no please"]),
    ('{python: {fn: "checks.py:sees_the_case", args: {n: 2}}}', "Hi.", []),
    ('{contains: Hi, python: "checks.py:is_polite"}', "Yo.", ["does not contain 'Hi'", "checks.py:is_polite failed"]),
    ('{python: "checks.py:wrong_type"}', "Hi.",
     ["checks.py:wrong_type: returned str 'yes'; a check returns a bool, a score in [0, 1] or an "
      "evalharness.CheckResult"]),
])
def test_verdicts_of_a_file_check(tmp_path: Path, expect: str, answer: str, failures: list[str]) -> None:
    spec = spec_for(suite_with(tmp_path, expect))
    assert [o.message for o in spec.outcomes(record(answer)) if not o.passed] == failures


def test_an_exception_in_a_check_fails_the_sample_with_its_traceback(tmp_path: Path) -> None:
    spec = spec_for(suite_with(tmp_path, '{python: "checks.py:broken"}'))
    [outcome] = spec.outcomes(record("Hi."))
    assert not outcome.passed and outcome.error == "raised KeyError: 'b'"
    assert outcome.traceback is not None and 'checks.py", line 13, in broken' in outcome.traceback
    assert "run_check" not in outcome.traceback  # the user's frames, not ours


@pytest.fixture
def clean_registry() -> Iterator[None]:
    before = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(before)


@pytest.mark.usefixtures("clean_registry")
def test_a_decorated_check_is_used_by_name_with_args(tmp_path: Path) -> None:
    @evalharness.check("longer-than")
    def longer_than(answer: str, case: evalharness.CheckContext) -> bool:
        return len(answer) > int(case.args["chars"])

    spec = spec_for(suite_with(tmp_path, "{check: {name: longer-than, args: {chars: 5}}}"))
    assert spec.checks[0].source == f"module {__name__}"
    assert [o.passed for o in spec.outcomes(record("Hello there"))] == [True]
    assert [o.message for o in spec.outcomes(record("Hi"))] == ["longer-than failed"]


def test_the_built_in_checks_are_in_the_same_registry(tmp_path: Path) -> None:
    assert {"contains", "regex", "equals", "json_schema", "tool_call", "answer"} <= set(registry.names())
    spec = spec_for(suite_with(tmp_path, "{check: {name: contains, args: {value: please}}}"))
    assert [o.message for o in spec.outcomes(record("Hi"))] == ["contains: does not contain 'please'"]


@pytest.fixture
def installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A distribution on sys.path whose entry points offer the check ``polite``, as an installed package would."""
    site = tmp_path / "site"
    (site / "politeness_pkg").mkdir(parents=True)
    (site / "politeness_pkg" / "__init__.py").write_text(
        "def polite(answer, case):\n    return 1.0 if 'please' in answer.lower() else 0.0\n")
    info = site / "politeness_pkg-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: politeness-pkg\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text("[evalharness.checks]\npolite = politeness_pkg:polite\n"
                                           "broken = politeness_pkg:no_such_function\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    registry._REGISTRY.pop("polite", None)
    sys.modules.pop("politeness_pkg", None)


def test_a_check_from_an_entry_point_is_found_by_name(tmp_path: Path, installed_package: Path) -> None:
    assert "polite" in registry.names()
    spec = spec_for(suite_with(tmp_path, "{check: polite}"))
    assert spec.checks[0].source == "entry point politeness_pkg:polite of politeness-pkg 1.2"
    assert [o.passed for o in spec.outcomes(record("Please come in"))] == [True]
    assert [o.message for o in spec.outcomes(record("Come in"))] == ["polite: score 0 < 0.5"]


def test_an_entry_point_that_fails_to_load_is_a_config_error(tmp_path: Path, installed_package: Path) -> None:
    with pytest.raises(ConfigError, match=r"check 'broken' \(entry point politeness_pkg:no_such_function of "
                                          r"politeness-pkg 1.2\) failed to load: AttributeError"):
        load_suite(suite_with(tmp_path, "{check: broken}"))


def run_with_checks(tmp_path: Path, expect: str) -> Path:
    """A stored run (no model) whose one case uses checks.py; answers alternate polite and not."""
    spec = spec_for(suite_with(tmp_path, expect))
    cases = {"polite/greet": spec.to_manifest()}
    return make_run(tmp_path, grid={"temperature": [0]}, cases=cases, repeats=4, gates=[],
                    answer=lambda case, params, repeat: "Please sit." if repeat % 2 else "Sit.")


def test_report_records_a_broken_check_per_sample_and_goes_on(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = run_with_checks(tmp_path, '{python: ["checks.py:is_polite", "checks.py:broken"]}')
    assert report(str(run_dir)) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    tallies = summary["cells"][0]["checks"]
    assert {k: (v["runs"], v["passed"], v["errors"]) for k, v in tallies.items()} == {
        "checks.py:is_polite": (4, 2, 0), "checks.py:broken": (4, 0, 4)}
    [first, *_] = tallies["checks.py:broken"]["error_samples"]
    assert first["error"] == "raised KeyError: 'b'" and "in broken" in first["traceback"]
    assert summary["cells"][0]["metrics"]["pass_rate"]["value"] == 0.0
    html = (run_dir / "report.html").read_text()
    assert "Checks of your own" in html and "raised KeyError: &#39;b&#39;" in html
    junit = (run_dir / "junit.xml").read_text()
    assert "checks.py:broken: raised KeyError: 'b'" in junit.replace("&apos;", "'")
    assert "checks.py:is_polite failed" in junit


def test_report_says_when_a_check_file_changed_or_is_gone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = run_with_checks(tmp_path, '{python: "checks.py:is_polite"}')
    (tmp_path / "checks.py").write_text(CHECKS.replace('"please" in answer.lower()', "True", 1))
    report(str(run_dir))
    [own] = json.loads((run_dir / "summary.json").read_text())["checks"]
    assert own["status"] == "changed" and "changed since the run" in own["note"]
    assert "changed since the run" in capsys.readouterr().err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["cells"][0]["checks"]["checks.py:is_polite"]["passed"] == 4  # scored with the file as it is now

    (tmp_path / "checks.py").unlink()
    report(str(run_dir))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["checks"][0]["status"] == "missing" and "is missing" in summary["checks"][0]["note"]
    assert summary["cells"][0]["checks"]["checks.py:is_polite"]["errors"] == 4
    assert "is missing" in capsys.readouterr().err
