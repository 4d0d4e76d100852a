"""What comparisons pair: per metric, one score per sample (case, repeat) or per case, from stored records.

A cell's rate is the mean of these units over its samples, so a comparison on fully paired data reproduces
the two cells' rates exactly (see ``metrics.sample_scores``; both use the same per-sample definitions).
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from evalharness.scoring import catalogue
from evalharness.scoring.compare import Pair
from evalharness.scoring.metrics import (
    CaseSpec,
    Scores,
    answers_agree,
    case_key,
    latency_columns,
    record_scores,
)
from evalharness.types import Record

#: (case key, repeat index); per-case units (determinism) use repeat -1.
UnitKey = tuple[str, int]
Units = Mapping[UnitKey, float]
PER_CASE = -1


class Keys:
    """The unit keys of one cell, in order, shared by its metrics' ``Column``s: each key's case as an index
    into ``cases`` and its repeat, in arrays (16 bytes a key instead of a tuple, a string and an int)."""

    __slots__ = ("case_of", "cases", "grouped", "repeats")

    def __init__(self, keys: Sequence[UnitKey]) -> None:
        self.cases: list[str] = []
        position: dict[str, int] = {}
        self.case_of = array("q")
        self.repeats = array("q")
        for case, repeat in keys:
            at = position.get(case)
            if at is None:
                at = position[case] = len(self.cases)
                self.cases.append(case)
            self.case_of.append(at)
            self.repeats.append(repeat)
        #: Whether each case's keys are next to each other (so its units are one slice).
        self.grouped = all(a <= b for a, b in zip(self.case_of, self.case_of[1:], strict=False))

    def __len__(self) -> int:
        return len(self.repeats)


class Column(Mapping[UnitKey, float]):
    """One metric's units of one cell, compact: the cell's ``Keys`` and an array of values, NaN where the
    metric has no unit. Iterates in key order, as the dict it replaces did (8 bytes a unit, where a dict entry
    with its tuple key took about 100: a million-record run holds every cell's units). A lookup by key builds
    a dict each time (``as_dict``): comparisons iterate, group by case or build one dict to pair with."""

    __slots__ = ("_keys", "_size", "_values")

    def __init__(self, keys: Keys, values: array[float]) -> None:
        self._keys = keys
        self._values = values
        self._size = int(np.count_nonzero(~np.isnan(np.frombuffer(values, dtype=np.float64))))

    def __len__(self) -> int:
        return self._size

    def items(self) -> Iterator[tuple[UnitKey, float]]:  # type: ignore[override]
        cases, repeats = self._keys.cases, self._keys.repeats
        for i, (case, value) in enumerate(zip(self._keys.case_of, self._values, strict=True)):
            if value == value:
                yield (cases[case], repeats[i]), value

    def __iter__(self) -> Iterator[UnitKey]:
        return (key for key, _ in self.items())

    def __getitem__(self, key: UnitKey) -> float:
        found = self.as_dict().get(key, math.nan)
        if found != found:
            raise KeyError(key)
        return found

    def as_dict(self) -> dict[UnitKey, float]:
        """The units as a dict, built on each call (for lookups by key; not kept, to stay compact)."""
        return dict(self.items())

    def by_case(self) -> dict[str, list[float]]:
        """The units grouped by case, in key order (as ``by_case`` groups a dict's)."""
        cases = self._keys.cases
        if self._keys.grouped:  # each case's keys together (the cell's keys are sorted): split at its edges
            values = np.frombuffer(self._values, dtype=np.float64)
            measured = ~np.isnan(values)
            if not measured.any():
                return {}
            case_of = np.frombuffer(self._keys.case_of, dtype=np.int64)[measured]
            edges = (np.flatnonzero(np.diff(case_of)) + 1).tolist()
            return {cases[case]: group.tolist() for case, group in
                    zip(case_of[[0, *edges]].tolist(), np.split(values[measured], edges), strict=True)}
        out: dict[str, list[float]] = {}
        for case, value in zip(self._keys.case_of, self._values, strict=True):
            if value == value:
                found = out.get(cases[case])
                if found is None:
                    out[cases[case]] = [value]
                else:
                    found.append(value)
        return out

    def __reduce__(self) -> tuple[type[Column], tuple[Keys, array[float]]]:
        return Column, (self._keys, self._values)


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


def cell_units(records: Sequence[Record], cases: dict[str, CaseSpec], *, scores: Sequence[Scores] | None = None,
               latencies: Mapping[str, npt.NDArray[np.float64]] | None = None) -> dict[str, Units]:
    """Every comparable metric's units for one cell's records (a metric with no units is absent), as
    ``Column``s: per sample over the cell's (case, repeat) keys in order, per case over its cases.

    ``scores`` (``record_scores`` of each record) and ``latencies`` (``latency_columns`` of the completed
    records, in order) are what the cell's metrics computed already; without them they are computed here.
    A key found on two records (not expected) has the later record's score, as a dict filled in order would.
    """
    keys_of = [(case_key(r), int(r["repeat"])) for r in records]
    order = sorted(set(keys_of))
    place = {key: i for i, key in enumerate(order)}
    keys = Keys(order)
    nan = math.nan
    values: dict[str, array[float]] = {}

    def column(name: str) -> array[float]:
        found = values.get(name)
        if found is None:
            found = values[name] = array("d", [nan]) * len(keys)
        return found

    outputs: dict[str, list[str]] = defaultdict(list)
    answers: dict[str, list[str | None]] = defaultdict(list)
    done_at: list[int] = []
    for j, r in enumerate(records):
        key = keys_of[j]
        i = place[key]
        spec = cases.get(key[0])
        request, sample = scores[j] if scores is not None else record_scores(r, spec)
        for name, score in request.items():
            column(name)[i] = score
        if not r["ok"]:
            continue
        done_at.append(i)
        for name, score in sample.items():
            column(name)[i] = score
        outputs[key[0]].append(r.get("content") or "")
        if spec and spec.extract:
            answers[key[0]].append(spec.answer(r.get("content")))
    # Latencies of all samples at once (``sample_latencies``, in numpy); NaN is "not measured".
    if latencies is None:
        latencies = latency_columns([r for r in records if r["ok"]])
    at = np.asarray(done_at, dtype=np.intp)
    for name, measured in latencies.items():
        found = ~np.isnan(measured)
        if name in COMPARABLE and found.any():
            filled = np.full(len(keys), nan)
            if len(order) == len(keys_of):
                filled[at[found]] = measured[found]
            else:  # a key found twice: its later measured value, in order
                for i, seconds in zip(at[found].tolist(), measured[found].tolist(), strict=True):
                    filled[i] = seconds
            values[name] = array("d", filled.tobytes())
    out: dict[str, Units] = {name: Column(keys, v) for name, v in values.items() if name in COMPARABLE}
    with_outputs = sorted(outputs)
    per_case = Keys([(case, PER_CASE) for case in with_outputs])
    for name, by_case_values in (
            ("exact_match_rate", [float(len(set(outputs[case])) == 1) if len(outputs[case]) >= 2 else nan
                                  for case in with_outputs]),
            ("answer_agreement_rate", [float(answers_agree(answers[case])) if len(answers.get(case, ())) >= 2
                                       else nan for case in with_outputs])):
        column_values = array("d", by_case_values)
        if name in COMPARABLE and any(v == v for v in column_values):
            out[name] = Column(per_case, column_values)
    return out


def by_case(units: Units) -> dict[str, list[float]]:
    """A side's units grouped by case (repeat indices dropped: without a seed they pair nothing)."""
    if isinstance(units, Column):
        return units.by_case()
    out: dict[str, list[float]] = defaultdict(list)
    for (case, _), value in units.items():
        out[case].append(value)
    return out


def pair_units(before: Units, after: Units) -> list[Pair]:
    """The units present on both sides, as (case, before, after), in ``before``'s order (the comparisons
    sort them by value themselves)."""
    lookup = after.as_dict() if isinstance(after, Column) else after
    return [(key[0], value, lookup[key]) for key, value in before.items() if key in lookup]


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
