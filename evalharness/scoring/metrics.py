"""The metric catalogue (names are contract, see DESIGN.md), computed per cell from stored records."""

from __future__ import annotations

import itertools
import os
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalharness.scoring.checks import check_expect, extract_answer, is_json, is_json_lenient, is_schema_valid
from evalharness.scoring.stats import distribution, mean_ci, rate
from evalharness.suites import Expect, Extractor

Metric = dict[str, Any]


@dataclass(frozen=True)
class CaseSpec:
    """What scoring needs to know of a case (kept in the manifest, so a run re-scores on its own)."""

    expect: Expect | None = None
    schema: dict[str, Any] | None = None
    extract: Extractor | None = None

    @property
    def wants_json(self) -> bool:
        return bool(self.schema is not None or (self.expect and self.expect.json_valid)
                    or (self.extract and self.extract.json_pointer))

    @classmethod
    def from_manifest(cls, data: dict[str, Any]) -> CaseSpec:
        return cls(expect=Expect.model_validate(data["expect"]) if data.get("expect") else None,
                   schema=data.get("schema"),
                   extract=Extractor.model_validate(data["extract"]) if data.get("extract") else None)

    def to_manifest(self) -> dict[str, Any]:
        return {"expect": self.expect.model_dump(exclude_none=True) if self.expect else None,
                "schema": self.schema,
                "extract": self.extract.model_dump(exclude_none=True) if self.extract else None}


def na(reason: str) -> Metric:
    """A metric that does not apply to this cell, and why (never a silent 0)."""
    return {"value": None, "reason": reason}


def case_key(record: dict[str, Any]) -> str:
    return f"{record['suite']}/{record['case_id']}"


def _usage(record: dict[str, Any], key: str) -> int | None:
    usage = record.get("usage") or {}
    value = usage.get(key)
    return int(value) if isinstance(value, (int, float)) else None


def reasoning_tokens(record: dict[str, Any]) -> int | None:
    details = (record.get("usage") or {}).get("completion_tokens_details") or {}
    value = details.get("reasoning_tokens")
    return int(value) if isinstance(value, (int, float)) else None


def first_divergence(a: str, b: str) -> int:
    """Index of the first character where ``a`` and ``b`` differ (length of their common prefix)."""
    return len(os.path.commonprefix([a, b]))  # noqa: RUF071 - characters are what we count


def determinism_metrics(outputs_by_case: dict[str, list[str]], answers_by_case: dict[str, list[str | None]]
                        ) -> dict[str, Metric]:
    """TARr@N, TARa@N, modal share, distinct outputs and first divergence over cases with >= 2 repeats."""
    groups = {k: v for k, v in outputs_by_case.items() if len(v) >= 2}
    if not groups:
        reason = "needs at least 2 completed repeats of a case (set repeats >= 2)"
        return {name: na(reason) for name in
                ("exact_match_rate", "answer_agreement_rate", "modal_share", "unique_outputs", "first_divergence")}
    identical = 0
    modal_shares: list[float] = []
    uniques: list[float] = []
    divergences: list[int] = []
    for outputs in groups.values():
        counts = Counter(outputs)
        modal, modal_n = counts.most_common(1)[0]
        identical += len(counts) == 1
        modal_shares.append(modal_n / len(outputs))
        uniques.append(float(len(counts)))
        divergences.extend(first_divergence(modal, o) for o in outputs if o != modal)
    out: dict[str, Metric] = {
        "exact_match_rate": {**rate(identical, len(groups)), "unit": "cases"},
        "modal_share": mean_ci(modal_shares),
        "unique_outputs": mean_ci(uniques),
        "first_divergence": ({"value": float(np.median(divergences)), "n": len(divergences), "unit": "chars"}
                             if divergences else na("all repeats were identical")),
    }
    answer_groups = {k: v for k, v in answers_by_case.items() if len(v) >= 2}
    if answer_groups:
        agree = sum(len(set(v)) == 1 and v[0] is not None for v in answer_groups.values())
        out["answer_agreement_rate"] = {**rate(agree, len(answer_groups)), "unit": "cases"}
    else:
        out["answer_agreement_rate"] = na("no case in this cell defines an answer extractor")
    return out


def _latency(records: Sequence[dict[str, Any]], stream: bool) -> dict[str, Metric]:
    ttft: list[float] = []
    ttfc: list[float] = []
    e2e: list[float] = []
    tpot: list[float] = []
    itl: list[float] = []
    tps: list[float] = []
    queue: list[float] = []
    for r in records:
        t = r["timings"]
        if t.get("queue_s") is not None:
            queue.append(t["queue_s"])
        if t.get("e2e_s") is not None:
            e2e.append(t["e2e_s"])
        if t.get("ttft_s") is not None:
            ttft.append(t["ttft_s"])
        if t.get("ttfc_s") is not None:
            ttfc.append(t["ttfc_s"])
        chunks = t.get("chunk_times") or []
        itl.extend(b - a for a, b in itertools.pairwise(chunks))
        n_out = _usage(r, "completion_tokens")
        if t.get("ttft_s") is not None and t.get("e2e_s") is not None and n_out and n_out > 1:
            decode = t["e2e_s"] - t["ttft_s"]
            tpot.append(decode / (n_out - 1))
            if decode > 0:
                tps.append((n_out - 1) / decode)
    no_stream = "needs streaming (run.stream: true)"
    out = {"e2e_s": distribution(e2e), "queue_s": distribution(queue, intervals=False)}
    for name, values, reason in (
        ("ttft_s", ttft, no_stream if not stream else "no response carried generated text"),
        ("ttfc_s", ttfc, no_stream if not stream else "no response carried answer text"),
        ("tpot_s", tpot, no_stream if not stream else "needs completion_tokens > 1 in usage"),
        ("itl_s", itl, no_stream if not stream else "needs two or more text chunks"),
        ("decode_tps", tps, no_stream if not stream else "needs completion_tokens > 1 in usage"),
    ):
        out[name] = distribution(values, intervals=name != "itl_s") if values else na(reason)
    return out


def _cost(records: Sequence[dict[str, Any]], currency: str) -> dict[str, Metric]:
    def total(values: list[int | None], what: str) -> Metric:
        known = [v for v in values if v is not None]
        if not known:
            return na(f"the server reported no {what}")
        return {"value": int(sum(known)), "mean": sum(known) / len(known), "n": len(known)}

    costs = [r["cost"] for r in records if r.get("cost") is not None]
    out = {
        "prompt_tokens": total([_usage(r, "prompt_tokens") for r in records], "prompt_tokens in usage"),
        "completion_tokens": total([_usage(r, "completion_tokens") for r in records],
                                   "completion_tokens in usage"),
        "reasoning_tokens": total([reasoning_tokens(r) for r in records],
                                  "completion_tokens_details.reasoning_tokens"),
    }
    if costs:
        out["cost"] = {"value": float(sum(costs)), "currency": currency, "n": len(costs)}
        out["cost_per_1k_requests"] = {"value": 1000 * float(sum(costs)) / len(costs), "currency": currency,
                                       "n": len(costs)}
    else:
        out["cost"] = out["cost_per_1k_requests"] = na("no usage reported, so no cost")
    return out


def cell_metrics(records: Sequence[dict[str, Any]], cases: dict[str, CaseSpec], *, stream: bool,
                 currency: str) -> dict[str, Metric]:
    """Every catalogue metric for one cell's records."""
    ok = [r for r in records if r["ok"]]
    errors = len(records) - len(ok)
    metrics: dict[str, Metric] = {
        "requests": {"value": len(records)},
        "errors": {"value": errors, "by_kind": dict(Counter(r["error_kind"] or "unknown"
                                                            for r in records if not r["ok"]))},
        "error_rate": rate(errors, len(records)) if records else na("no requests"),
        "retries": {"value": sum(max(0, len(r.get("attempts") or ()) - 1) for r in records)},
    }
    # Determinism: per case over its repeats, in repeat order.
    outputs: dict[str, list[str]] = defaultdict(list)
    answers: dict[str, list[str | None]] = defaultdict(list)
    for r in sorted(ok, key=lambda r: r["repeat"]):
        key = case_key(r)
        outputs[key].append(r.get("content") or "")
        spec = cases.get(key)
        if spec and spec.extract:
            answers[key].append(extract_answer(r.get("content"), spec.extract))
    metrics.update(determinism_metrics(outputs, answers))
    # JSON validity, over samples that are meant to be JSON.
    json_samples = [r for r in ok if (cases.get(case_key(r)) or CaseSpec()).wants_json
                    or "response_format" in (r.get("params") or {})]
    if json_samples:
        metrics["json_valid_rate"] = rate(sum(is_json(r.get("content")) for r in json_samples), len(json_samples))
        metrics["json_valid_lenient_rate"] = rate(sum(is_json_lenient(r.get("content")) for r in json_samples),
                                                  len(json_samples))
    else:
        metrics["json_valid_rate"] = metrics["json_valid_lenient_rate"] = na(
            "no case in this cell expects JSON and no response_format was sent")
    schema_samples = [(r, cases[case_key(r)].schema) for r in ok
                      if case_key(r) in cases and cases[case_key(r)].schema is not None]
    if schema_samples:
        valid = sum(is_schema_valid(r.get("content"), schema) for r, schema in schema_samples if schema)
        metrics["schema_valid_rate"] = rate(valid, len(schema_samples))
    else:
        metrics["schema_valid_rate"] = na("no case in this cell has a JSON Schema")
    expect_samples = [r for r in ok if (cases.get(case_key(r)) or CaseSpec()).expect is not None]
    if expect_samples:
        passed = sum(not sample_failures(r, cases[case_key(r)]) for r in expect_samples)
        metrics["pass_rate"] = rate(passed, len(expect_samples))
    else:
        metrics["pass_rate"] = na("no case in this cell has expect checks")
    metrics.update(_latency(ok, stream))
    metrics.update(_cost(records, currency))
    return metrics


def sample_failures(record: dict[str, Any], spec: CaseSpec) -> list[str]:
    """The failed expect checks of one record (an errored request fails with its error)."""
    if not record["ok"]:
        return [f"request failed: {record.get('error')}"]
    if spec.expect is None:
        return []
    return check_expect(record.get("content"), spec.expect, spec.schema, spec.extract)
