"""Reports written from summary.json and results.jsonl: report.html, summary.md, junit.xml, results.csv."""

from __future__ import annotations

from pathlib import Path

from evalharness.report.html import write_html
from evalharness.report.junit import write_junit
from evalharness.report.markdown import write_markdown
from evalharness.report.outcomes import build_outcomes
from evalharness.report.results_csv import write_csv
from evalharness.types import Manifest, Record, Summary


def write_reports(run_dir: Path, manifest: Manifest, summary: Summary,
                  records: list[Record]) -> list[Path]:
    """Write every report file of a run; returns their paths."""
    # Expectation checks per record are shared by the HTML drill-down, junit.xml and results.csv.
    outcomes = build_outcomes(manifest, summary, records)
    return [write_html(run_dir, manifest, summary, records, outcomes), write_markdown(run_dir, summary),
            write_junit(run_dir, summary, outcomes), write_csv(run_dir, summary, records, outcomes)]
