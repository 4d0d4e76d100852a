"""Reports written from summary.json and results.jsonl: report.html, summary.md (more in later modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalharness.report.html import write_html
from evalharness.report.markdown import write_markdown


def write_reports(run_dir: Path, manifest: dict[str, Any], summary: dict[str, Any],
                  records: list[dict[str, Any]]) -> list[Path]:
    """Write every report file of a run; returns their paths."""
    return [write_html(run_dir, manifest, summary, records), write_markdown(run_dir, summary)]
