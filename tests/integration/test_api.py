"""The Python API against the bundled model: a quiet run, typed results, a stored run read back, compare."""

from __future__ import annotations

from pathlib import Path

import pytest

import evalharness
from evalharness.errors import ConfigError

SUITE = """\
name: mini
cases:
  - id: capital
    prompt: What is the capital of France? Answer in one word.
    expect: {contains: Paris}
  - id: never
    prompt: Say hello.
    expect: {contains: "a phrase no model says: zq7#x"}
"""
CONFIG = {"name": "api", "target": {"kind": "local"}, "suites": ["suite.yaml"],
          "defaults": {"max_tokens": 8, "temperature": 0, "seed": 1}, "repeats": 2,
          "run": {"concurrency": 1, "max_retries": 1},
          "gates": [{"metric": "error_rate", "max": 0.0}, {"metric": "pass_rate", "min": 0.9}]}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> evalharness.Run:
    folder = tmp_path_factory.mktemp("api")
    (folder / "suite.yaml").write_text(SUITE)
    run = evalharness.run(CONFIG, base_dir=folder, out=folder / "run")
    return run


def test_a_run_is_quiet_and_typed(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    run = evalharness.run(CONFIG, out=tmp_path / "run", overrides={"gates": [{"metric": "error_rate", "max": 0}]})
    assert capfd.readouterr() == ("", "")  # progress=False: not a line on stdout or stderr
    assert run.passed and run.complete and run.run_dir == tmp_path / "run"
    cell = run.cell(temperature=0)
    assert cell.metric("error_rate").value == 0.0 and cell["requests"].value == 4
    assert cell["pass_rate"].value == 0.5 and cell["pass_rate"].n == 4 and cell["pass_rate"].ci95 is not None
    e2e = cell["e2e_s"]
    assert e2e.value is None and e2e.p50 is not None and e2e.p95 is not None and e2e.p50 <= e2e.p95
    assert cell["answer_agreement_rate"].value is None and cell["answer_agreement_rate"].reason
    assert [p.name for p in run.reports] == ["report.html", "summary.md", "junit.xml", "results.csv"]
    assert "_reports" not in run.summary and "_reports" not in (tmp_path / "run" / "summary.json").read_text()
    assert len(run.records) == 4
    assert {(c.case, c.passed) for c in run.cases} == {("mini/capital", True), ("mini/never", False)}


def test_a_failed_gate_is_a_verdict_and_a_stored_run_reads_back_the_same(
        finished: evalharness.Run) -> None:
    run = finished
    assert not run.passed and run.complete
    [failed] = [g for g in run.gates if not g.passed]
    assert (failed.metric, failed.value, failed.cell) == ("pass_rate", 0.5, "default")
    assert failed.message == "pass_rate = 0.5 (n=4) (want >= 0.9)"
    again = evalharness.load_run(run.run_dir)
    assert (again.passed, again.reports, again.cells) == (run.passed, run.reports, run.cells)


def test_compare_accepts_runs_and_folders(finished: evalharness.Run) -> None:
    run = finished
    same = evalharness.compare(run, str(run.run_dir))
    assert same.passed and not same.regressions
    assert {c.metric for c in same.changes} >= {"pass_rate", "error_rate"}


def test_a_bad_config_raises_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^overrides: defaults.max_tokens: "):
        evalharness.run(CONFIG, base_dir=tmp_path, overrides={"defaults": {"max_tokens": -1}})
    assert not (tmp_path / "reports").exists()
