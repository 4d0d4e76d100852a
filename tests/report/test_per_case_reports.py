"""Per-case gates and pass@k / pass^k as a reader of each output sees them: console, summary.md, junit, HTML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path

import pytest

from evalharness import app
from tests.report.factory import make_run

GATES = [{"metric": "pass_rate", "where": {}, "per_case": True, "min": 0.9}]


@pytest.fixture
def reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """A synthetic run whose per_case gate fails at temperature 1 (qa/capital answers Lyon once in 3),
    rebuilt with ``evalharness report``; returns the run directory and what it printed."""
    run_dir = make_run(tmp_path, gates=GATES)
    assert app.report(str(run_dir)) == 1
    return run_dir, capsys.readouterr().out


def test_the_console_lists_each_failing_case_with_its_counts(reported: tuple[Path, str]) -> None:
    out = reported[1]
    # n: the samples the verdict stands on; "of 9 planned" where a request of the cell failed.
    assert ("gate FAIL: pass_rate [temperature=1.0 response_format=unset] = 0 (n=5 of 9 planned) (want each case "
            ">= 0.9) 2 of 2 cases fail:\n  json/person 0/2 (0.0%)\n  qa/capital 2/3 (66.7%)\n") in out
    assert "gate pass: pass_rate [temperature=0 response_format=unset] = 1 (n=6) (want each case >= 0.9)" in out


def test_summary_json_names_the_failing_cases_per_cell(reported: tuple[Path, str]) -> None:
    summary = json.loads((reported[0] / "summary.json").read_text())
    failing = {g["label"]: [(c["case"], c["successes"], c["n"]) for c in g["failing_cases"]]
               for g in summary["gates"]}
    assert failing == {"temperature=0 response_format=unset": [], "temperature=0 response_format=json_object": [],
                       "temperature=1.0 response_format=unset": [("json/person", 0, 2), ("qa/capital", 2, 3)],
                       "temperature=1.0 response_format=json_object": [("qa/capital", 2, 3)]}
    metrics = summary["cells"][0]["metrics"]
    assert metrics["pass_hat_k"]["k"] == 3 and set(metrics["pass_at_k"]["by_k"]) == {"1", "2", "3"}


def test_junit_has_a_failing_test_case_per_failing_case(reported: tuple[Path, str]) -> None:
    root = ET.parse(reported[0] / "junit.xml").getroot()
    gates = next(s for s in root.iter("testsuite") if s.get("name") == "gates")
    failed = [c.get("name") for c in gates.findall("testcase") if c.find("failure") is not None]
    assert failed == ["pass_rate each case >= 0.9 [temperature=1.0 response_format=unset] json/person",
                      "pass_rate each case >= 0.9 [temperature=1.0 response_format=unset] qa/capital",
                      "pass_rate each case >= 0.9 [temperature=1.0 response_format=json_object] qa/capital"]
    assert gates.get("tests") == "5" and gates.get("failures") == "3"
    failure = gates.find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == "pass_rate of json/person 0/2 (0.0%) (want each case >= 0.9)"


def test_summary_md_shows_pass_k_columns_and_the_failing_cases(reported: tuple[Path, str]) -> None:
    text = (reported[0] / "summary.md").read_text()
    assert "| pass | pass@k | pass^k |" in text
    assert "| pass_rate each case ≥ 0.9 | temperature=1.0 response_format=unset | qa/capital | 2/3 | 66.7% |" in text
    assert "(k = 3; unbiased estimates" in text


def test_report_html_shows_pass_k_and_lists_failing_cases_in_the_gates_section(reported: tuple[Path, str]) -> None:
    html = unescape((reported[0] / "report.html").read_text())
    assert "<th>pass@k</th><th>pass^k</th>" in html
    gates = html[html.index('<h2 id="gates">'):html.index('<h2 id="heatmaps">')]
    assert '<ul class="failed-cases"><li>json/person 0/2 (0.0%)</li><li>qa/capital 2/3 (66.7%)</li></ul>' in gates
