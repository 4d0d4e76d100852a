"""The report's "Checks of your own" section: each check a case defines by file or by name, where it is,
whether it was found again as it was, and per setting how many samples it passed, failed and errored on."""

from __future__ import annotations

from typing import Any

from evalharness.report.drilldown import clip
from evalharness.types import Summary


def checks_view(summary: Summary, keys: dict[str, str]) -> dict[str, Any]:
    """Plain rows for the template; empty when the run's cases have no checks of their own."""
    checks = []
    for own in summary.get("checks") or []:
        rows = []
        for cell in summary["cells"]:
            tally = (cell.get("checks") or {}).get(own["check"])
            if tally is None:
                continue
            rows.append({
                "key": keys[cell["cell_id"]], "label": cell["label"], "runs": tally["runs"],
                "passed": tally["passed"], "failed": tally["failed"], "errors": tally["errors"],
                "score": "" if tally["score_mean"] is None else f"{tally['score_mean']:.2f}",
                "error_samples": [{"case": e["case"], "repeat": e["repeat"], "error": clip(e["error"] or "", 600),
                                   "traceback": clip(e.get("traceback") or "", 4000)}
                                  for e in tally["error_samples"]]})
        checks.append({"check": own["check"], "kind": "file" if own["kind"] == "python" else "named",
                       "where": own["path"] or own["source"] or "", "status": own["status"],
                       "note": own["note"] or "", "cases": len(own["cases"]), "rows": rows})
    return {"any": bool(checks), "checks": checks}
