"""The metric registry: a metric declared in one place reaches summary.json, report.html and ``compare``; the
docs are the registry's own."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalharness.cli import main
from evalharness.scoring import catalogue
from evalharness.scoring.catalogue import Compare, Metric, SampleRate, Shown
from tests.report.factory import make_run

ROOT = Path(__file__).resolve().parents[2]
NAME = "starts_with_capital_rate"


def starts_with_capital(record: dict[str, Any], spec: Any) -> float:
    return float((record.get("content") or " ")[0].isupper())


@pytest.fixture
def capital_rate() -> Iterator[Metric]:
    """A metric of the test's own, registered for the test only."""
    metric = catalogue.register(Metric(
        NAME, "rate", "quality", "capitalised", "Share of answers that start with a capital letter.",
        "share of completed samples", SampleRate(starts_with_capital, "no completed sample in this cell"),
        higher_is_better=True, compare=Compare("difference"), table=Shown(7), compared=Shown(8)))
    yield metric
    catalogue.unregister(NAME)


def answers(capital: bool) -> Any:
    """Every answer starts with a capital, or at temperature 1 none does."""
    def answer(case: str, params: dict[str, Any], repeat: int) -> str:
        return "paris is the capital." if params.get("temperature") == 1.0 and not capital else "Paris."
    return answer


def report(run_dir: Path) -> dict[str, Any]:
    assert main(["report", str(run_dir)]) in (0, 1)
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return summary


def test_a_registered_metric_reaches_summary_report_and_compare(
        capital_rate: Metric, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = make_run(tmp_path / "base", answer=answers(capital=True), repeats=10)
    new = make_run(tmp_path / "new", answer=answers(capital=False), repeats=10)
    summaries = report(base), report(new)
    values = {c["label"]: c["metrics"][NAME]["value"] for c in summaries[1]["cells"]}
    assert values == {"temperature=0 response_format=unset": 1.0, "temperature=0 response_format=json_object": 1.0,
                      "temperature=1.0 response_format=unset": 0.0,
                      "temperature=1.0 response_format=json_object": 0.0}
    assert list(summaries[0]["cells"][0]["metrics"])[-1] == NAME  # after every built-in metric
    assert "<th>capitalised</th>" in (new / "report.html").read_text()  # a column of the metrics table
    capsys.readouterr()
    assert main(["compare", str(base), str(new), "--json", str(tmp_path / "cmp.json")]) == 1
    out = capsys.readouterr().out
    assert NAME in out
    result = json.loads((tmp_path / "cmp.json").read_text())
    assert {(r["cell"], r["metric"]) for r in result["regressions"]} == {
        ("temperature=1.0 response_format=unset", NAME), ("temperature=1.0 response_format=json_object", NAME)}


def test_a_metric_not_registered_is_nowhere(tmp_path: Path) -> None:
    summary = report(make_run(tmp_path, answer=answers(capital=True)))
    assert NAME not in summary["cells"][0]["metrics"]
    assert list(summary["cells"][0]["metrics"]) == list(catalogue.names())


def test_a_name_is_registered_once(capital_rate: Metric) -> None:
    with pytest.raises(ValueError, match="already registered"):
        catalogue.register(capital_rate)


def test_a_view_of_a_field_the_metric_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="table shows p50, not among its fields"):
        Metric("x_rate", "rate", "quality", "x", "x", "x", SampleRate(starts_with_capital, "none"),
               table=Shown(1, ("p50",)))


def test_docs_metrics_md_is_what_the_registry_generates() -> None:
    written = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert written == catalogue.markdown(), ("docs/metrics.md is out of date: run "
                                             "python -m evalharness.scoring.catalogue --markdown > docs/metrics.md")


@pytest.mark.parametrize("metric", catalogue.metrics(), ids=lambda m: m.name)
def test_how_a_metric_is_computed_names_a_function_that_exists(metric: Metric) -> None:
    module, _, name = metric.computed.by.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
