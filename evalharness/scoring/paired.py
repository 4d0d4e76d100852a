"""What comparisons pair: per metric, one score per sample (case, repeat) or per case, from stored records.

A cell's rate is the mean of these units over its samples, so a comparison on fully paired data reproduces
the two cells' rates exactly (see ``metrics.sample_scores``; both use the same per-sample definitions).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from evalharness.scoring.compare import Pair
from evalharness.scoring.metrics import (
    SAMPLE_LATENCIES,
    SAMPLE_RATES,
    CaseSpec,
    answers_agree,
    case_key,
    latency_columns,
    sample_scores,
)

#: (case key, repeat index); per-case units (determinism) use repeat -1.
UnitKey = tuple[str, int]
Units = dict[UnitKey, float]
PER_CASE = -1


@dataclass(frozen=True)
class Comparable:
    """A metric comparisons understand: a rate (difference) or a latency (ratio of a quantile)."""

    name: str
    kind: Literal["rate", "latency"]
    higher_is_better: bool


COMPARABLE: dict[str, Comparable] = {c.name: c for c in (
    Comparable("pass_rate", "rate", True),
    Comparable("json_valid_rate", "rate", True),
    Comparable("json_valid_lenient_rate", "rate", True),
    Comparable("schema_valid_rate", "rate", True),
    Comparable("exact_match_rate", "rate", True),
    Comparable("answer_agreement_rate", "rate", True),
    Comparable("error_rate", "rate", False),
    Comparable("ttft_s", "latency", False),
    Comparable("ttfc_s", "latency", False),
    Comparable("e2e_s", "latency", False),
    Comparable("tpot_s", "latency", False),
    Comparable("decode_tps", "latency", True),
)}
#: Quantiles a latency comparison may use (``e2e_s.p50``, ``e2e_s.p95``).
LATENCY_FIELDS = {"p50": 0.50, "p90": 0.90, "p95": 0.95, "p99": 0.99}


def cell_units(records: Sequence[dict[str, Any]], cases: dict[str, CaseSpec]) -> dict[str, Units]:
    """Every comparable metric's units for one cell's records (a metric with no units is absent)."""
    units: dict[str, Units] = defaultdict(dict)
    outputs: dict[str, list[str]] = defaultdict(list)
    answers: dict[str, list[str | None]] = defaultdict(list)
    done: list[dict[str, Any]] = []
    done_keys: list[UnitKey] = []
    for r in sorted(records, key=lambda r: (case_key(r), r["repeat"])):
        key = (case_key(r), int(r["repeat"]))
        units["error_rate"][key] = 0.0 if r["ok"] else 1.0
        if not r["ok"]:
            continue
        done.append(r)
        done_keys.append(key)
        spec = cases.get(key[0])
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


def split_metric(path: str) -> tuple[str, str | None]:
    """``e2e_s.p95`` -> (``e2e_s``, ``p95``); a latency without a field compares medians."""
    name, _, fld = path.partition(".")
    spec = COMPARABLE.get(name)
    if spec is None:
        raise ValueError(f"{name!r} cannot be compared with a baseline; comparable metrics: "
                         f"{', '.join(COMPARABLE)} (latencies as NAME.p50 or NAME.p95)")
    if spec.kind == "rate":
        if fld not in ("", "value"):
            raise ValueError(f"{name} is a rate; compare it as {name}, not {path}")
        return name, None
    if (fld or "p50") not in LATENCY_FIELDS:
        raise ValueError(f"{name} compares by a quantile: {', '.join(f'{name}.{f}' for f in LATENCY_FIELDS)}")
    return name, fld or "p50"


def pair_units(before: Units, after: Units) -> list[Pair]:
    """The units present on both sides, as (case, before, after), in ``before``'s order (the comparisons
    sort them by value themselves)."""
    return [(key[0], value, after[key]) for key, value in before.items() if key in after]


def why_unpaired(metric: str, before: Units | None, after: Units | None) -> str:
    """Why a comparison of ``metric`` has no paired units, in the user's words."""
    if not before and not after:
        if metric in SAMPLE_RATES:
            return SAMPLE_RATES[metric].replace("in this cell", "in either cell")
        if metric in ("exact_match_rate", "answer_agreement_rate"):
            return ("needs at least 2 completed repeats of a case" if metric == "exact_match_rate"
                    else "no case with an answer extractor has 2 completed repeats")
        if metric in SAMPLE_LATENCIES:
            return f"no sample measured {metric}"
        return f"no samples for {metric}"
    if not before or not after:
        return f"only one side measured {metric}"
    return "no case and repeat is present on both sides"
