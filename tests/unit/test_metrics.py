"""Metrics from records: hand-computed examples, and properties of the statistics."""

from __future__ import annotations

import random
from array import array
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalharness.scoring.checks import extract_answer, is_json, is_json_lenient
from evalharness.scoring.metrics import (
    CATALOGUE,
    CaseSpec,
    cell_metrics,
    determinism_metrics,
    first_divergence,
    inter_token_gaps,
    latency_columns,
    request_itl,
    sample_latencies,
)
from evalharness.scoring.stats import distribution, wilson
from evalharness.suites import Expect, Extractor
from evalharness.summary import build_summary


def rec(case: str, repeat: int, content: str | None, *, ok: bool = True, ttft: float | None = 0.1,
        e2e: float = 0.5, usage: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
        cost: float | None = None, attempts: int = 1, chunks: list[float] | None = None) -> dict[str, Any]:
    return {"item_id": f"c/s/{case}/{repeat}", "cell_id": "c", "suite": "s", "case_id": case, "repeat": repeat,
            "params": params or {}, "ok": ok, "error_kind": None if ok else "http_error",
            "error": None if ok else "HTTP 500", "content": content, "usage": usage, "cost": cost,
            "timings": {"queue_s": 0.0, "ttft_s": ttft, "ttfc_s": ttft, "e2e_s": e2e,
                        "chunk_times": chunks or []},
            "attempts": [{}] * attempts}


def test_determinism_hand_computed() -> None:
    outputs = {"a": ["x", "x", "x"], "b": ["hello", "help", "hello"], "c": ["p", "q", "r"]}
    m = determinism_metrics(outputs, {})
    assert m["exact_match_rate"]["value"] == pytest.approx(1 / 3)
    assert m["modal_share"]["value"] == pytest.approx((1 + 2 / 3 + 1 / 3) / 3)
    assert m["unique_outputs"]["value"] == pytest.approx((1 + 2 + 3) / 3)
    # divergences from the modal output: "help" vs "hello" at 3; "q","r" vs "p" at 0 -> median 0
    assert m["first_divergence"]["value"] == 0
    assert m["answer_agreement_rate"]["value"] is None
    assert "extractor" in m["answer_agreement_rate"]["reason"]


def test_determinism_needs_two_repeats() -> None:
    m = determinism_metrics({"a": ["x"]}, {})
    assert m["exact_match_rate"]["value"] is None
    assert "repeats" in m["exact_match_rate"]["reason"]


def test_cell_metrics_hand_computed() -> None:
    cases = {"s/j": CaseSpec(expect=Expect(json_valid=True), schema={"type": "object", "required": ["a"]},
                             extract=Extractor(json_pointer="/a")),
             "s/t": CaseSpec(expect=Expect(contains="Paris"))}
    records = [
        rec("j", 0, '{"a": 1}', usage={"prompt_tokens": 10, "completion_tokens": 5}, cost=0.2,
            chunks=[0.1, 0.2, 0.4]),
        rec("j", 1, '```json\n{"b": 1}\n```', usage={"prompt_tokens": 10, "completion_tokens": 3}, cost=0.1),
        rec("t", 0, "Paris.", e2e=1.5),
        rec("t", 1, None, ok=False, ttft=None, attempts=3),
    ]
    m = cell_metrics(records, cases, stream=True, currency="CNY")
    assert m["requests"]["value"] == 4
    assert m["errors"]["value"] == 1 and m["errors"]["by_kind"] == {"http_error": 1}
    assert m["error_rate"]["value"] == 0.25
    assert m["retries"]["value"] == 2
    assert m["json_valid_rate"]["value"] == 0.5  # the fenced one is not strict JSON
    assert m["json_valid_lenient_rate"]["value"] == 1.0
    assert m["schema_valid_rate"]["value"] == 0.5
    assert m["pass_rate"]["value"] == pytest.approx(2 / 3)  # j0 and t0 pass, j1 fails; errors excluded
    assert m["e2e_s"]["p50"] == pytest.approx(0.5)
    assert m["e2e_s"]["n"] == 3
    assert m["tpot_s"]["p50"] == pytest.approx(((0.5 - 0.1) / 4 + (0.5 - 0.1) / 2) / 2)
    assert m["itl_s"]["n"] == 2 and m["itl_s"]["max"] == pytest.approx(0.2)
    assert m["itl_per_request_s"]["n"] == 1 and m["itl_per_request_s"]["p50"] == pytest.approx(0.15)
    assert m["prompt_tokens"]["value"] == 20 and m["completion_tokens"]["value"] == 8
    assert m["cost"]["value"] == pytest.approx(0.3)
    assert m["cost_per_1k_requests"]["value"] == pytest.approx(150.0)
    assert m["reasoning_tokens"]["value"] is None and m["reasoning_tokens"]["reason"]


def test_latency_without_streaming_is_null_with_reason() -> None:
    m = cell_metrics([rec("t", 0, "x", ttft=None)], {}, stream=False, currency="USD")
    assert m["ttft_s"]["value"] is None and "stream" in m["ttft_s"]["reason"]
    assert m["e2e_s"]["n"] == 1
    assert m["json_valid_rate"]["value"] is None


def test_json_checks_and_extractors() -> None:
    assert is_json(' {"a": [1, 2]} ')
    assert not is_json('Here: {"a": 1}')
    assert is_json_lenient('Here: {"a": 1} done')
    assert is_json_lenient('```json\n[1, 2]\n```')
    assert not is_json_lenient("no json here")
    assert extract_answer("The answer is 42.", Extractor(regex=r"answer is (\d+)")) == "42"
    assert extract_answer('{"a": {"b": [5, 6]}}', Extractor(json_pointer="/a/b/1")) == "6"
    assert extract_answer('{"a": 1}', Extractor(json_pointer="/missing")) is None


@given(st.integers(min_value=1, max_value=10_000), st.data())
def test_wilson_contains_estimate_and_stays_in_unit_interval(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(min_value=0, max_value=n))
    lo, hi = wilson(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


@given(st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), min_size=1, max_size=200))
def test_percentiles_are_monotone_and_bounded(values: list[float]) -> None:
    d = distribution(values, intervals=False)
    assert d["min"] <= d["p50"] <= d["p90"] <= d["p95"] <= d["p99"] <= d["max"]


@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 3), st.sampled_from(["x", "y", '{"a":1}'])),
                min_size=1, max_size=30, unique_by=lambda t: (t[0], t[1])), st.randoms())
def test_metrics_do_not_depend_on_record_order(rows: list[tuple[str, int, str]], rnd: random.Random) -> None:
    records = [rec(c, r, content, e2e=0.1 * (r + 1)) for c, r, content in rows]
    shuffled = records[:]
    rnd.shuffle(shuffled)
    cases = {"s/a": CaseSpec(expect=Expect(json_valid=True))}
    assert cell_metrics(records, cases, stream=True, currency="X") == \
        cell_metrics(shuffled, cases, stream=True, currency="X")


def _manifest(cases: dict[str, CaseSpec], *, stream: bool) -> dict[str, Any]:
    return {"run_id": "r", "started_at": "2026-01-01T00:00:00+00:00", "target": {}, "config_path": "/x/c.yaml",
            "config": {"name": "n", "run": {"stream": stream}, "pricing": {"currency": "CNY"}, "gates": []},
            "plan": {"requests": 4, "cells": [{"cell_id": "c", "label": "default", "params": {}}]},
            "cases": {k: v.to_manifest() for k, v in cases.items()}}


def _assert_every_metric_is_measured_or_explained(summary: dict[str, Any]) -> dict[str, Any]:
    [cell] = summary["cells"]
    assert list(cell["metrics"]) == list(CATALOGUE)
    for name, metric in cell["metrics"].items():
        if metric.get("value", "absent") is None:
            assert metric.get("reason"), f"{name} is null without a reason"
        else:
            measured = [v for k, v in metric.items() if k in ("value", "p50") and v is not None]
            assert measured, f"{name} has neither a value nor a reason: {metric}"
    metrics: dict[str, Any] = cell["metrics"]
    return metrics


def test_every_catalogue_metric_is_in_the_summary_when_it_applies() -> None:
    cases = {"s/j": CaseSpec(expect=Expect(json_valid=True), schema={"type": "object"},
                             extract=Extractor(json_pointer="/a"))}
    usage = {"prompt_tokens": 5, "completion_tokens": 4, "completion_tokens_details": {"reasoning_tokens": 1},
             "prompt_tokens_details": {"cached_tokens": 2}}
    records = [rec("j", r, '{"a": 1}', usage=usage, cost=0.01, chunks=[0.1, 0.2, 0.3], attempts=1 + r)
               for r in range(3)]
    records[2]["content"] = '{"a": 2}'
    for r, votes in zip(records, (["pass", "pass", "fail"], ["pass", "pass", "pass"], ["fail", "fail", "pass"]),
                        strict=True):  # as judging.attach_judged gives a sample its model-graded checks
        r["judged"] = [{"check": "judge", "judge": "default", "rubric": "r", "votes": votes, "scores": [None] * 3,
                        "reasons": [None] * 3, "verdict": "pass", "score": None, "min": None}]
    for i, r in enumerate(records):  # as a load level sends them (the load metrics apply to a load run)
        r.update(schedule_lag_s=0.001,
                 load_clock={"due_s": i * 0.5, "sent_s": i * 0.5 + 0.001, "done_s": i * 0.5 + 0.4})
    manifest = _manifest(cases, stream=True)
    manifest["config"]["load"] = {"slo": {"ttft_s": 1.0, "e2e_s": None, "tpot_s": None}}
    m = _assert_every_metric_is_measured_or_explained(build_summary(manifest, records, complete=True))
    assert all(m[name].get("value", m[name].get("p50")) is not None for name in CATALOGUE), \
        [name for name in CATALOGUE if m[name].get("value", m[name].get("p50")) is None]


def test_a_metric_that_cannot_apply_is_null_with_a_reason_never_zero() -> None:
    # No streaming, no usage, no expect, one repeat: most of the catalogue cannot be measured.
    records = [rec("a", 0, "hello", ttft=None)]
    records[0]["timings"]["ttfc_s"] = None
    m = _assert_every_metric_is_measured_or_explained(build_summary(_manifest({}, stream=False), records,
                                                                    complete=True))
    for name in ("exact_match_rate", "first_divergence", "json_valid_rate", "schema_valid_rate", "pass_rate",
                 "ttft_s", "ttfc_s", "tpot_s", "itl_s", "itl_per_request_s", "decode_tps", "prompt_tokens",
                 "completion_tokens", "reasoning_tokens", "cost", "cost_per_1k_requests", "cached_tokens"):
        assert m[name]["value"] is None, name
    assert "stream" in m["ttft_s"]["reason"] and "repeats" in m["exact_match_rate"]["reason"]
    assert m["requests"]["value"] == 1 and m["errors"]["value"] == 0 and m["e2e_s"]["n"] == 1


def test_first_divergence_in_tokens_where_logprobs_exist() -> None:
    def with_tokens(repeat: int, tokens: list[str] | None) -> dict[str, Any]:
        r = rec("a", repeat, "".join(tokens or ["The", " cat", " sat"]))
        r["logprobs"] = [{"token": t, "logprob": -0.1, "top_logprobs": []} for t in tokens] if tokens else None
        return r

    records = [with_tokens(0, ["The", " cat", " sat"]), with_tokens(1, ["The", " cat", " sat"]),
               with_tokens(2, ["The", " cat", " ran"]), with_tokens(3, ["A", " dog"])]
    fd = cell_metrics(records, {}, stream=True, currency="X")["first_divergence"]
    # Characters: "The cat ran" leaves "The cat sat" at 8, "A dog" at 0 -> median 4; tokens: at 2 and 0 -> 1.
    assert fd["value"] == 4.0 and fd["unit"] == "chars"
    assert fd["tokens"] == 1.0 and fd["tokens_n"] == 2
    without = cell_metrics([with_tokens(0, None), rec("a", 1, "other")], {}, stream=True, currency="X")
    assert without["first_divergence"]["tokens"] is None and "logprobs" in without["first_divergence"]["tokens_reason"]


def test_determinism_intervals_are_over_cases() -> None:
    outputs = {f"c{i}": ["x", "x"] if i < 6 else ["x", "y"] for i in range(10)}
    m = determinism_metrics(outputs, {})
    assert m["exact_match_rate"]["n"] == 10 and m["exact_match_rate"]["unit"] == "cases"
    assert m["exact_match_rate"]["ci95"] == list(wilson(6, 10))
    # Modal share 1 in 6 cases and 0.5 in 4: mean 0.8; its interval cannot leave [0, 1].
    lo, hi = m["modal_share"]["ci95"]
    assert m["modal_share"]["value"] == pytest.approx(0.8) and 0.0 <= lo <= 0.8 <= hi <= 1.0
    assert m["unique_outputs"]["value"] == pytest.approx(1.4) and m["unique_outputs"]["ci95"][0] >= 1.0


@given(st.text(alphabet="ab", max_size=40), st.text(alphabet="ab", max_size=40))
def test_first_divergence_is_the_common_prefix_length(a: str, b: str) -> None:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    assert first_divergence(a, b) == n == first_divergence(list(a), list(b))


def test_large_samples_get_order_statistic_intervals_close_to_the_bootstrap() -> None:
    from evalharness.scoring import stats

    rng = random.Random(7)
    values = [rng.expovariate(2.0) for _ in range(stats.BOOTSTRAP_MAX_N + 1)]
    big = distribution(values)
    small = distribution(values[: stats.BOOTSTRAP_MAX_N])  # bootstrapped
    for q in ("p50", "p95"):
        lo, hi = big[f"{q}_ci95"]
        assert lo <= big[q] <= hi
        blo, bhi = small[f"{q}_ci95"]
        # Same sample size within one: the two methods agree to within a fifth of the width.
        assert abs((hi - lo) - (bhi - blo)) < 0.2 * (bhi - blo)


_maybe_seconds = st.one_of(st.none(), st.floats(0, 100, allow_nan=False), st.integers(0, 100))


@given(st.lists(st.tuples(_maybe_seconds, _maybe_seconds, _maybe_seconds,
                          st.one_of(st.none(), st.integers(0, 5), st.floats(0, 5, allow_nan=False)))))
def test_latency_columns_are_sample_latencies_of_every_record(rows: list[tuple[Any, Any, Any, Any]]) -> None:
    # The vectorised latencies behind every cell's metrics must be the per-record definition, bit for bit,
    # and NaN exactly where a record did not measure one.
    records = [{"timings": {"queue_s": q, "ttft_s": ttft, "e2e_s": e2e}, "usage": {"completion_tokens": tokens}}
               for q, ttft, e2e, tokens in rows]
    columns = latency_columns(records)
    for i, record in enumerate(records):
        want = sample_latencies(record)
        got = {name: float(col[i]) for name, col in columns.items() if col[i] == col[i]}
        assert got == want


def test_itl_pooled_over_gaps_and_per_request_answer_different_questions() -> None:
    # One long answer streaming fast (9 gaps of 10 ms) and one short answer streaming slowly (1 gap of 200 ms).
    fast = [0.1 + 0.01 * i for i in range(10)]
    records = [rec("a", 0, "long", chunks=fast), rec("a", 1, "short", chunks=[0.1, 0.3])]
    m = cell_metrics(records, {}, stream=True, currency="USD")
    # Pooled: 10 gaps, nine of them fast, so the median gap is fast.
    assert m["itl_s"]["n"] == 10 and m["itl_s"]["p50"] == pytest.approx(0.01)
    # Per request: each response's mean gap, 10 ms and 200 ms, weigh the same.
    assert m["itl_per_request_s"]["n"] == 2
    assert m["itl_per_request_s"]["mean"] == pytest.approx((0.01 + 0.2) / 2)
    assert request_itl(records).tolist() == pytest.approx([0.01, 0.2])
    assert request_itl([{"timings": {"chunk_times": [0.5]}}, {"timings": {}}]).size == 0


def test_inter_token_gaps_never_span_two_responses() -> None:
    records = [{"timings": {"chunk_times": [1.0, 1.5, 2.5]}}, {"timings": {"chunk_times": []}},
               {"timings": {"chunk_times": [0.1]}}, {"timings": {"chunk_times": [0.2, 0.25]}}]
    assert inter_token_gaps(records).tolist() == pytest.approx([0.5, 1.0, 0.05])
    assert inter_token_gaps([]).size == 0
    # Compact records hold chunk times in arrays: the same gaps.
    compact = [{"timings": {"chunk_times": array("d", r["timings"]["chunk_times"])}} for r in records]
    assert inter_token_gaps(compact).tolist() == inter_token_gaps(records).tolist()
