"""Plain view models for the reports: every number formatted here, so templates hold no logic."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evalharness.gates import metric_value
from evalharness.scoring.metrics import CaseSpec, sample_failures

# (metric, field, heading, kind) of the per-cell table; kind picks the formatting.
CELL_COLUMNS: list[tuple[str, str, str, str]] = [
    ("pass_rate", "value", "pass", "rate"),
    ("json_valid_rate", "value", "JSON valid", "rate"),
    ("schema_valid_rate", "value", "schema valid", "rate"),
    ("exact_match_rate", "value", "identical repeats", "rate"),
    ("unique_outputs", "value", "distinct outputs", "num"),
    ("error_rate", "value", "errors", "rate"),
    ("ttft_s", "p50", "TTFT p50", "sec"),
    ("e2e_s", "p50", "e2e p50", "sec"),
    ("e2e_s", "p95", "e2e p95", "sec"),
    ("completion_tokens", "mean", "out tokens/req", "num"),
    ("cost_per_1k_requests", "value", "cost / 1k req", "money"),
]
DRILLDOWN_SAMPLES_PER_CASE_CELL = 5
DRILLDOWN_TEXT_LIMIT = 2000


def fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "rate":
        return f"{100 * value:.1f}%"
    if kind == "sec":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if kind == "money":
        return f"{value:.4g}"
    if kind == "num":
        return f"{value:.3g}" if isinstance(value, float) else str(value)
    return str(value)


def cell_value(metric: dict[str, Any] | None, field: str, kind: str) -> dict[str, str]:
    if not metric:
        return {"text": "–", "title": "", "sort": ""}
    value = metric.get(field)
    if value is None:
        return {"text": "–", "title": str(metric.get("reason", "")), "sort": ""}
    title = ""
    ci = metric.get("ci95") if field == "value" else metric.get(f"{field}_ci95")
    if ci:
        title = f"95% interval {fmt(ci[0], kind)} – {fmt(ci[1], kind)}"
    if "n" in metric:
        title += f" (n={metric['n']})"
    return {"text": fmt(value, kind), "title": title.strip(), "sort": f"{value:.6g}"}


def best_cell(cells: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The cell a user would pick: highest pass rate, then JSON validity, determinism, lowest p50 latency."""
    def key(cell: dict[str, Any]) -> tuple[float, ...]:
        m = cell["metrics"]
        return (metric_value(m, "pass_rate") or 0.0, metric_value(m, "json_valid_rate") or 0.0,
                -(metric_value(m, "error_rate") or 0.0), metric_value(m, "exact_match_rate") or 0.0,
                -(metric_value(m, "e2e_s.p50") or float("inf")))
    measured = [c for c in cells if c["n"]]
    return max(measured, key=key) if measured else None


def build_view(manifest: dict[str, Any], summary: dict[str, Any], records: list[dict[str, Any]]
               ) -> dict[str, Any]:
    """Everything report.html shows, as strings and lists."""
    totals = summary["totals"]
    best = best_cell(summary["cells"])
    cells = [{"cell_id": c["cell_id"], "label": c["label"], "n": c["n"], "best": best is c,
              "values": [cell_value(c["metrics"].get(m), f, k) for m, f, _, k in CELL_COLUMNS]}
             for c in summary["cells"]]
    gates = [{"metric": g["metric"], "cell": g.get("label") or g.get("cell_id") or "run",
              "value": "–" if g["value"] is None else f"{g['value']:.4g}",
              "bound": " ".join(x for x in (f"≥ {g['min']}" if g["min"] is not None else "",
                                            f"≤ {g['max']}" if g["max"] is not None else "") if x),
              "passed": g["passed"], "reason": g.get("reason", "")} for g in summary["gates"]]
    return {
        "name": summary["name"], "run_id": summary["run_id"], "target": summary["target"],
        "started_at": summary["started_at"], "passed": summary["passed"], "complete": summary["complete"],
        "stop_reason": summary.get("stop_reason") or "",
        "totals": [("requests", f"{totals['requests']} of {totals['planned']}"),
                   ("errors", str(totals["errors"])), *_usage_totals(totals)],
        "errors_by_kind": sorted(totals["errors_by_kind"].items()),
        "best": {"label": best["label"], "why": _why(best)} if best else None,
        "columns": [heading for _, _, heading, _ in CELL_COLUMNS],
        "cells": cells, "gates": gates,
        "cases": _drilldown(manifest, summary, records),
    }


def _usage_totals(totals: dict[str, Any]) -> list[tuple[str, str]]:
    if totals["requests"] and not totals.get("usage_reported"):
        return [("tokens and cost", "not reported by the server")]
    return [("prompt tokens", f"{totals['prompt_tokens']:,}"),
            ("completion tokens", f"{totals['completion_tokens']:,}"),
            ("cost", f"{totals['cost']:.6f} {totals['currency']}")]


def _why(cell: dict[str, Any]) -> str:
    parts = []
    for name, field, heading, kind in [*CELL_COLUMNS[:4], CELL_COLUMNS[7]]:
        value = (cell["metrics"].get(name) or {}).get(field)
        if value is not None:
            parts.append(f"{heading} {fmt(value, kind)}")
    return ", ".join(parts)


def _drilldown(manifest: dict[str, Any], summary: dict[str, Any], records: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    labels = {c["cell_id"]: c["label"] for c in summary["cells"]}
    specs = {key: CaseSpec.from_manifest(spec) for key, spec in manifest["cases"].items()}
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        grouped[f"{r['suite']}/{r['case_id']}"][r["cell_id"]].append(r)
    cases = []
    for key in manifest["cases"]:
        by_cell = grouped.get(key, {})
        rows = []
        for cell_id, label in labels.items():
            recs = sorted(by_cell.get(cell_id, []), key=lambda r: r["repeat"])
            distinct = len({r.get("content") for r in recs if r["ok"]})
            samples = []
            for r in recs[:DRILLDOWN_SAMPLES_PER_CASE_CELL]:
                failures = sample_failures(r, specs[key])
                text = r.get("content") if r["ok"] else r.get("error")
                samples.append({"repeat": r["repeat"], "ok": r["ok"], "passed": not failures,
                                "failures": "; ".join(failures),
                                "text": _clip(text or ""), "reasoning": _clip(r.get("reasoning") or "")})
            rows.append({"label": label, "distinct": distinct, "n": len(recs), "samples": samples,
                         "hidden": max(0, len(recs) - DRILLDOWN_SAMPLES_PER_CASE_CELL)})
        cases.append({"key": key, "rows": rows})
    return cases


def _clip(text: str) -> str:
    return text if len(text) <= DRILLDOWN_TEXT_LIMIT else text[:DRILLDOWN_TEXT_LIMIT] + " …[truncated]"
