"""summary.md: GitHub-flavoured Markdown that fits a pull request or $GITHUB_STEP_SUMMARY.

GitHub caps a step summary at 1 MiB, so tables stop at MAX_BYTES with a note; a huge grid keeps its
headline, best setting and failed gates and loses only table rows.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evalharness.judging import judges_line
from evalharness.report.fmt import (
    cached_note,
    fmt,
    fmt_interval,
    gate_bound,
    gate_subject,
    gate_value,
    provenance_note,
    usage_note,
)
from evalharness.report.ranking import best_setting, no_best_reason, rank_cells
from evalharness.report.targets_view import targets_view
from evalharness.report.view import cell_value, pass_k_note
from evalharness.scoring.catalogue import cell_columns
from evalharness.types import FailingCase, GateVerdict, Summary

MAX_BYTES = 900_000
_MD_SPECIAL = "\\`*[]|#~"
# An underscore inside a word never starts emphasis in GFM, so only those at a word edge are escaped
# (``response_format`` stays readable in the raw file).
_EDGE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md(text: Any) -> str:
    """Plain text safe inside Markdown and a table cell: no HTML, no emphasis, no column breaks."""
    s = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in s)
    s = _EDGE_UNDERSCORE.sub(r"\\_", s)
    return " ".join(s.split())


def _best_lines(summary: Summary) -> list[str]:
    best = best_setting(summary["cells"])
    if best is None:
        return ["", no_best_reason(summary["cells"])]
    crit, leader = best.criterion, best.leader
    ci = fmt_interval(crit.interval(leader), crit.kind)
    n = crit.n(leader)
    line = (f"**Best setting: {md(leader['label'])}** — {crit.heading} {fmt(crit.value(leader), crit.kind)}"
            + (f" (95% interval {ci}" + (f", n={n}" if n is not None else "") + ")" if ci else "") + ".")
    if best.runner_up is None:
        line += " Only one setting was measured."
    elif best.clearly_best:
        line += " Its interval lies clear of every other setting's."
    else:
        k = len(best.contenders)
        runner = best.runner_up
        line += (f" ⚠️ Not clearly better: {k} other setting{'s' if k != 1 else ''} overlap{'s' if k == 1 else ''} "
                 f"its interval (next: {md(runner['label'])}, {fmt(crit.value(runner), crit.kind)}).")
    return ["", line]


def _gate_row(g: GateVerdict) -> str:
    bound = md(gate_bound(g))
    verdict = "pass" if g["passed"] else f"❌ **FAIL** {md(g.get('reason', ''))}".strip()
    return f"| {md(g['metric'])} | {md(gate_subject(g))} | {md(gate_value(g))} | {bound} | {verdict} |"


def _case_row(g: GateVerdict, case: FailingCase) -> str:
    gate = f"{g['metric']} {gate_bound(g)}"
    return (f"| {md(gate)} | {md(g.get('label') or g.get('cell_id') or 'run')} | {md(case['case'])} "
            f"| {case['successes']}/{case['n']} | {fmt(case['value'], 'rate')} |")


#: Cross-target findings listed in summary.md (the report has them all).
MAX_TARGET_LINES = 20


def render_markdown(summary: Summary) -> str:
    t = summary["totals"]
    status = "✅ passed" if summary["passed"] else "❌ failed"
    tokens = (f"{t['prompt_tokens'] + t['completion_tokens']:,} tokens, cost {t['cost']:.6f} {md(t['currency'])}"
              + "".join(f" ({md(note)})" for note in (usage_note(t), provenance_note(t), cached_note(t)) if note)
              if t.get("usage_reported", True) or not t["requests"] else "tokens and cost not reported by the server")
    lines = [f"## evalharness: {md(summary['name'])} — {status}", "",
             f"Run {md(summary['run_id'])} against **{md(summary['target']['model'])}**: "
             f"{t['requests']:,}/{t['planned']:,} requests, {t['errors']:,} errors, {tokens}."]
    if judges := summary.get("judges"):
        lines += ["", f"Judges: {md(judges_line(judges))}."]
    if not summary["complete"]:
        lines += ["", f"**Incomplete run:** {md(summary.get('stop_reason'))}"]
    lines += _target_lines(summary)
    lines += _best_lines(summary)
    gates = sorted(summary["gates"], key=lambda g: g["passed"])  # failures first
    budget = MAX_BYTES - sum(len(x.encode()) + 1 for x in lines)
    if gates:
        failed = sum(not g["passed"] for g in gates)
        lines += ["", f"### Gates: {len(gates) - failed} of {len(gates)} passed", "",
                  "| gate | setting | value | bound | verdict |", "|---|---|---|---|---|"]
        half = budget // 2
        budget -= half - _rows(lines, [_gate_row(g) for g in gates], half, "gates")
        failing = [(g, c) for g in gates for c in g.get("failing_cases") or []]
        if failing:
            lines += ["", "Cases outside a per-case gate:", "", "| gate | setting | case | count | share |",
                      "|---|---|---|---|---|"]
            quarter = budget // 4
            budget -= quarter - _rows(lines, [_case_row(g, c) for g, c in failing], quarter, "failing cases")
    columns = cell_columns()
    heads = [col.heading for col in columns]
    ranked = rank_cells(summary["cells"])
    keys = {c["cell_id"]: i + 1 for i, c in enumerate(summary["cells"])}
    lines += ["", "### Settings, best first", "", "| # | setting | n | " + " | ".join(heads) + " |",
              "|---" * (len(heads) + 3) + "|"]
    rows = []
    for cell in ranked + [c for c in summary["cells"] if not c["n"]]:
        values = [cell_value(cell["metrics"].get(col.metric), col.field, col.fmt)["text"] for col in columns]
        rows.append(f"| {keys[cell['cell_id']]} | {md(cell['label'])} | {cell['n']} | " + " | ".join(values) + " |")
    _rows(lines, rows, budget, "settings")
    note = pass_k_note(summary["cells"])
    if note:
        lines += ["", md(note)]
    lines += ["", "Intervals, latency distributions, heat-maps and every answer: `report.html` in the run directory."]
    return "\n".join(lines) + "\n"


def _target_lines(summary: Summary) -> list[str]:
    """With several targets: a table of them, and each one's clear differences from the reference."""
    view = targets_view(summary)
    if view is None:
        return []
    lines = ["", "### Targets", "", "| target | model | status | requests | errors |", "|---|---|---|---|---|"]
    lines += [f"| {md(t['name'])} | {md(t['model'])} | {md(t['status'])}"
              + (f": {md(str(t['reason']).partition(chr(10))[0])}" if t["reason"] else "")
              + f" | {t['requests']} | {t['errors']} |" for t in view["rows"]]
    if view["comparisons"]:
        lines += [""] + [f"- **{md(c['target'])}** vs {md(c['reference'])} [{md(c['point'])}]: {md(c['headline'])}"
                         for c in view["comparisons"][:MAX_TARGET_LINES]]
    return lines


def _rows(lines: list[str], rows: list[str], budget: int, what: str) -> int:
    """Append table rows while they fit in ``budget`` bytes; returns the budget left."""
    for i, row in enumerate(rows):
        size = len(row.encode()) + 1
        if size > budget:
            lines.append(f"\n… {len(rows) - i:,} more {what} not shown (size limit); see report.html.")
            return budget
        lines.append(row)
        budget -= size
    return budget


def write_markdown(run_dir: Path, summary: Summary) -> Path:
    path = run_dir / "summary.md"
    path.write_text(render_markdown(summary), encoding="utf-8", errors="replace")
    return path
