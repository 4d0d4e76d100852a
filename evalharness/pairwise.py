"""Pairwise judging (``judge_compare``): is setting B's answer better than setting A's, case by case?

Each case's repeat r in cell A is paired with its repeat r in cell B, and the judge is shown the two answers
twice, once in each order. A pair is won only when both orders pick the same answer; when they disagree the
judge preferred a position, not an answer, and the pair is a tie (position bias cancels out). An order whose
votes hold no readable majority makes the pair unparsable, counted apart and never a win. The verdict is an
exact two-sided sign test over the won pairs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from evalharness.gates import matches_where
from evalharness.judging import JudgeRequest, JudgeSpec, judges_of, requests_for
from evalharness.scoring.checks import parse_json_lenient
from evalharness.scoring.stats import wilson
from evalharness.types import Judgement, Manifest, Record

TEMPLATE = """Conversation the answers reply to:
{{ question }}

First answer:
{{ first }}

Second answer:
{{ second }}

Criterion: {{ rubric }}

Which answer meets the criterion better?
Reply with JSON only: {"reason": "<one sentence>", "better": "first", "second" or "tie"}
"""


def compare_cells(manifest: Manifest, entry: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The cell ids a ``judge_compare`` entry's ``a`` and ``b`` match (None where not exactly one does)."""
    defaults = manifest["config"].get("defaults")
    found = []
    for side in ("a", "b"):
        cells = [c["cell_id"] for c in manifest["plan"]["cells"] if matches_where(c["params"], entry[side], defaults)]
        found.append(cells[0] if len(cells) == 1 else None)
    return found[0], found[1]


def _pair_requests(judge: JudgeSpec, entry: Mapping[str, Any], messages: Sequence[Mapping[str, Any]],
                   first: str, second: str) -> list[JudgeRequest]:
    check = {"check": "judge_compare", "rubric": entry["rubric"]}
    spec = JudgeSpec(judge.name, judge.model, judge.params, judge.repeats, TEMPLATE)
    return requests_for(spec, check, messages, "", extra={"first": first, "second": second})


def pairs(manifest: Manifest, records: Iterable[Record]
          ) -> list[tuple[int, str, list[JudgeRequest], list[JudgeRequest]]]:
    """Every pair to judge: (entry index, case key, the A-first calls, the B-first calls)."""
    entries = manifest["config"].get("judge_compare") or []
    if not entries:
        return []
    judges = judges_of(manifest)
    by_cell: dict[str, dict[tuple[str, str, int], Record]] = {}
    for r in records:
        if r["ok"]:
            by_cell.setdefault(r["cell_id"], {})[(r["suite"], r["case_id"], r["repeat"])] = r
    out = []
    for i, entry in enumerate(entries):
        a, b = compare_cells(manifest, entry)
        judge = judges.get(entry.get("judge", "default"))
        if a is None or b is None or judge is None:
            continue
        for key, ra in sorted(by_cell.get(a, {}).items()):
            rb = by_cell.get(b, {}).get(key)
            if rb is None:
                continue
            case = manifest["cases"].get(f"{key[0]}/{key[1]}")
            context: Mapping[str, Any] = (case.get("context") if case else None) or {}
            messages = context.get("messages") or []
            answer_a, answer_b = ra.get("content") or "", rb.get("content") or ""
            out.append((i, f"{key[0]}/{key[1]}", _pair_requests(judge, entry, messages, answer_a, answer_b),
                        _pair_requests(judge, entry, messages, answer_b, answer_a)))
    return out


def order_vote(calls: Sequence[JudgeRequest], stored: Mapping[str, Judgement]) -> str:
    """The majority of one order's judge repeats: ``first``, ``second``, ``tie``, or ``unparsable``."""
    votes = []
    for call in calls:
        found = stored.get(call.key)
        value = parse_json_lenient(found["content"]) if found and found["ok"] else None
        better = value.get("better") if isinstance(value, dict) else None
        better = better.strip().lower() if isinstance(better, str) else None
        votes.append(better if better in ("first", "second", "tie") else "unparsable")
    top, n = Counter(votes).most_common(1)[0]
    return top if n * 2 > len(votes) and top != "unparsable" else "unparsable"


def preference(a_first: str, b_first: str) -> str:
    """Which answer a pair prefers from its two orders: ``a``, ``b``, ``tie`` or ``unparsable``.

    ``a_first`` is the vote with A shown first, ``b_first`` with B first. Only the same answer picked in both
    orders wins; a judge that picks the same position both times has said nothing about the answers.
    """
    if "unparsable" in (a_first, b_first):
        return "unparsable"
    picked_a = {"first": "a", "second": "b"}.get(a_first, "tie")
    picked_b = {"first": "b", "second": "a"}.get(b_first, "tie")
    return picked_a if picked_a == picked_b else "tie"


def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact binomial (sign) test of ``wins`` against ``losses`` at p = 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return float(min(1.0, 2 * tail))


def comparisons(manifest: Manifest, records: Iterable[Record], stored: Mapping[str, Judgement]
                ) -> list[dict[str, Any]]:
    """summary.json's ``judge_comparisons``: per ``judge_compare`` entry, the pairs won by each side."""
    entries = manifest["config"].get("judge_compare") or []
    if not entries:
        return []
    tallies: dict[int, Counter[str]] = {i: Counter() for i in range(len(entries))}
    flips: Counter[int] = Counter()
    for i, _, a_first, b_first in pairs(manifest, records):
        va, vb = order_vote(a_first, stored), order_vote(b_first, stored)
        pref = preference(va, vb)
        tallies[i][pref] += 1
        flips[i] += pref == "tie" and va == vb and va in ("first", "second")
    labels = {c["cell_id"]: c["label"] for c in manifest["plan"]["cells"]}
    out = []
    for i, entry in enumerate(entries):
        a, b = compare_cells(manifest, entry)
        t = tallies[i]
        decided = t["a"] + t["b"]
        p = sign_test(t["b"], t["a"])
        lo, hi = wilson(t["b"], decided) if decided else (None, None)
        verdict = ("inconclusive" if not decided or p >= 0.05 else "b better" if t["b"] > t["a"] else "a better")
        out.append({"a": a, "b": b, "a_label": labels.get(a or ""), "b_label": labels.get(b or ""),
                    "rubric": entry["rubric"], "judge": entry.get("judge", "default"),
                    "pairs": sum(t.values()), "a_wins": t["a"], "b_wins": t["b"], "ties": t["tie"],
                    "unparsable": t["unparsable"], "position_bias": flips[i],
                    "b_win_share": {"value": t["b"] / decided if decided else None,
                                    "ci95": [lo, hi] if decided else None, "n": decided},
                    "p_value": p, "verdict": verdict})
    return out
