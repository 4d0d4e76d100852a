"""The built-in metrics, in catalogue order (the order of a cell's metrics in summary.json; names are contract).

Each view's ``Shown(at)`` places the metric among that view's metrics; docs/metrics.md is generated from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from evalharness.scoring.catalogue.model import Compare, Computed, Metric, SampleRate, Shown, register
from evalharness.scoring.checks import is_json, is_json_lenient, is_schema_valid
from evalharness.types import Record

if TYPE_CHECKING:
    from evalharness.scoring.metrics import CaseSpec

_CELL = Computed("cell", "evalharness.scoring.metrics.cell_metrics")
_DETERMINISM = Computed("case", "evalharness.scoring.metrics.determinism_metrics")
_PASS_K = Computed("case", "evalharness.scoring.passk.pass_k_metrics")
_LATENCY = Computed("sample", "evalharness.scoring.metrics.sample_latencies")
_USAGE = Computed("sample", "evalharness.scoring.metrics.cost_metrics")
_DISTRIBUTION = ("p50", "p90", "p95", "p99", "mean", "min", "max", "n")
_RATE = Compare("difference")
_RATIO = Compare("ratio")
_NO_JSON = "no case in this cell expects JSON and no response_format was sent"


def _wants_json(record: Record, spec: CaseSpec) -> bool:
    """JSON validity applies to samples meant to be JSON: the case expects JSON or a schema, or the request
    sent a response_format."""
    return spec.wants_json or "response_format" in (record.get("params") or {})


def json_valid(record: Record, spec: CaseSpec) -> float | None:
    return float(is_json(record.get("content"))) if _wants_json(record, spec) else None


def json_valid_lenient(record: Record, spec: CaseSpec) -> float | None:
    content = record.get("content")
    return float(is_json(content) or is_json_lenient(content)) if _wants_json(record, spec) else None


def schema_valid(record: Record, spec: CaseSpec) -> float | None:
    return None if spec.schema is None else float(is_schema_valid(record.get("content"), spec.schema))


def passed(record: Record, spec: CaseSpec) -> float | None:
    """Every check of the case holds (the built-in expectations and the case's own)."""
    return None if spec.expect is None else float(all(o.passed for o in spec.outcomes(record)))


def errored(record: Record, spec: CaseSpec) -> float | None:
    return float(not record["ok"])


for _metric in (
    Metric("requests", "count", "reliability", "requests", "Requests sent in the cell (failed ones included).",
           "requests", _CELL),
    Metric("errors", "count", "reliability", "errors", "Requests that failed after their retries, with a count "
           "per kind of error (`by_kind`).", "requests", _CELL, higher_is_better=False, fields=("value", "by_kind")),
    Metric("error_rate", "rate", "reliability", "errors", "Share of requests that failed.", "share of requests",
           SampleRate(errored, "no requests", requests=True), higher_is_better=False, title="error rate",
           compare=_RATE, cell=Shown(8), table=Shown(1), heatmap=Shown(6), ranking=Shown(4), compared=Shown(6)),
    Metric("retries", "count", "reliability", "retries", "Attempts beyond the first, summed over the cell's "
           "requests.", "attempts", Computed("sample", "evalharness.records.attempt_count"),
           higher_is_better=False, table=Shown(2)),
    Metric("exact_match_rate", "rate", "determinism", "identical repeats", "Share of cases (with at least 2 "
           "completed repeats) whose repeats are all byte-identical (TARr@N).", "share of cases", _DETERMINISM,
           higher_is_better=True, fields=("value", "ci95", "n", "successes", "unit"), compare=Compare("difference",
           per="case"), cell=Shown(6), table=Shown(1), heatmap=Shown(4), ranking=Shown(5), compared=Shown(4),
           between_cells=Shown(4)),
    Metric("answer_agreement_rate", "rate", "determinism", "answers agree", "The same on the answers a case's "
           "extractor finds (TARa@N); only cases with an extractor count.", "share of cases", _DETERMINISM,
           higher_is_better=True, fields=("value", "ci95", "n", "successes", "unit"), compare=Compare("difference",
           per="case"), table=Shown(2), compared=Shown(5)),
    Metric("modal_share", "share", "determinism", "modal share", "Per case, the share of its repeats that give "
           "its most common output; the mean over cases.", "share of repeats, mean over cases", _DETERMINISM,
           higher_is_better=True, fields=("value", "ci95", "n", "unit"), table=Shown(3)),
    Metric("unique_outputs", "number", "determinism", "distinct outputs", "Distinct outputs per case, the mean "
           "over cases (1 is fully deterministic).", "outputs per case", _DETERMINISM, higher_is_better=False,
           title="distinct outputs per case", fields=("value", "ci95", "n", "unit"), cell=Shown(7), table=Shown(4),
           heatmap=Shown(5)),
    Metric("first_divergence", "number", "determinism", "first divergence (chars)", "Median position where a "
           "repeat leaves its case's modal output: in characters, and in tokens (`tokens`) where logprobs were "
           "requested.", "characters", _DETERMINISM, fields=("value", "n", "unit", "tokens", "tokens_n"),
           table=Shown(5)),
    Metric("json_valid_rate", "rate", "quality", "JSON valid", "Share of samples meant to be JSON (the case "
           "expects JSON or a schema, or a response_format was sent) that parse strictly.",
           "share of completed samples", SampleRate(json_valid, _NO_JSON), higher_is_better=True, compare=_RATE,
           cell=Shown(4), table=Shown(4), heatmap=Shown(2), ranking=Shown(3), compared=Shown(2),
           between_cells=Shown(2)),
    Metric("json_valid_lenient_rate", "rate", "quality", "JSON lenient", "The same after stripping a code fence "
           "or surrounding prose.", "share of completed samples", SampleRate(json_valid_lenient, _NO_JSON),
           higher_is_better=True, compare=_RATE, table=Shown(5)),
    Metric("schema_valid_rate", "rate", "quality", "schema valid", "Share of samples of cases with a JSON Schema "
           "whose answer validates against it.", "share of completed samples",
           SampleRate(schema_valid, "no case in this cell has a JSON Schema"), higher_is_better=True,
           compare=_RATE, cell=Shown(5), table=Shown(6), heatmap=Shown(3), ranking=Shown(2), compared=Shown(3),
           between_cells=Shown(3)),
    Metric("pass_rate", "rate", "quality", "pass", "Share of samples of cases with `expect` whose every check "
           "holds (the reasoning removed from the answer first).", "share of completed samples",
           SampleRate(passed, "no case in this cell has expect checks"), higher_is_better=True, title="pass rate",
           compare=_RATE, cell=Shown(1), table=Shown(1), heatmap=Shown(1), ranking=Shown(1), compared=Shown(1),
           between_cells=Shown(1)),
    Metric("pass_at_k", "rate", "quality", "pass@k", "Chance that at least one of k repeats of a case passes, "
           "unbiased from each case's n >= k completed repeats (Chen et al. 2021), the mean over cases; `k` is "
           "`pass_k` in the config (the repeats by default), `by_k` gives k = 1 … 10.", "share of cases", _PASS_K,
           higher_is_better=True, fields=("value", "ci95", "n", "k", "unit", "short_cases", "by_k"), cell=Shown(2),
           table=Shown(2)),
    Metric("pass_hat_k", "rate", "quality", "pass^k", "Chance that all k repeats of a case pass (Yao et al. "
           "2024, τ-bench), estimated and averaged like pass@k.", "share of cases", _PASS_K, higher_is_better=True,
           fields=("value", "ci95", "n", "k", "unit", "short_cases", "by_k"), cell=Shown(3), table=Shown(3)),
    Metric("ttft_s", "latency", "latency", "TTFT", "Time to the first generated token (reasoning or answer); "
           "needs streaming.", "seconds", _LATENCY, higher_is_better=False, compare=_RATIO,
           cell=Shown(9, ("p50",)), table=Shown(1, ("p50", "p95")), heatmap=Shown(7, ("p50",))),
    Metric("ttfc_s", "latency", "latency", "TTFC", "Time to the first chunk of answer text (after any "
           "reasoning); needs streaming.", "seconds", _LATENCY, higher_is_better=False, compare=_RATIO,
           table=Shown(2, ("p50",))),
    Metric("e2e_s", "latency", "latency", "e2e", "Time from writing the request to reading the last byte of the "
           "response.", "seconds", _LATENCY, higher_is_better=False, compare=_RATIO, cell=Shown(10, ("p50", "p95")),
           table=Shown(3, ("p50", "p95", "p99")), heatmap=Shown(8, ("p50", "p95")), ranking=Shown(6, ("p50",)),
           compared=Shown(7, ("p50",)), between_cells=Shown(5, ("p50",))),
    Metric("tpot_s", "latency", "latency", "TPOT", "Time per output token after the first: (e2e - ttft) / "
           "(completion_tokens - 1); needs streaming and usage.", "seconds", _LATENCY, higher_is_better=False,
           compare=_RATIO, table=Shown(4, ("p50",))),
    Metric("itl_s", "latency", "latency", "ITL", "Gaps between consecutive text chunks of a response, pooled "
           "over every gap of every response (vLLM's ITL): a long answer weighs more.", "seconds",
           Computed("chunk", "evalharness.scoring.metrics.inter_token_gaps"), higher_is_better=False,
           fields=_DISTRIBUTION, table=Shown(5, ("p50",))),
    Metric("itl_per_request_s", "latency", "latency", "ITL/req", "Each response's mean gap between consecutive "
           "text chunks, its percentiles over responses: every request weighs the same, as in guidellm's and "
           "aiperf's ITL (theirs divide by tokens, as our `tpot_s` does; with one token a chunk they agree).",
           "seconds", Computed("sample", "evalharness.scoring.metrics.request_itl"), higher_is_better=False,
           fields=_DISTRIBUTION, table=Shown(5.5, ("p50",))),
    Metric("decode_tps", "throughput", "latency", "decode tok/s", "Decode speed: (completion_tokens - 1) / "
           "(e2e - ttft); needs streaming and usage.", "tokens per second", _LATENCY, higher_is_better=True,
           compare=_RATIO, table=Shown(6, ("p50",))),
    Metric("queue_s", "latency", "latency", "queue", "Time a request waited for a free slot (concurrency, rate "
           "limits) before it was sent.", "seconds", _LATENCY, higher_is_better=False, fields=_DISTRIBUTION,
           table=Shown(7, ("p95",))),
    Metric("prompt_tokens", "tokens", "cost", "prompt tokens/req", "Prompt tokens: the total, and the mean per "
           "request that reported them.", "tokens", _USAGE, table=Shown(1, ("mean",))),
    Metric("completion_tokens", "tokens", "cost", "out tokens/req", "Completion tokens: the total, and the mean "
           "per request that reported them.", "tokens", _USAGE, cell=Shown(11, ("mean",)),
           table=Shown(2, ("mean",))),
    Metric("reasoning_tokens", "tokens", "cost", "reasoning tokens/req", "Reasoning tokens "
           "(`completion_tokens_details.reasoning_tokens`).", "tokens", _USAGE, table=Shown(3, ("mean",))),
    Metric("cost", "cost", "cost", "cost", "Cost of the cell's priced requests, from the config's prices.",
           "the config's currency", _USAGE, higher_is_better=False, table=Shown(4)),
    Metric("cost_per_1k_requests", "cost", "cost", "cost / 1k req", "Cost per 1,000 priced requests.",
           "the config's currency", _USAGE, higher_is_better=False, title="cost / 1k requests", cell=Shown(12),
           table=Shown(5), heatmap=Shown(9)),
    Metric("cached_tokens", "tokens", "cost", "cached prompt tokens/req", "Prompt tokens served from the "
           "server's prompt cache (`prompt_tokens_details.cached_tokens`), with the `saving` they made.", "tokens",
           _USAGE, fields=("value", "mean", "n", "saving", "currency"), table=Shown(6, ("mean",))),
):
    register(_metric)
