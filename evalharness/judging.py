"""Model-graded checks, as pure functions of the manifest, the records and judgements.jsonl.

A judge request is built only from what the manifest keeps (the judge's model, params and prompt template,
the case's messages and rubric) and the sample's answer, so it is the same request whenever it is built:
its SHA-256 (with the judge repeat) is the key its judgement is stored under, and ``evalharness report``
finds every verdict again without calling a judge. Identical answers of a case share their judgements.

A judge's reply is read as a JSON object with ``pass`` (or ``score`` in [0, 1]) and a ``reason``; a reply
that is not is an ``unparsable`` vote, never a pass. With several judge repeats the verdict is the majority
of all of them (an unparsable or missing vote counts against), and the repeats' agreement is measured.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2
import numpy as np

from evalharness.params import build_body
from evalharness.scoring.checks import parse_json_lenient
from evalharness.types import JudgedCheck, Judgement, JudgeTotals, Manifest, MetricValue, Record

JUDGEMENTS = "judgements.jsonl"
#: The votes a judge repeat can give; ``missing`` is a judgement not (yet) stored.
CATEGORIES = ("pass", "fail", "unparsable")

SYSTEM = ("You are a careful, impartial grader. You judge one answer against one rubric and reply with a "
          "single JSON object and nothing else.")
TEMPLATE = """Conversation the answer replies to:
{{ question }}

Answer to grade:
{{ answer }}

Rubric: {{ rubric }}

{% if scored -%}
How well does the answer meet the rubric, from 0 (not at all) to 1 (fully)?
Reply with JSON only: {"reason": "<one sentence>", "score": <a number from 0 to 1>}
{%- else -%}
Does the answer meet the rubric?
Reply with JSON only: {"reason": "<one sentence>", "pass": true or false}
{%- endif %}
"""
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
_TEMPLATES: dict[str, jinja2.Template] = {}


@dataclass(frozen=True)
class JudgeSpec:
    """A judge as the manifest keeps it: what its requests are made of."""

    name: str
    model: str
    params: dict[str, Any]
    repeats: int
    template: str | None

    @classmethod
    def from_manifest(cls, name: str, data: Mapping[str, Any]) -> JudgeSpec:
        return cls(name, data["model"], dict(data["params"]), int(data["repeats"]), data.get("template"))


@dataclass(frozen=True)
class JudgeRequest:
    """One judge call to make (or find stored): its key, judge, repeat and body."""

    key: str
    judge: str
    repeat: int
    body: dict[str, Any]


def judge_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params a judge sends: its own, with JSON mode unless they set ``response_format`` (None: none)."""
    out = {"response_format": {"type": "json_object"}, **params}
    return {k: v for k, v in out.items() if v is not None}


def judges_of(manifest: Manifest) -> dict[str, JudgeSpec]:
    return {name: JudgeSpec.from_manifest(name, data) for name, data in (manifest.get("judges") or {}).items()}


def question_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """What the answer replies to, for the judge: the lone user message, or each message with its role."""
    if len(messages) == 1:
        return str(messages[0].get("content") or "")
    return "\n".join(f"{m.get('role')}: {m.get('content')}" for m in messages)


def _template(text: str) -> jinja2.Template:
    found = _TEMPLATES.get(text)
    if found is None:
        found = _TEMPLATES[text] = _ENV.from_string(text)
    return found


def judge_checks(expect: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """A case's model-graded checks from its stored ``expect``: ``{check, rubric, judge, min}`` each."""
    if not expect:
        return []
    out: list[dict[str, Any]] = []
    judge = expect.get("judge")
    for entry in judge if isinstance(judge, list) else [judge] if judge else []:
        entry = {"rubric": entry} if isinstance(entry, str) else entry
        out.append({"check": "judge", "rubric": entry["rubric"], "judge": entry.get("judge", "default"), "min": None})
    scored = expect.get("judge_score")
    for entry in scored if isinstance(scored, list) else [scored] if scored else []:
        out.append({"check": "judge_score", "rubric": entry["rubric"], "judge": entry.get("judge", "default"),
                    "min": float(entry.get("min", 0.5))})
    return out


def requests_for(judge: JudgeSpec, check: Mapping[str, Any], messages: Sequence[Mapping[str, Any]],
                 answer: str, extra: Mapping[str, Any] | None = None) -> list[JudgeRequest]:
    """The judge calls that grade ``answer`` on one check: one per judge repeat, the same body each.
    ``extra`` are more names for the template (a pairwise comparison's ``first`` and ``second``)."""
    text = _template(judge.template or TEMPLATE).render(
        question=question_text(messages), answer=answer, rubric=check["rubric"],
        scored=check["check"] == "judge_score", min=check.get("min"), **(extra or {}))
    body = build_body(judge.model, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
                      judge.params, stream=False)
    # Canonical JSON (as plan.canonical writes it): the same body always gives the same key.
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                            .encode()).hexdigest()
    return [JudgeRequest(f"{digest}:{r}", judge.name, r, body) for r in range(judge.repeats)]


def record_requests(manifest: Manifest, record: Record,
                    judges: Mapping[str, JudgeSpec]) -> list[tuple[dict[str, Any], list[JudgeRequest]]]:
    """Each model-graded check of one completed record, with the judge calls that grade it."""
    if not record["ok"]:
        return []
    case = manifest["cases"].get(f"{record['suite']}/{record['case_id']}")
    checks = judge_checks(case.get("expect")) if case else []
    if not checks or case is None:
        return []
    messages = (case.get("context") or {}).get("messages") or []
    answer = record.get("content") or ""
    return [(check, requests_for(judges[check["judge"]], check, messages, answer))
            for check in checks if check["judge"] in judges]


def parse_vote(content: str | None, check: Mapping[str, Any]) -> tuple[str, float | None, str | None]:
    """A judge reply as (vote, score, reason): ``pass``/``fail``, or ``unparsable`` for anything else."""
    value = parse_json_lenient(content)
    if not isinstance(value, dict):
        return "unparsable", None, None
    reason = value.get("reason")
    reason = str(reason) if reason is not None else None
    if check["check"] == "judge_score":
        score = value.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= float(score) <= 1.0:
            return "unparsable", None, reason
        return ("pass" if float(score) >= float(check["min"]) else "fail"), float(score), reason
    verdict = value.get("pass", value.get("verdict"))
    if isinstance(verdict, str) and verdict.strip().lower() in ("pass", "yes", "true", "fail", "no", "false"):
        verdict = verdict.strip().lower() in ("pass", "yes", "true")
    if not isinstance(verdict, bool):
        return "unparsable", None, reason
    return ("pass" if verdict else "fail"), None, reason


def majority(votes: Sequence[str]) -> str:
    """The verdict of a check's votes: ``pass`` only with more than half of all votes (unparsable and
    missing ones count against); ``unjudged`` with no vote stored; ``unparsable`` with none readable."""
    if all(v == "missing" for v in votes):
        return "unjudged"
    counts = Counter(votes)
    if counts["pass"] * 2 > len(votes):
        return "pass"
    return "fail" if counts["pass"] or counts["fail"] else "unparsable"


def judged_check(check: Mapping[str, Any], calls: Sequence[JudgeRequest],
                 stored: Mapping[str, Judgement]) -> JudgedCheck:
    """One check of one sample, graded from the stored judgements of its calls."""
    votes: list[str] = []
    scores: list[float | None] = []
    reasons: list[str | None] = []
    for call in calls:
        found = stored.get(call.key)
        if found is None or not found["ok"]:
            votes.append("missing")
            scores.append(None)
            reasons.append(found["error"] if found else None)
            continue
        vote, score, reason = parse_vote(found["content"], check)
        votes.append(vote)
        scores.append(score)
        reasons.append(reason if vote != "unparsable" else f"unparsable reply: {(found['content'] or '')[:120]!r}")
    parsed = [s for s in scores if s is not None]
    return {"check": check["check"], "judge": calls[0].judge if calls else check["judge"], "rubric": check["rubric"],
            "votes": votes, "scores": scores, "reasons": reasons, "verdict": majority(votes),
            "score": float(np.mean(parsed)) if parsed else None, "min": check.get("min")}


def attach_judged(manifest: Manifest, records: Iterable[Record], stored: Mapping[str, Judgement]) -> None:
    """Give each completed record with model-graded checks its ``judged`` list (in memory, for scoring)."""
    judges = judges_of(manifest)
    if not judges:
        return
    for record in records:
        graded = record_requests(manifest, record, judges)
        if graded:
            record["judged"] = [judged_check(check, calls, stored) for check, calls in graded]


def judged_message(judged: JudgedCheck) -> str:
    """A failed model-graded check as the report says it: the verdict, the votes and the majority's reason."""
    votes = Counter(judged["votes"])
    tally = ", ".join(f"{n} {v}" for v, n in votes.most_common())
    if judged["verdict"] == "unjudged":
        return f"{judged['check']}: not judged (no judgement stored; the judge {judged['judge']} was not reached)"
    reason = next((r for v, r in zip(judged["votes"], judged["reasons"], strict=True)
                   if v == judged["verdict"] and r), None) or next((r for r in judged["reasons"] if r), "")
    score = f", score {judged['score']:.2f} < {judged['min']:g}" if judged["score"] is not None else ""
    return f"{judged['check']} {judged['verdict']} ({tally}{score}): {reason}".rstrip(": ")


# --- agreement across judge repeats ---------------------------------------------------------------------

def fleiss_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa of a units × categories table of counts, every unit with the same number of raters;
    None where it is undefined (fewer than 2 raters, or every vote in one category)."""
    counts = np.asarray(table, dtype=float)
    if counts.size == 0:
        return None
    raters = counts.sum(axis=1)
    n = raters[0]
    if n < 2 or not np.all(raters == n):
        return None
    p_j = counts.sum(axis=0) / counts.sum()
    p_i = (np.square(counts).sum(axis=1) - n) / (n * (n - 1))
    p_bar, p_e = p_i.mean(), float(np.square(p_j).sum())
    if p_e >= 1.0:
        return None
    return float((p_bar - p_e) / (1.0 - p_e))


def agreement_units(records: Iterable[Record]) -> list[list[str]]:
    """The votes of every model-graded check with at least 2 judge repeats, all stored."""
    return [j["votes"] for r in records for j in r.get("judged") or ()
            if len(j["votes"]) >= 2 and "missing" not in j["votes"]]


def unanimous_metric(records: Sequence[Record], cases: object = None) -> MetricValue:
    """``judge_agreement``: the share of graded checks whose judge repeats all voted alike."""
    from evalharness.scoring.stats import rate

    units = agreement_units(records)
    if not units:
        return {"value": None, "reason": _no_agreement(records)}
    return {**rate(sum(len(set(u)) == 1 for u in units), len(units)), "unit": "graded checks"}


def kappa_metric(records: Sequence[Record], cases: object = None) -> MetricValue:
    """``judge_kappa``: Fleiss' kappa of the judge repeats' votes (pass, fail, unparsable)."""
    units = agreement_units(records)
    if not units:
        return {"value": None, "reason": _no_agreement(records)}
    by_size: dict[int, list[list[str]]] = {}
    for u in units:
        by_size.setdefault(len(u), []).append(u)
    size, same = max(by_size.items(), key=lambda kv: len(kv[1]))  # one judge's repeats: one size
    kappa = fleiss_kappa([[u.count(c) for c in CATEGORIES] for u in same])
    if kappa is None:
        return {"value": None, "n": len(same), "reason": "every vote fell in one category: kappa is undefined "
                                                          "(see judge_agreement)"}
    return {"value": kappa, "n": len(same), "unit": f"graded checks, {size} votes each"}


def _no_agreement(records: Sequence[Record]) -> str:
    if not any(r.get("judged") for r in records):
        return "no sample in this cell was graded by a judge"
    return "needs judges with repeats >= 2 and their judgements stored"


def disagreement(records: Iterable[Record]) -> float:
    """The judge's own noise on these samples: the mean share of a graded check's votes against its
    majority (0 for a judge that always agrees with itself)."""
    shares = [1.0 - Counter(u).most_common(1)[0][1] / len(u) for u in agreement_units(records)]
    return float(np.mean(shares)) if shares else 0.0


# --- the judges' own totals ---------------------------------------------------------------------------

def judge_totals(judgements: Mapping[str, Judgement], records: Iterable[Record], currency: str) -> JudgeTotals:
    """The judges' calls, tokens and cost, apart from the evaluated target's (summary.json ``judges``)."""
    by_judge: dict[str, dict[str, Any]] = {}
    for j in judgements.values():
        mine = by_judge.setdefault(j["judge"], {"requests": 0, "errors": 0, "prompt_tokens": 0,
                                                "completion_tokens": 0, "cost": 0.0})
        usage = j.get("usage") or {}
        mine["requests"] += 1
        mine["errors"] += not j["ok"]
        mine["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
        mine["completion_tokens"] += int(usage.get("completion_tokens") or 0)
        mine["cost"] += float(j.get("cost") or 0.0)
    unparsable = sum(v == "unparsable" for r in records for c in r.get("judged") or () for v in c["votes"])
    return {"requests": sum(b["requests"] for b in by_judge.values()),
            "errors": sum(b["errors"] for b in by_judge.values()), "unparsable": unparsable,
            "prompt_tokens": sum(b["prompt_tokens"] for b in by_judge.values()),
            "completion_tokens": sum(b["completion_tokens"] for b in by_judge.values()),
            "cost": sum(b["cost"] for b in by_judge.values()), "currency": currency, "by_judge": by_judge}


def judges_line(totals: JudgeTotals) -> str:
    """The judges' own totals in a line, as the reports show them beside the target's."""
    return (f"{totals['requests']:,} calls ({totals['errors']:,} failed, {totals['unparsable']:,} unparsable "
            f"votes), {totals['prompt_tokens']:,} / {totals['completion_tokens']:,} tokens in / out, cost "
            f"{totals['cost']:.4g} {totals['currency']} (apart from the target's)")


def verdict_lines(judged: Sequence[JudgedCheck]) -> list[str]:
    """Each model-graded check of a sample in a line for the answers' drill-down: verdict, votes, reasons."""
    out = []
    for j in judged:
        votes = ", ".join(f"{n} {v}" for v, n in Counter(j["votes"]).most_common())
        reasons = "; ".join(dict.fromkeys(r for r in j["reasons"] if r))
        score = f", mean score {j['score']:.2f}" if j["score"] is not None else ""
        line = f"{j['check']} by {j['judge']}: {j['verdict']} ({votes}{score})"
        out.append(f"{line} — {reasons}" if reasons else line)
    return out
