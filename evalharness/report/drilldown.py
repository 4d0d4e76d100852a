"""Per-case views: the determinism matrix (distinct outputs per case × cell) and the drill-down of answers.

Both are sampled to keep report.html bounded on huge runs (every aggregate elsewhere stays exact): identical
repeats are shown once with their count, at most MAX_VARIANTS distinct outputs per case × cell, and answer
text stops at a global character budget. What was left out is said on the page.
"""

from __future__ import annotations

import json
from typing import Any

from evalharness.judging import verdict_lines
from evalharness.report.diff import diff_segments
from evalharness.report.heatmap import shade
from evalharness.report.outcomes import Outcomes, Pair
from evalharness.scoring.metrics import first_divergence

MAX_VARIANTS = 5
MAX_ERROR_GROUPS = 3
TEXT_LIMIT = 2000
TEXT_BUDGET = 1_500_000
# What the markup around one shown output costs, charged to the same budget so short answers cannot
# make the page big either.
VARIANT_OVERHEAD = 400
# Case × cell rows rendered in the drill-down and squares in the determinism matrix.
MAX_PAIRS = 3000


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f" …[{len(text) - limit:,} more characters]"


def _repeats(indices: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in indices[:limit])
    return shown + (f", … ({len(indices)} in all)" if len(indices) > limit else "")


def _pair_title(pair: Pair, key: str, label: str) -> str:
    ok = pair.n - pair.errors
    parts = [f"{key} {label}: {pair.distinct} distinct output{'s' if pair.distinct != 1 else ''} "
             f"in {ok} completed repeat{'s' if ok != 1 else ''}"]
    modal = pair.modal
    if pair.distinct > 1 and modal is not None:
        parts.append(f"modal output ×{pair.outputs[modal]}")
        first = min(first_divergence(modal, o) for o in pair.outputs if o != modal)
        parts.append(f"first divergence at character {first}")
    if pair.errors:
        parts.append(f"{pair.errors} failed request{'s' if pair.errors != 1 else ''}")
    return "; ".join(parts)


def determinism_view(outcomes: Outcomes, keys: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    """Rows of cases, columns of cells: how many distinct outputs each case gave in each cell."""
    max_cases = max(1, MAX_PAIRS // max(1, len(outcomes.cell_ids)))
    rows = []
    for index, case in enumerate(outcomes.cases[:max_cases]):
        squares = []
        for cell_id in outcomes.cell_ids:
            pair = outcomes.pair(case, cell_id)
            ok = pair.n - pair.errors if pair else 0
            if pair is None or ok == 0:
                squares.append({"text": "–", "title": f"{keys[cell_id]} {labels[cell_id]}: no completed answers",
                                "colour": ""})
            elif ok < 2:
                squares.append({"text": str(pair.distinct), "colour": "",
                                "title": f"{keys[cell_id]} {labels[cell_id]}: one repeat (determinism needs 2)"})
            else:
                # Share of repeats agreeing with the modal output, rescaled so that all-identical is 1 and
                # all-different is 0 whatever the number of repeats.
                modal_share = pair.outputs.most_common(1)[0][1] / ok
                goodness = (modal_share - 1 / ok) / (1 - 1 / ok)
                squares.append({"text": str(pair.distinct), "title": _pair_title(pair, keys[cell_id],
                                                                                 labels[cell_id]),
                                "colour": shade(goodness)})
        rows.append({"case": case, "anchor": f"case-{index}", "squares": squares})
    hidden = len(outcomes.cases) - len(rows)
    return {"columns": [{"key": keys[c], "label": labels[c]} for c in outcomes.cell_ids], "rows": rows,
            "note": f"first {len(rows)} of {len(outcomes.cases)} cases shown" if hidden > 0 else ""}


class _Budget:
    """Characters of answer text the drill-down may still show."""

    def __init__(self, chars: int) -> None:
        self.left = chars

    def take(self, text: str) -> str:
        text = clip(text)
        self.left -= len(text)
        return text


def _variants(pair: Pair, has_expect: bool, budget: _Budget) -> list[dict[str, Any]]:
    modal = pair.modal
    first_of: dict[str, int] = {}
    repeats: dict[str, list[int]] = {}
    for position, r in enumerate(pair.records):
        if r["ok"]:
            content = r.get("content") or ""
            first_of.setdefault(content, position)
            repeats.setdefault(content, []).append(r["repeat"])
    common = pair.outputs.most_common(MAX_VARIANTS)
    # With a tie, the "modal" output is just the first seen of the equally common ones: say so.
    tied = len(common) > 1 and common[0][1] == common[1][1]
    out = []
    for content, count in common:
        if budget.left <= 0:
            break
        position = first_of[content]
        record = pair.records[position]
        failures = pair.failures[position]
        is_modal = content == modal
        segments = [] if is_modal else [{"text": budget.take(s.text) if s.kind != "elided" else s.text,
                                         "kind": s.kind} for s in diff_segments(modal or "", content)]
        tool_calls = record.get("tool_calls")
        budget.left -= VARIANT_OVERHEAD
        out.append({
            "count": count, "repeats": _repeats(repeats[content]), "modal": is_modal,
            "role": ("first of equally common outputs" if tied else "most common") if is_modal else "differs",
            "status": ("neutral" if not has_expect else "passed" if not failures else "failed"),
            "failures": "; ".join(failures), "finish_reason": record.get("finish_reason") or "",
            "text": budget.take(content) if is_modal else "", "segments": segments, "empty": not content,
            "reasoning": budget.take(record.get("reasoning") or ""),
            "tool_calls": budget.take(json.dumps(tool_calls, ensure_ascii=False, indent=1)) if tool_calls else "",
            "judged": verdict_lines(record.get("judged") or []),
            "check_errors": [{"check": e.check, "error": e.error or "", "traceback": clip(e.traceback or "", 4000)}
                             for e in pair.check_errors[position]] if pair.check_errors else [],
        })
    return out


def _errors(pair: Pair) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for r in pair.records:
        if not r["ok"]:
            groups.setdefault((r.get("error_kind") or "unknown", r.get("error") or ""), []).append(r["repeat"])
    ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    return [{"kind": kind, "message": clip(message, 600), "count": len(reps), "repeats": _repeats(reps)}
            for (kind, message), reps in ranked[:MAX_ERROR_GROUPS]]


def drilldown_view(outcomes: Outcomes, keys: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    """Each case's answers per cell (identical repeats grouped), reasoning and errors, within the budgets."""
    budget = _Budget(TEXT_BUDGET)
    cases = []
    pairs_shown = 0
    for index, case in enumerate(outcomes.cases):
        if pairs_shown >= MAX_PAIRS:
            break
        has_expect = outcomes.has_expect(case)
        rows = []
        passed = total = 0
        for cell_id in outcomes.cell_ids:
            pair = outcomes.pair(case, cell_id)
            if pair is None:
                continue
            pairs_shown += 1
            total += pair.n
            passed += pair.n - pair.failed
            with_text = budget.left > 0
            variants = _variants(pair, has_expect, budget) if with_text else []
            rows.append({
                "key": keys[cell_id], "label": labels[cell_id], "n": pair.n, "distinct": pair.distinct,
                "failed": pair.failed, "errors": pair.errors,
                "variants": variants, "error_groups": _errors(pair) if with_text else [],
                "more_variants": pair.distinct - len(variants) if with_text else 0,
                "omitted": not with_text,
            })
        cases.append({"case": case, "anchor": f"case-{index}", "rows": rows, "has_expect": has_expect,
                      "summary": (f"{passed} of {total} samples pass" if has_expect
                                  else f"{total} samples, no expect checks"),
                      "failing_cells": sum(bool(r["failed"]) for r in rows)})
    notes = []
    if len(cases) < len(outcomes.cases):
        notes.append(f"first {len(cases)} of {len(outcomes.cases)} cases shown")
    if budget.left <= 0:
        notes.append(f"answer text stops after {TEXT_BUDGET:,} characters to keep this file small")
    return {"cases": cases, "note": "; ".join(notes), "max_variants": MAX_VARIANTS}
