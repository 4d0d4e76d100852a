"""Every metric of the catalogue (``scoring/catalogue``; defined in docs/metrics.md), computed per cell from
stored records."""

from __future__ import annotations

import itertools
import json
import math
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from evalharness.judging import judged_message
from evalharness.load.metrics import load_metrics
from evalharness.records import attempt_count
from evalharness.scoring import catalogue
from evalharness.scoring.checks import builtin_calls, extract_answer, run_builtins
from evalharness.scoring.passk import pass_k_metrics
from evalharness.scoring.registry import CheckContext
from evalharness.scoring.stats import distribution, mean_ci, rate
from evalharness.scoring.usercheck import CheckOutcome, CheckRef, Resolved, resolve, run_check
from evalharness.suites import Expect, Extractor
from evalharness.types import CaseEntry, JudgedCheck, MetricValue, Record, Usage
from evalharness.usage import cached_tokens, source_fields, source_marks, source_of, with_marks

Metric = MetricValue

#: Every metric a cell reports, in the catalogue's order (the names are contract). Each appears in every
#: cell, as ``{"value": None, "reason": ...}`` where it cannot apply.
CATALOGUE = catalogue.Names(catalogue.names)
#: Rates a ``per_case`` gate can bound: each case's own share of its samples in a cell.
PER_CASE_RATES = catalogue.Names(catalogue.per_case_rates)


@dataclass(frozen=True)
class CaseSpec:
    """What scoring needs to know of a case (kept in the manifest, so a run re-scores on its own)."""

    expect: Expect | None = None
    schema: dict[str, Any] | None = None
    extract: Extractor | None = None
    # The case's own checks, and what they are shown of the case (suite, case_id, vars, messages).
    checks: tuple[CheckRef, ...] = ()
    context: dict[str, Any] = field(default_factory=dict, compare=False)
    # Scores of outputs already seen for this case: repeats often say the same thing, and the report and the
    # comparisons score the same records again; schema validation is the costly part.
    _memo: dict[tuple[Any, ...], dict[str, float]] = field(default_factory=dict, compare=False, repr=False)
    _answers: dict[str | None, str | None] = field(default_factory=dict, compare=False, repr=False)
    _checked: dict[tuple[Any, ...], list[CheckOutcome]] = field(default_factory=dict, compare=False, repr=False)
    _resolved: list[Resolved] = field(default_factory=list, compare=False, repr=False)

    def resolved(self) -> list[Resolved]:
        """The case's own checks, found again (once) from what the manifest keeps."""
        if len(self._resolved) != len(self.checks):
            self._resolved[:] = [resolve(ref) for ref in self.checks]
        return self._resolved

    def outcomes(self, record: Record) -> list[CheckOutcome]:
        """Every check of the case on one completed record, built-in ones first; memoised per output."""
        params = record.get("params") or {}
        tool_calls = record.get("tool_calls")
        key: tuple[Any, ...] = (record.get("content"), json.dumps([tool_calls, params.get("tools")], sort_keys=True)
                                if tool_calls else None)
        if self.checks:  # a check of one's own sees the reasoning and the params too
            key += (record.get("reasoning"), json.dumps(params, sort_keys=True, default=str))
        judged = record.get("judged")
        if judged:  # the same answer has the same judgements; a run scored before they were stored has none
            key += (json.dumps(judged, sort_keys=True),)
        found = self._checked.get(key)
        if found is not None:
            return found
        context = CheckContext(
            case_id=self.context.get("case_id", record.get("case_id", "")),
            suite=self.context.get("suite", record.get("suite", "")), vars=self.context.get("vars") or {},
            messages=self.context.get("messages") or [],
            expect=self.expect.model_dump(exclude_none=True) if self.expect else {}, params=params,
            content=record.get("content"), reasoning=record.get("reasoning"), tool_calls=tool_calls)
        found = run_builtins(context, builtin_calls(self.expect, self.schema, self.extract)) if self.expect else []
        answer = record.get("content") or ""
        for own in self.resolved():
            label = own.ref.ref
            if own.fn is None:
                found.append(CheckOutcome(label, False, error=own.problem))
            else:
                found.append(run_check(own.fn, answer, replace(context, args=own.ref.args), label=label,
                                       minimum=own.ref.min))
        found.extend(judged_outcomes(self.expect, judged))
        self._checked[key] = found
        return found

    def answer(self, content: str | None) -> str | None:
        """The extracted answer of an output (the case must have an extractor); memoised like the scores."""
        assert self.extract is not None
        if content not in self._answers:
            self._answers[content] = extract_answer(content, self.extract)
        return self._answers[content]

    @property
    def wants_json(self) -> bool:
        return bool(self.schema is not None or (self.expect and self.expect.json_valid)
                    or (self.extract and self.extract.json_pointer))

    @classmethod
    def from_manifest(cls, data: CaseEntry) -> CaseSpec:
        return cls(expect=Expect.model_validate(data["expect"]) if data.get("expect") else None,
                   schema=data.get("schema"),
                   extract=Extractor.model_validate(data["extract"]) if data.get("extract") else None,
                   checks=tuple(CheckRef.from_manifest(c) for c in data.get("checks") or ()),
                   context=data.get("context") or {})

    def to_manifest(self) -> CaseEntry:
        out: CaseEntry = {"expect": self.expect.model_dump(exclude_none=True) if self.expect else None,
                          "schema": self.schema,
                          "extract": self.extract.model_dump(exclude_none=True) if self.extract else None}
        if self.checks or self.context:  # only then: what a case is shown is kept, not for every case
            out["checks"] = [c.to_manifest() for c in self.checks]
            out["context"] = self.context
        return out


_NO_SPEC = CaseSpec()


def judged_outcomes(expect: Expect | None, judged: list[JudgedCheck] | None) -> list[CheckOutcome]:
    """The model-graded checks of a sample as outcomes: the majority verdict, with the votes as the reason.

    A case with such checks whose sample has no ``judged`` list (no judges in the manifest) fails them.
    """
    if expect is None or (not expect.judge and not expect.judge_score):
        return []
    if judged is None:
        return [CheckOutcome(c, False, error="not judged: the run has no judgements for it")
                for c in ("judge",) * bool(expect.judge) + ("judge_score",) * bool(expect.judge_score)]
    return [CheckOutcome(j["check"], j["verdict"] == "pass", "" if j["verdict"] == "pass" else judged_message(j),
                         j["score"], builtin=True) for j in judged]


def na(reason: str) -> Metric:
    """A metric that does not apply to this cell, and why (never a silent 0)."""
    return {"value": None, "reason": reason}


def case_key(record: Record) -> str:
    return f"{record['suite']}/{record['case_id']}"


def _usage(record: Record, key: str) -> int | None:
    usage = record.get("usage") or {}
    value = usage.get(key)
    return int(value) if isinstance(value, (int, float)) else None


def reasoning_tokens(record: Record) -> int | None:
    details = (record.get("usage") or {}).get("completion_tokens_details") or {}
    value = details.get("reasoning_tokens")
    return int(value) if isinstance(value, (int, float)) else None


def first_divergence(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Index of the first position where ``a`` and ``b`` differ (length of their common prefix).

    Characters for strings, tokens for token lists. Bisection over slice comparisons: each comparison runs
    in C, so two 4 KB outputs cost a dozen memcmp calls instead of a Python loop over 4,096 characters.
    """
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # invariant: a[:lo] == b[:lo] and a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def record_tokens(record: Record) -> list[str] | None:
    """The generated tokens of a record, from its ``logprobs`` (None when the server sent none)."""
    logprobs = record.get("logprobs")
    if not isinstance(logprobs, list) or not logprobs:
        return None
    tokens = [lp.get("token") for lp in logprobs if isinstance(lp, dict)]
    return [t for t in tokens if isinstance(t, str)] if len(tokens) == len(logprobs) else None


def determinism_metrics(outputs_by_case: dict[str, list[str]], answers_by_case: dict[str, list[str | None]],
                        tokens_by_case: dict[str, list[list[str] | None]] | None = None) -> dict[str, Metric]:
    """TARr@N, TARa@N, modal share, distinct outputs and first divergence over cases with >= 2 repeats.

    ``tokens_by_case`` (optional) lists each output's tokens in the same order as ``outputs_by_case``;
    where both the modal output and a diverging one have tokens, divergence is also counted in tokens.
    """
    groups = {k: v for k, v in outputs_by_case.items() if len(v) >= 2}
    if not groups:
        reason = "needs at least 2 completed repeats of a case (set repeats >= 2)"
        return {name: na(reason) for name in
                ("exact_match_rate", "answer_agreement_rate", "modal_share", "unique_outputs", "first_divergence")}
    identical = 0
    modal_shares: list[float] = []
    uniques: list[float] = []
    divergences: list[int] = []
    token_divergences: list[int] = []
    for key, outputs in groups.items():
        counts = Counter(outputs)
        modal, modal_n = counts.most_common(1)[0]
        identical += len(counts) == 1
        modal_shares.append(modal_n / len(outputs))
        uniques.append(float(len(counts)))
        divergences.extend(first_divergence(modal, o) for o in outputs if o != modal)
        tokens = (tokens_by_case or {}).get(key)
        if tokens and len(counts) > 1:
            modal_tokens = next((t for o, t in zip(outputs, tokens, strict=True) if o == modal and t), None)
            if modal_tokens is not None:
                token_divergences.extend(first_divergence(modal_tokens, t)
                                         for o, t in zip(outputs, tokens, strict=True) if o != modal and t)
    out: dict[str, Metric] = {
        "exact_match_rate": {**rate(identical, len(groups)), "unit": "cases"},
        "modal_share": {**mean_ci(modal_shares, lower=0.0, upper=1.0), "unit": "cases"},
        "unique_outputs": {**mean_ci(uniques, lower=1.0), "unit": "cases"},
        "first_divergence": _divergence(divergences, token_divergences),
    }
    answer_groups = {k: v for k, v in answers_by_case.items() if len(v) >= 2}
    if answer_groups:
        agree = sum(answers_agree(v) for v in answer_groups.values())
        out["answer_agreement_rate"] = {**rate(agree, len(answer_groups)), "unit": "cases"}
    else:
        out["answer_agreement_rate"] = na("no case in this cell defines an answer extractor")
    return out


def answers_agree(answers: Sequence[str | None]) -> bool:
    """A case's repeats agree on the answer: every extractor found one, and it is the same."""
    return answers[0] is not None and len(set(answers)) == 1


def _divergence(chars: list[int], tokens: list[int]) -> Metric:
    if not chars:
        return na("all repeats were identical")
    out: Metric = {"value": float(np.median(chars)), "n": len(chars), "unit": "chars"}
    if tokens:
        out.update({"tokens": float(np.median(tokens)), "tokens_n": len(tokens)})
    else:
        out.update({"tokens": None,
                    "tokens_reason": "no logprobs in the records (set logprobs: true to count tokens)"})
    return out


def sample_latencies(record: Record) -> dict[str, float]:
    """The per-sample latencies of one completed record that could be measured (seconds; decode_tps in
    tokens per second). tpot and decode speed need ``usage.completion_tokens`` > 1 and a first token."""
    t = record["timings"]
    found = {"queue_s": t.get("queue_s"), "ttft_s": t.get("ttft_s"), "ttfc_s": t.get("ttfc_s"), "e2e_s": t.get("e2e_s")}
    out = {name: float(value) for name, value in found.items() if value is not None}
    n_out = _usage(record, "completion_tokens")
    if "ttft_s" in out and "e2e_s" in out and n_out and n_out > 1:
        decode = out["e2e_s"] - out["ttft_s"]
        out["tpot_s"] = decode / (n_out - 1)
        if decode > 0:
            out["decode_tps"] = (n_out - 1) / decode
    return out


def sample_scores(record: Record, spec: CaseSpec | None) -> dict[str, float]:
    """The 0/1 score of each rate scored per completed sample (``catalogue.sample_rates``) that applies to one
    completed record: JSON validity to samples meant to be JSON, schema validity to cases with a schema, the
    pass rate to cases with expect (``catalogue/builtin.py``), and any metric registered so."""
    spec = spec or _NO_SPEC
    content = record.get("content")
    tool_calls = record.get("tool_calls")
    key = (record["ok"], content, "response_format" in (record.get("params") or {}),
           json.dumps([tool_calls, (record.get("params") or {}).get("tools")], sort_keys=True) if tool_calls else None)
    cached = spec._memo.get(key)
    if cached is not None:
        return cached
    out = _scores(catalogue.sample_rates(), record, spec)
    spec._memo[key] = out
    return out


def request_scores(record: Record, spec: CaseSpec | None) -> dict[str, float]:
    """The 0/1 score of each rate scored per request, a failed one included (``error_rate``)."""
    return _scores(catalogue.request_rates(), record, spec or _NO_SPEC)


def _scores(rates: Sequence[catalogue.Metric], record: Record, spec: CaseSpec) -> dict[str, float]:
    out: dict[str, float] = {}
    for metric in rates:
        assert isinstance(metric.computed, catalogue.SampleRate)
        score = metric.computed.score(record, spec)
        if score is not None:
            out[metric.name] = float(score)
    return out


def latency_columns(records: Sequence[Record]) -> dict[str, npt.NDArray[np.float64]]:
    """``sample_latencies`` of many completed records at once: one array per latency measured per sample,
    parallel to ``records``, NaN where a record did not measure it (the same numbers, computed in numpy)."""
    timings = [r["timings"] for r in records]
    cols = {name: np.array([t.get(name) for t in timings], dtype=float)
            for name in ("queue_s", "ttft_s", "ttfc_s", "e2e_s")}
    counts = [(r.get("usage") or _NO_USAGE).get("completion_tokens") for r in records]
    n_out = np.array([int(v) if isinstance(v, (int, float)) else None for v in counts], dtype=float)
    decode = cols["e2e_s"] - cols["ttft_s"]  # NaN unless both were measured
    # Both branches of np.where are computed: the division is also done where its result is not used.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cols["tpot_s"] = np.where(n_out > 1, decode / (n_out - 1), np.nan)
        cols["decode_tps"] = np.where((n_out > 1) & (decode > 0), (n_out - 1) / decode, np.nan)
    return cols


_NO_USAGE: Usage = {}
_NO_DETAILS: dict[str, Any] = {}


def inter_token_gaps(records: Sequence[Record]) -> npt.NDArray[np.float64]:
    """Gaps between consecutive text chunks of each response (``itl_s``), in one numpy pass (runs hold
    millions); ``chunk_times`` may be lists or arrays (compact records)."""
    chunks = [c for c in (r["timings"].get("chunk_times") for r in records) if c is not None and len(c)]
    if not chunks:
        return np.empty(0)
    if all(isinstance(c, array) and c.typecode == "d" for c in chunks):
        flat = np.frombuffer(b"".join(chunks), dtype=np.float64)  # compact records: their bytes, joined
    else:
        flat = np.asarray(list(itertools.chain.from_iterable(chunks)), dtype=float)
    gaps = np.diff(flat)
    # The gap from one response's last chunk to the next response's first is not a gap.
    boundaries = np.cumsum([len(c) for c in chunks])[:-1] - 1
    result: npt.NDArray[np.float64] = np.delete(gaps, boundaries)
    return result


def request_itl(records: Sequence[Record]) -> npt.NDArray[np.float64]:
    """Each response's mean gap between consecutive text chunks (``itl_per_request_s``: one value per
    request, as guidellm and aiperf report ITL, so a long answer weighs as much as a short one), for the
    responses of two or more chunks."""
    means = [(c[-1] - c[0]) / (len(c) - 1) for c in (r["timings"].get("chunk_times") for r in records)
             if c is not None and len(c) >= 2]
    return np.asarray(means, dtype=float)


def latency_metrics(records: Sequence[Record], stream: bool,
                    columns: Mapping[str, npt.NDArray[np.float64]] | None = None) -> dict[str, Metric]:
    """The latency distributions of a cell's completed records (a latency it cannot measure says why);
    ``columns``: their ``latency_columns``, if computed already."""
    columns = columns if columns is not None else latency_columns(records)
    values = {name: col[~np.isnan(col)] for name, col in columns.items()}
    itl = inter_token_gaps(records)
    no_stream = "needs streaming (run.stream: true)"
    out = {"e2e_s": distribution(values["e2e_s"]), "queue_s": distribution(values["queue_s"], intervals=False)}
    for name, measured, reason in (
        ("ttft_s", values["ttft_s"], no_stream if not stream else "no response carried generated text"),
        ("ttfc_s", values["ttfc_s"], no_stream if not stream else "no response carried answer text"),
        ("tpot_s", values["tpot_s"], no_stream if not stream else "needs completion_tokens > 1 in usage"),
        ("itl_s", itl, no_stream if not stream else "needs two or more text chunks"),
        ("itl_per_request_s", request_itl(records), no_stream if not stream else "needs two or more text chunks"),
        ("decode_tps", values["decode_tps"], no_stream if not stream else "needs completion_tokens > 1 in usage"),
    ):
        intervals = name not in ("itl_s", "itl_per_request_s")
        out[name] = distribution(measured, intervals=intervals) if measured.size else na(reason)
    return out


def cost_metrics(records: Sequence[Record], currency: str) -> dict[str, Metric]:
    """Token and cost totals; each figure built from counted usage says so (``usage.source_fields``)."""
    sources = [source_of(r) for r in records]  # read once: each figure is marked by its own records

    def total(values: list[int | None], what: str, *, of_prompt: bool = False) -> Metric:
        known = [(v, source) for v, source in zip(values, sources, strict=True) if v is not None]
        if not known:
            return na(f"the server reported no {what}")
        marks = source_marks(source for _, source in known)
        if not of_prompt:  # an estimated prompt count says nothing about the other counts
            marks.pop("prompt_estimated", None)
        return with_marks({"value": int(sum(v for v, _ in known)), "mean": sum(v for v, _ in known) / len(known),
                           "n": len(known)}, marks)

    def counts(values: Iterable[Any]) -> list[int | None]:  # as _usage reads each
        return [int(v) if isinstance(v, (int, float)) else None for v in values]

    priced = [(r, source) for r, source in zip(records, sources, strict=True) if r.get("cost") is not None]
    costs = [float(r["cost"] or 0.0) for r, _ in priced]
    usages: list[Usage] = [r.get("usage") or _NO_USAGE for r in records]
    out = {
        "prompt_tokens": total(counts(u.get("prompt_tokens") for u in usages), "prompt_tokens in usage",
                               of_prompt=True),
        "completion_tokens": total(counts(u.get("completion_tokens") for u in usages), "completion_tokens in usage"),
        "reasoning_tokens": total(counts((u.get("completion_tokens_details") or _NO_DETAILS).get("reasoning_tokens")
                                         for u in usages), "completion_tokens_details.reasoning_tokens"),
        "cached_tokens": total([cached_tokens(u) for u in usages], "prompt_tokens_details.cached_tokens"),
    }
    if out["cached_tokens"]["value"] is not None:
        out["cached_tokens"].update({"saving": math.fsum(r.get("cached_saving") or 0.0 for r in records),
                                     "currency": currency})
    if costs:
        marks = source_marks(source for _, source in priced)
        # fsum: exactly rounded, so the same records give the same cost in any order (a merge of shards).
        out["cost"] = with_marks({"value": math.fsum(costs), "currency": currency, "n": len(costs)}, marks)
        out["cost_per_1k_requests"] = with_marks({"value": 1000 * math.fsum(costs) / len(costs), "currency": currency,
                                                  "n": len(costs)}, marks)
    else:
        out["cost"] = out["cost_per_1k_requests"] = na("no usage reported, so no cost")
    return out


def _mark_token_latencies(metrics: dict[str, Metric], records: Sequence[Record]) -> None:
    """tpot_s and decode_tps divide by completion tokens: say so where those were counted."""
    marks = source_fields(r for r in records if _usage(r, "completion_tokens"))
    marks.pop("prompt_estimated", None)  # they use no prompt tokens
    for name in ("tpot_s", "decode_tps"):
        if marks and metrics[name].get("value", metrics[name].get("p50")) is not None:
            with_marks(metrics[name], marks)


#: One record's scores: its ``request_scores`` and (a completed one's) ``sample_scores``.
Scores = tuple[dict[str, float], dict[str, float]]
_NOT_SCORED: dict[str, float] = {}


def record_scores(record: Record, spec: CaseSpec | None) -> Scores:
    """``request_scores`` and, for a completed record, ``sample_scores`` (else empty; do not modify)."""
    return request_scores(record, spec), sample_scores(record, spec) if record["ok"] else _NOT_SCORED


def case_counts(records: Sequence[Record], cases: dict[str, CaseSpec], *, scores: Sequence[Scores] | None = None
                ) -> dict[str, dict[str, tuple[int, int]]]:
    """Per rate of ``PER_CASE_RATES``, each case's (successes, samples) among these records (``scores``: their
    ``record_scores``, if computed already).

    A case appears under a rate only when the rate applies to one of its samples: most rates count completed
    samples (as their cell values do), ``error_rate`` counts every request.
    """
    tallies: dict[str, dict[str, list[int]]] = {name: {} for name in PER_CASE_RATES}
    for j, r in enumerate(records):
        key = case_key(r)
        request, sample = scores[j] if scores is not None else record_scores(r, cases.get(key))
        for name, score in (*sample.items(), *request.items()):
            tally = tallies[name].setdefault(key, [0, 0])
            tally[0] += int(score)
            tally[1] += 1
    return {name: {key: (s, n) for key, (s, n) in by_case.items()} for name, by_case in tallies.items()}


def cell_metrics(records: Sequence[Record], cases: dict[str, CaseSpec], *, stream: bool,
                 currency: str, pass_k: int | None = None, slo: dict[str, float] | None = None,
                 counts: dict[str, dict[str, tuple[int, int]]] | None = None,
                 latencies: Mapping[str, npt.NDArray[np.float64]] | None = None) -> dict[str, Metric]:
    """Every catalogue metric for one cell's records (``counts``: their ``case_counts``; ``latencies``: the
    ``latency_columns`` of the completed ones; either where computed already).

    ``slo`` is a load run's ``load.slo`` (the bounds given; None: not a load run), for its load metrics.

    ``pass_k`` is the k of ``pass_at_k`` and ``pass_hat_k``; by default the most samples any case has (a
    complete run's repeats), so pass^k asks "did every repeat pass?".
    """
    ok = [r for r in records if r["ok"]]
    errors = len(records) - len(ok)
    metrics: dict[str, Metric] = {
        "requests": {"value": len(records)},
        "errors": {"value": errors, "by_kind": dict(Counter(r["error_kind"] or "unknown"
                                                            for r in records if not r["ok"]))},
        "retries": {"value": sum(max(0, attempt_count(r) - 1) for r in records)},
    }
    # Determinism: per case over its repeats, in repeat order.
    outputs: dict[str, list[str]] = defaultdict(list)
    answers: dict[str, list[str | None]] = defaultdict(list)
    tokens: dict[str, list[list[str] | None]] = defaultdict(list)
    for r in sorted(ok, key=lambda r: r["repeat"]):
        key = case_key(r)
        outputs[key].append(r.get("content") or "")
        tokens[key].append(record_tokens(r))
        spec = cases.get(key)
        if spec and spec.extract:
            answers[key].append(spec.answer(r.get("content")))
    metrics.update(determinism_metrics(outputs, answers, tokens))
    # Rates scored per sample (JSON validity, schema validity, expect checks, errors): over the samples
    # they apply to.
    by_case = counts if counts is not None else case_counts(records, cases)
    for metric in (*catalogue.sample_rates(), *catalogue.request_rates()):
        assert isinstance(metric.computed, catalogue.SampleRate)
        tallies = by_case[metric.name].values()
        successes, n = sum(s for s, _ in tallies), sum(n for _, n in tallies)
        metrics[metric.name] = rate(successes, n) if n else na(metric.computed.missing)
    passes = by_case["pass_rate"]
    metrics.update(pass_k_metrics(passes, pass_k or max((n for _, n in passes.values()), default=1)))
    metrics.update(latency_metrics(ok, stream, latencies))
    _mark_token_latencies(metrics, ok)
    metrics.update(cost_metrics(records, currency))
    metrics.update(load_metrics(records, slo))
    for metric in catalogue.cell_values():
        assert isinstance(metric.computed, catalogue.CellValue)
        metrics[metric.name] = metric.computed.fn(records, cases)
    return {name: metrics[name] for name in CATALOGUE}


def sample_failures(record: Record, spec: CaseSpec) -> list[str]:
    """The failed expect checks of one record (an errored request fails with its error)."""
    if not record["ok"]:
        return [f"request failed: {record.get('error')}"]
    if spec.expect is None:
        return []
    return [o.message for o in spec.outcomes(record) if not o.passed]
