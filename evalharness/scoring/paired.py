"""What comparisons pair: per metric, one score per sample (case, repeat) or per case, from stored records.

A cell's rate is the mean of these units over its samples, so a comparison on fully paired data reproduces
the two cells' rates exactly (see ``metrics.sample_scores``; both use the same per-sample definitions).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from evalharness.scoring import catalogue
from evalharness.scoring.compare import Pair
from evalharness.scoring.metrics import (
    CaseSpec,
    answers_agree,
    case_key,
    latency_columns,
    request_scores,
    sample_scores,
)
from evalharness.types import Record

#: (case key, repeat index); per-case units (determinism) use repeat -1.
UnitKey = tuple[str, int]
Units = dict[UnitKey, float]
PER_CASE = -1


@dataclass(frozen=True)
class Comparable:
    """A metric comparisons understand: a rate (difference) or a latency (ratio of a quantile); derived from
    its declaration in the catalogue."""

    name: str
    kind: Literal["rate", "latency"]
    higher_is_better: bool


def _comparable(metric: catalogue.Metric) -> Comparable:
    assert metric.compare is not None and metric.higher_is_better is not None
    return Comparable(metric.name, "rate" if metric.compare.how == "difference" else "latency",
                      metric.higher_is_better)


#: The metrics the catalogue declares comparable, by name.
COMPARABLE: Mapping[str, Comparable] = catalogue.Lookup(catalogue.comparable, _comparable)
#: Quantiles a latency comparison may use (``e2e_s.p50``, ``e2e_s.p95``).
LATENCY_FIELDS = {f: int(f[1:]) / 100 for f in catalogue.QUANTILES}


def cell_units(records: Sequence[Record], cases: dict[str, CaseSpec]) -> dict[str, Units]:
    """Every comparable metric's units for one cell's records (a metric with no units is absent)."""
    units: dict[str, Units] = defaultdict(dict)
    outputs: dict[str, list[str]] = defaultdict(list)
    answers: dict[str, list[str | None]] = defaultdict(list)
    done: list[Record] = []
    done_keys: list[UnitKey] = []
    for r in sorted(records, key=lambda r: (case_key(r), r["repeat"])):
        key = (case_key(r), int(r["repeat"]))
        spec = cases.get(key[0])
        for name, score in request_scores(r, spec).items():
            units[name][key] = score
        if not r["ok"]:
            continue
        done.append(r)
        done_keys.append(key)
        for name, score in sample_scores(r, spec).items():
            units[name][key] = score
        outputs[key[0]].append(r.get("content") or "")
        if spec and spec.extract:
            answers[key[0]].append(spec.answer(r.get("content")))
    # Latencies of all samples at once (``sample_latencies``, in numpy); NaN is "not measured".
    for name, column in latency_columns(done).items():
        if name in COMPARABLE:
            measured = units[name]
            for key, seconds in zip(done_keys, column.tolist(), strict=True):
                if seconds == seconds:
                    measured[key] = seconds
    for case, texts in outputs.items():
        if len(texts) >= 2:
            units["exact_match_rate"][(case, PER_CASE)] = float(len(set(texts)) == 1)
    for case, found in answers.items():
        if len(found) >= 2:
            units["answer_agreement_rate"][(case, PER_CASE)] = float(answers_agree(found))
    return {name: dict(u) for name, u in units.items() if name in COMPARABLE and u}


def by_case(units: Units) -> dict[str, list[float]]:
    """A side's units grouped by case (repeat indices dropped: without a seed they pair nothing)."""
    out: dict[str, list[float]] = defaultdict(list)
    for (case, _), value in units.items():
        out[case].append(value)
    return out


def pair_units(before: Units, after: Units) -> list[Pair]:
    """The units present on both sides, as (case, before, after), in ``before``'s order (the comparisons
    sort them by value themselves)."""
    return [(key[0], value, after[key]) for key, value in before.items() if key in after]


def why_unpaired(metric: str, before: Units | None, after: Units | None) -> str:
    """Why a comparison of ``metric`` has no paired units, in the user's words."""
    if not before and not after:
        found = catalogue.get(metric)
        if found is not None and found in catalogue.sample_rates():
            assert isinstance(found.computed, catalogue.SampleRate)
            return found.computed.missing.replace("in this cell", "in either cell")
        if metric in ("exact_match_rate", "answer_agreement_rate"):
            return ("needs at least 2 completed repeats of a case" if metric == "exact_match_rate"
                    else "no case with an answer extractor has 2 completed repeats")
        if metric in catalogue.sample_latencies():
            return f"no sample measured {metric}"
        return f"no samples for {metric}"
    if not before or not after:
        return f"only one side measured {metric}"
    return "no case and repeat is present on both sides"
