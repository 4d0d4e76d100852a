"""report.html: one self-contained file (inline CSS, inline SVG charts, a few lines of JS)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import jinja2

from evalharness import __version__
from evalharness.report.charts import latency_chart, rates_chart
from evalharness.report.view import DRILLDOWN_SAMPLES_PER_CASE_CELL, build_view

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("evalharness.report", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True)


def _charts(summary: dict[str, Any], records: list[dict[str, Any]]) -> list[str]:
    labels = [c["label"] for c in summary["cells"]]
    ids = [c["cell_id"] for c in summary["cells"]]
    samples: dict[str, dict[str, list[float]]] = {"ttft_s": defaultdict(list), "e2e_s": defaultdict(list)}
    for r in records:
        if r["ok"]:
            for name, by_cell in samples.items():
                value = r["timings"].get(name)
                if value is not None:
                    by_cell[r["cell_id"]].append(value)
    rate_names = ("pass_rate", "json_valid_rate", "exact_match_rate")
    rates: dict[str, list[tuple[float, float, float] | None]] = {}
    for name in rate_names:
        row: list[tuple[float, float, float] | None] = []
        for cell in summary["cells"]:
            m = cell["metrics"].get(name) or {}
            row.append((m["value"], *m["ci95"]) if m.get("value") is not None and m.get("ci95") else None)
        rates[name] = row
    charts = [rates_chart(labels, rates),
              latency_chart(labels, [samples["e2e_s"][i] for i in ids], "End-to-end latency per setting"),
              latency_chart(labels, [samples["ttft_s"][i] for i in ids], "Time to first token per setting")]
    return [c for c in charts if c]


def render_html(manifest: dict[str, Any], summary: dict[str, Any], records: list[dict[str, Any]]) -> str:
    view = build_view(manifest, summary, records)
    return _ENV.get_template("report.html.j2").render(
        v=view, charts=_charts(summary, records), version=__version__,
        samples_shown=DRILLDOWN_SAMPLES_PER_CASE_CELL)


def write_html(run_dir: Path, manifest: dict[str, Any], summary: dict[str, Any],
               records: list[dict[str, Any]]) -> Path:
    path = run_dir / "report.html"
    path.write_text(render_html(manifest, summary, records), encoding="utf-8")
    return path
