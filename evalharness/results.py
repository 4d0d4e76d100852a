"""A finished run as Python sees it: typed cells, metrics, gate verdicts and case outcomes.

These are read-only views over summary.json (kept whole as ``Run.summary``) and results.jsonl (read only
when ``Run.records`` or ``Run.cases`` is first asked for); the files stay the contract, these add names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from evalharness import types as shapes
from evalharness.fanout import gate_defaults
from evalharness.gates import matches_where
from evalharness.report.fmt import case_count, gate_bound, gate_subject, gate_value
from evalharness.report.outcomes import build_outcomes
from evalharness.store import MANIFEST, read_json, read_records
from evalharness.types import Manifest, Record, Summary


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_number(v) is not None for v in value):
        return float(value[0]), float(value[1])
    return None


@dataclass(frozen=True)
class Metric:
    """One metric of a cell: a rate or count (``value``, ``ci95``, ``n``), a latency (``p50`` … ``max``,
    ``value`` None), or one that does not apply here (``value`` None and the ``reason``).

    ``metric["field"]`` reads any stored field (``successes``, ``unit``, ``by_k``, ``p50_ci95``, …).
    """

    name: str
    value: float | None
    ci95: tuple[float, float] | None = None
    n: int | None = None
    reason: str | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    fields: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_summary(cls, name: str, data: shapes.MetricValue) -> Metric:
        n = data.get("n")
        return cls(name=name, value=_number(data.get("value")), ci95=_interval(data.get("ci95")),
                   n=int(n) if isinstance(n, int) else None, reason=data.get("reason"),
                   p50=_number(data.get("p50")), p90=_number(data.get("p90")), p95=_number(data.get("p95")),
                   p99=_number(data.get("p99")), mean=_number(data.get("mean")), min=_number(data.get("min")),
                   max=_number(data.get("max")), fields=dict(data))

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its ``label`` (``temperature=0 seed=42``), the ``params`` its axes set, the
    number of samples ``n``, and its metrics by name."""

    cell_id: str
    label: str
    params: Mapping[str, Any]
    n: int
    metrics: Mapping[str, Metric]

    @classmethod
    def from_summary(cls, data: shapes.CellSummary) -> Cell:
        return cls(cell_id=data["cell_id"], label=data.get("label", data["cell_id"]), params=data["params"],
                   n=int(data.get("n", 0)),
                   metrics={name: Metric.from_summary(name, m) for name, m in data["metrics"].items()})

    def metric(self, name: str) -> Metric:
        """The metric called ``name`` (``pass_rate``, ``e2e_s``, …)."""
        try:
            return self.metrics[name]
        except KeyError:
            raise KeyError(f"no metric {name!r} in cell {self.label}; it has {', '.join(self.metrics)}") from None

    __getitem__ = metric


@dataclass(frozen=True)
class GateVerdict:
    """One verdict of a gate: on a cell (``cell``, its label), on the run totals (``cell`` None), or on one
    case (``case``, ``suite/id``). ``message`` says what failed, as junit.xml and the test items do."""

    metric: str
    passed: bool
    value: float | None
    reason: str | None
    cell: str | None
    cell_id: str | None
    case: str | None
    #: The gate's index in the config's ``gates`` (None for a ``run --baseline`` verdict, and in summaries
    #: written before verdicts said it).
    gate: int | None
    raw: shapes.GateVerdict = field(repr=False)

    @classmethod
    def from_summary(cls, data: shapes.GateVerdict) -> GateVerdict:
        return cls(metric=data["metric"], passed=bool(data["passed"]), value=_number(data.get("value")),
                   reason=data.get("reason"), cell=data.get("label"), cell_id=data.get("cell_id"),
                   case=data.get("case"), gate=data.get("gate"), raw=data)

    @property
    def name(self) -> str:
        """``pass_rate >= 0.8 [temperature=0]``: the gate, its bound and where it applies."""
        return f"{self.metric} {gate_bound(self.raw, ascii_only=True)} [{gate_subject(self.raw)}]"

    @property
    def message(self) -> str:
        """``pass_rate = 0.5 (want >= 0.8)`` and the reason, with the failing cases of a per_case gate."""
        raw = self.raw
        value = "none" if self.value is None and not raw.get("case_verdict") else gate_value(raw, 6)
        text = f"{self.metric} = {value} (want {gate_bound(raw, ascii_only=True)})"
        if self.reason:
            text += f": {self.reason}"
        failing = raw.get("failing_cases") or []
        if failing and not self.reason:
            text += f": {len(failing)} of {raw.get('cases_checked')} cases fail"
        return "\n".join([text, *(f"  {case_count(c)}" for c in failing)])


@dataclass(frozen=True)
class CaseOutcome:
    """One case in one cell: its samples, how many failed their ``expect`` checks (failed requests count)
    and how many requests failed, and each sample's failed checks in repeat order."""

    case: str
    cell: str
    cell_id: str
    n: int
    failed: int
    errors: int
    has_expect: bool
    failures: tuple[tuple[str, ...], ...]
    contents: tuple[str | None, ...]

    @property
    def passed(self) -> bool:
        """Every sample met the case's checks (a case without checks passes unless a request failed)."""
        return self.failed == 0 and self.errors == 0

    @property
    def message(self) -> str:
        """Why it failed, as junit.xml says it: failed requests, else failed samples and their checks."""
        if self.errors:
            return f"{self.errors} of {self.n} requests failed"
        if not self.failed:
            return "passed"
        reasons = Counter(reason for f in self.failures for reason in f)
        detail = "".join(f"\n  repeat {i}: {'; '.join(f)}\n    answer: {(c or '')[:300]!r}"
                         for i, (f, c) in enumerate(zip(self.failures, self.contents, strict=True)) if f)
        return (f"{self.failed} of {self.n} samples failed: "
                + "; ".join(reason for reason, _ in reasons.most_common(3)) + detail)


class Run:
    """A finished run: ``passed`` (every gate passed and the run completed), ``complete``, ``cells``,
    ``gates``, ``run_dir``, ``summary`` (summary.json as stored), ``reports`` (the files written);
    ``records`` and ``cases`` read results.jsonl when first asked for."""

    def __init__(self, run_dir: Path, summary: Summary, reports: list[Path]) -> None:
        self.run_dir = run_dir
        self.summary = summary
        self.reports = reports

    def __repr__(self) -> str:
        return f"<Run {self.summary.get('name')} {self.run_id} passed={self.passed} at {self.run_dir}>"

    @property
    def run_id(self) -> str:
        return str(self.summary["run_id"])

    @property
    def passed(self) -> bool:
        return bool(self.summary["passed"])

    @property
    def complete(self) -> bool:
        return bool(self.summary["complete"])

    @property
    def stop_reason(self) -> str | None:
        """Why the run stopped before its plan was done (None for a complete run)."""
        reason = self.summary.get("stop_reason")
        return str(reason) if reason is not None else None

    @cached_property
    def cells(self) -> list[Cell]:
        return [Cell.from_summary(c) for c in self.summary["cells"]]

    @cached_property
    def gates(self) -> list[GateVerdict]:
        return [GateVerdict.from_summary(g) for g in self.summary["gates"]]

    @cached_property
    def manifest(self) -> Manifest:
        manifest: Manifest = read_json(self.run_dir / MANIFEST)
        return manifest

    @cached_property
    def records(self) -> list[Record]:
        """Every stored record (results.jsonl), one per finished request."""
        return read_records(self.run_dir)

    @cached_property
    def cases(self) -> list[CaseOutcome]:
        """Every case × cell with samples, cases in suite order, cells in grid order."""
        outcomes = build_outcomes(self.manifest, self.summary, self.records)
        labels = {c.cell_id: c.label for c in self.cells}
        found = []
        for case in outcomes.cases:
            for cell_id in outcomes.cell_ids:
                pair = outcomes.pair(case, cell_id)
                if pair is not None:
                    found.append(CaseOutcome(
                        case=case, cell=labels.get(cell_id, cell_id), cell_id=cell_id, n=pair.n,
                        failed=pair.failed, errors=pair.errors, has_expect=outcomes.has_expect(case),
                        failures=tuple(tuple(f) for f in pair.failures),
                        contents=tuple(r.get("content") for r in pair.records)))
        return found

    def cell(self, **params: Any) -> Cell:
        """The one cell whose effective params (the config's defaults, then the cell's axes) have these
        values, as a gate's ``where`` matches: ``run.cell(temperature=0, seed=42)``; none or several is a
        LookupError."""
        defaults = gate_defaults(self.manifest.get("config") or {}) if params else None
        found = [c for c in self.cells if matches_where(dict(c.params), params, defaults)]
        if len(found) != 1:
            what = "no cell" if not found else f"{len(found)} cells ({', '.join(c.label for c in found)})"
            raise LookupError(f"{what} of this run match {params}; its cells are "
                              f"{', '.join(c.label for c in self.cells)}")
        return found[0]


@dataclass(frozen=True)
class Change:
    """One metric of one matched cell, new against base: ``before`` → ``after``, the ``change`` with its
    95% interval, and the ``verdict`` (``regressed`` / ``improved`` / ``unchanged`` / ``inconclusive``; None
    with the ``reason`` when it could not be compared)."""

    cell: str
    metric: str
    verdict: str | None
    before: float | None
    after: float | None
    change: float | None
    ci95: tuple[float, float] | None
    reason: str | None
    raw: shapes.MetricComparison = field(repr=False)

    @classmethod
    def from_result(cls, cell: str, data: shapes.MetricComparison) -> Change:
        return cls(cell=cell, metric=data["metric"], verdict=data.get("verdict"), before=_number(data.get("before")),
                   after=_number(data.get("after")), change=_number(data.get("change")),
                   ci95=_interval(data.get("ci95")), reason=data.get("reason"), raw=data)


@dataclass(frozen=True)
class Comparison:
    """A run against a baseline: ``passed`` unless a metric or a case regressed; ``changes`` holds every
    compared metric of every matched cell, ``regressions`` those that got worse, ``case_regressions`` the
    cases that got worse on their own; ``result`` is the whole comparison as ``compare --json`` writes it."""

    passed: bool
    population: str
    changes: list[Change]
    regressions: list[Change]
    case_regressions: list[shapes.CaseVerdict]
    result: shapes.Comparison = field(repr=False)

    @classmethod
    def from_result(cls, result: shapes.Comparison) -> Comparison:
        changes = [Change.from_result(c["label"], m) for c in result["cells"] for m in c["metrics"]]
        return cls(passed=bool(result["passed"]), population=str(result["population"]), changes=changes,
                   regressions=[c for c in changes if c.verdict == "regressed"],
                   case_regressions=list(result.get("case_regressions", [])), result=result)
