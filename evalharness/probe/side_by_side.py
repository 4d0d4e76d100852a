"""The probe of several targets: one table with a column per target (the console's: verdicts; probe.html's:
verdicts with their evidence), so what one server honours and another ignores or rejects stands side by side.
"""

from __future__ import annotations

from typing import Any

import jinja2

from evalharness.probe.prober import VERDICTS

_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Probe: {{ names }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1400px;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;
vertical-align:top}th{background:#f4f4f4}.v{font-weight:600;white-space:nowrap}.e{font-size:12px;color:#444}
.honored{color:#17692b}.ignored{color:#9a5b00}.rejected{color:#b00020}.inconclusive{color:#555}
tr.differs td:first-child{border-left:3px solid #9a5b00}code{font-size:13px}
</style></head><body>
<h1>Which parameters does each target honour?</h1>
<p>evalharness {{ version }} · a marked row is one where the targets' verdicts differ</p>
<table id="probe-targets"><thead><tr><th>target</th><th>model at</th><th>probed</th><th>requests</th></tr></thead>
<tbody>{% for t in targets %}<tr><td><b>{{ t.name }}</b></td><td>{{ t.where }}</td><td>{{ t.when }}</td>
<td>{{ t.requests }}</td></tr>
{% endfor %}</tbody></table>
<h2>Side by side</h2>
<table id="probe-side-by-side"><thead><tr><th>parameter</th>
{% for t in targets %}<th>{{ t.name }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in rows %}<tr class="{{ 'differs' if row.differs else '' }}"><td><code>{{ row.parameter }}</code></td>
{% for c in row.cells %}<td><div class="v {{ c.verdict }}">{{ c.verdict }}</div>
<div class="e">{{ c.evidence }}</div></td>{% endfor %}</tr>
{% endfor %}</tbody></table>
<p>honored: the output changed the way the parameter says · ignored: accepted, output as without it ·
rejected: the server answered with an error · inconclusive: the experiment could not tell.</p>
</body></html>
""")


def _rows(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per parameter (in the order first probed), a cell per target."""
    order: dict[str, None] = {}
    found: list[dict[str, dict[str, Any]]] = []
    for doc in docs:
        results = {r["parameter"]: r for r in doc.get("results", [])}
        found.append(results)
        order.update(dict.fromkeys(results))
    rows = []
    for parameter in order:
        cells = []
        for doc, results in zip(docs, found, strict=True):
            result = results.get(parameter)
            if result is not None:
                cells.append({"verdict": result["verdict"], "evidence": result["evidence"]})
            else:
                cells.append({"verdict": "–", "evidence": doc.get("skipped") or doc.get("failed") or "not probed"})
        verdicts = {c["verdict"] for c in cells if c["verdict"] in VERDICTS}
        rows.append({"parameter": parameter, "cells": cells, "differs": len(verdicts) > 1})
    return rows


def side_by_side_table(docs: list[dict[str, Any]]) -> str:
    """The console table: a row per parameter, a column of verdicts per target; ``*`` marks rows that differ."""
    names = [d["name"] for d in docs]
    rows = _rows(docs)
    w0 = max(len("parameter"), *(len(r["parameter"]) for r in rows)) if rows else len("parameter")
    widths = [max(len(n), *(len(r["cells"][i]["verdict"]) for r in rows)) if rows else len(n)
              for i, n in enumerate(names)]
    lines = ["  ".join([f"  {'parameter':<{w0}}", *(f"{n:<{w}}" for n, w in zip(names, widths, strict=True))]),
             "  ".join([f"  {'-' * w0}", *("-" * w for w in widths)])]
    for r in rows:
        mark = "* " if r["differs"] else "  "
        lines.append("  ".join([f"{mark}{r['parameter']:<{w0}}",
                                *(f"{c['verdict']:<{w}}" for c, w in zip(r["cells"], widths, strict=True))]))
    for doc in docs:
        if doc.get("skipped") or doc.get("failed"):
            lines.append(f"{doc['name']}: {doc.get('skipped') or doc.get('failed')}")
    if any(r["differs"] for r in rows):
        lines.append("* the targets' verdicts differ")
    return "\n".join(line.rstrip() for line in lines)


def render_side_by_side(combined: dict[str, Any]) -> str:
    """probe.html for several targets, from the same dict as probe.json."""
    docs = combined["targets"]
    targets = []
    for d in docs:
        t = d.get("target")
        targets.append({"name": d["name"], "where": f"{t['model']} at {t['base_url']}" if t else
                        d.get("skipped") or d.get("failed") or "", "when": d.get("started_at", ""),
                        "requests": d.get("requests", 0)})
    return _HTML.render(names=", ".join(d["name"] for d in docs), version=combined["harness_version"],
                        targets=targets, rows=_rows(docs))
