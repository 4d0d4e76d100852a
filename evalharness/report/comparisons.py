"""Comparisons of two cells (paired differences with intervals), from ``summary["comparisons"]`` if present.

Rendered as one row per pair of cells and one column per metric. The shape read is the one
``regress.cell_comparisons`` writes — ``{"reference": {cell_id, label}, "cell": {…}, "differs_in": [axes],
"metrics": {name: {kind, before, after, change, ci95, mde, finding, reason, …}}}`` — and, since that shape
is young, also a flat ``{metric, a|base, b|new, diff|change|ratio, ci95, verdict}`` list. Adjust here and in
the template's ``comparisons`` block only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalharness.plan import canonical
from evalharness.report.heatmap import value_label
from evalharness.types import CellSummary, MetricComparison, Summary

_CELL_A = ("reference", "a", "cell_a", "base", "baseline", "base_cell_id")
_CELL_B = ("cell", "b", "cell_b", "new", "candidate", "cell_id")
_CHANGE = ("change", "diff", "difference", "delta", "ratio", "estimate")
_FINDING = ("finding", "verdict")
# Findings in the words of a comparison between settings; a class for colour.
_FINDING_CLASS = {"better": "better", "improved": "better", "worse": "worse", "regressed": "worse",
                  "same": "same", "unchanged": "same", "inconclusive": "unclear"}


def _first(item: Mapping[str, Any], names: tuple[str, ...]) -> Any:
    return next((item[n] for n in names if item.get(n) is not None), None)


def _cell_id(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("cell_id") or value.get("label")
    return "–" if value is None else str(value)


def _what_changes(a: CellSummary | None, b: CellSummary | None, differs: list[str]) -> str:
    """``temperature 0 → 1.0`` for each axis the two cells differ in."""
    if a is None or b is None:
        return ", ".join(differs)
    axes = differs or [k for k in dict.fromkeys([*a["params"], *b["params"]])
                       if canonical(a["params"].get(k)) != canonical(b["params"].get(k))]
    return "; ".join(f"{axis} {value_label(axis, a['params'].get(axis))} → {value_label(axis, b['params'].get(axis))}"
                     for axis in axes)


def _is_ratio(result: MetricComparison) -> bool:
    return result.get("kind") == "ratio" or "ratio" in result


def _change_text(value: Any, ratio: bool) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "–"
    return f"×{value:.3g}" if ratio else f"{100 * value:+.1f} pp"


def _result_view(metric: str, result: MetricComparison) -> dict[str, str]:
    """One metric of one comparison: the change, its 95% interval, the finding, and a tooltip."""
    ratio = _is_ratio(result)
    change = _first(result, _CHANGE)
    ci = result.get("ci95") or result.get("ci")
    interval = (f"{_change_text(ci[0], ratio)} – {_change_text(ci[1], ratio)}"
                if isinstance(ci, (list, tuple)) and len(ci) == 2 else "")
    finding = str(_first(result, _FINDING) or "")
    title = [metric + (f".{result['field']}" if result.get("field") else "")]
    before, after = result.get("before"), result.get("after")
    if isinstance(before, (int, float)) and isinstance(after, (int, float)):
        title.append(f"{before:.3g} → {after:.3g}")
    mde = result.get("mde")
    if isinstance(mde, (int, float)):
        title.append(f"minimum detectable effect {mde * 100:.1f}{'%' if ratio else ' pp'}")
    if result.get("n") is not None:
        title.append(f"n={result['n']}" + (f" over {result['cases']} cases" if result.get("cases") else ""))
    if result.get("reason"):
        title.append(str(result["reason"]))
    return {"text": _change_text(change, ratio), "interval": interval, "finding": finding,
            "css": _FINDING_CLASS.get(finding, ""), "title": "; ".join(title)}


def _cases_text(cases: Any) -> str:
    """The cases that changed between two settings: ``s/c1 pass_rate 10/10 → 0/10 (worse)``; "" for none."""
    if not isinstance(cases, list):
        return ""
    return "; ".join(f"{c['case']} {c['metric']} {c['counts']} ({c['finding']})" for c in cases
                     if isinstance(c, dict) and {"case", "metric", "counts", "finding"} <= set(c))


def comparisons_view(summary: Summary, keys: dict[str, str]) -> dict[str, Any] | None:
    """Rows (pairs of cells) × columns (metrics) of changes, or None when the summary has no comparisons."""
    raw = summary.get("comparisons")
    if raw is None:
        return None
    if not isinstance(raw, list):
        return {"metrics": [], "rows": [], "note": "summary.json has comparisons in a shape this report does not read"}
    cells = {c["cell_id"]: c for c in summary["cells"]}
    metrics: dict[str, str] = {}  # name -> heading
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for item in raw:
        if not isinstance(item, dict):
            continue
        a, b = _cell_id(_first(item, _CELL_A)), _cell_id(_first(item, _CELL_B))
        nested = item.get("metrics")
        results = nested if isinstance(nested, dict) else {str(item.get("metric", "")): item}
        differs = [str(x) for x in item.get("differs_in") or []]
        row = rows.setdefault((a, b), {
            "a": keys.get(a, a), "b": keys.get(b, b),
            "a_label": cells[a]["label"] if a in cells else a, "b_label": cells[b]["label"] if b in cells else b,
            "change": _what_changes(cells.get(a), cells.get(b), differs), "results": {},
            "cases": _cases_text(item.get("cases"))})
        for metric, result in results.items():
            if not isinstance(result, dict):
                continue
            metrics.setdefault(metric, metric + (f" {result['field']}" if result.get("field") else ""))
            row["results"][metric] = _result_view(metric, result)
    empty = {"text": "", "interval": "", "finding": "", "css": "", "title": ""}
    out_rows = [{**{k: v for k, v in r.items() if k != "results"},
                 "cells": [r["results"].get(m, empty) for m in metrics]} for r in rows.values()]
    return {"metrics": list(metrics.values()), "rows": out_rows,
            "note": "" if out_rows else "summary.json lists no comparisons"}
