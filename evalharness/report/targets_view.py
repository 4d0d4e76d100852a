"""The report's "targets" section: each target and how it went, then, per grid point, every target against the
reference target (summary.json ``targets`` and ``target_comparisons``), shown when a run has more than one.

Each comparison reads as a sentence — "b vs a at temperature=0: pass_rate -12.0 pts [-20.1, -4.0] (worse);
ttft_s p95 ×2.1 [1.8, 2.5] (worse); cost ×0.6" — and as a row of the same cells as "Comparisons between
settings" (``comparisons._result_view``).
"""

from __future__ import annotations

from typing import Any

from evalharness.report.comparisons import _result_view
from evalharness.types import Summary, TargetComparison

_STATUS_CLASS = {"ok": "pass", "failed": "failed", "skipped": "skip"}


def _headline(item: TargetComparison) -> str:
    """The changes a reader looks for first: the metrics whose finding is clear, and the cost ratio."""
    parts = []
    for name, result in item["metrics"].items():
        finding = result.get("finding")
        if finding not in ("better", "worse"):
            continue
        shown = _result_view(name, result)
        field = f" {result['field']}" if result.get("field") else ""
        parts.append(f"{name}{field} {shown['text']} [{shown['interval']}] ({finding})")
    ratio = item.get("cost_ratio")
    if isinstance(ratio, (int, float)):
        parts.append(f"cost ×{ratio:.3g} ({'cheaper' if ratio < 1 else 'dearer' if ratio > 1 else 'the same'})")
    return "; ".join(parts) or "no clear difference on this run's data"


def targets_view(summary: Summary) -> dict[str, Any] | None:
    """The section's view model; None for a run of one target (nothing to set side by side)."""
    targets = summary.get("targets") or []
    if len(targets) < 2:
        return None
    rows = [{"name": t["name"], "model": t["model"], "base_url": t["base_url"], "status": t["status"],
             "css": _STATUS_CLASS.get(str(t["status"]), ""), "reason": t.get("reason") or "",
             "optional": "optional" if t.get("optional") else "", "cells": t.get("cells", 0),
             "requests": t.get("requests", 0), "errors": t.get("errors", 0)} for t in targets]
    comparisons = summary.get("target_comparisons") or []
    metrics: dict[str, str] = {}
    for item in comparisons:
        for name, result in item["metrics"].items():
            metrics.setdefault(name, name + (f" {result['field']}" if result.get("field") else ""))
    empty = {"text": "", "interval": "", "finding": "", "css": "", "title": ""}
    compared = [{"target": c["target"], "reference": c["reference_target"], "point": c["point"] or "default",
                 "headline": _headline(c),
                 "cost": f"×{c['cost_ratio']:.3g}" if isinstance(c.get("cost_ratio"), (int, float)) else "–",
                 "cells": [_result_view(m, c["metrics"][m]) if m in c["metrics"] else empty for m in metrics]}
                for c in comparisons]
    reference = comparisons[0]["reference_target"] if comparisons else targets[0]["name"]
    return {"rows": rows, "reference": reference, "metrics": list(metrics.values()), "comparisons": compared}
