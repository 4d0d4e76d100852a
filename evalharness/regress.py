"""Regression verdicts: how a change is judged, a run against another, and the cells of one run compared.

Used by ``evalharness compare BASE NEW``, ``evalharness run --baseline DIR``, baseline gates in a config
(``{metric, baseline: DIR | previous, max_drop | max_rise, population}``) and the ``comparisons`` of
summary.json. Cells match by params and cases by suite and id. Two questions can be asked:

- *this suite* (the default): did the behaviour on these cases change? The cases are fixed and their repeats
  random (``scoring/suite.py``), and every case is also judged on its own (``scoring/cases.py``);
- *cases like these* (``population: cases``): would a new sample of cases change? Samples pair by case and
  repeat, with the spread clustered by case (``scoring/compare.py``).

A regression is a change whose interval lies beyond the tolerance (never a change of the point estimate
alone), or a case whose exact test says it got worse by more than the tolerance; a run too small to tell is
``inconclusive`` with its minimum detectable effect.

Verdicts of one comparison are judged together: with many cells, metrics and cases, some tests would reject
by chance alone. Half of the 5% goes to the cell-level intervals, widened together (Bonferroni), half to the
per-case tests (Holm), so the chance of flagging any noise as a regression stays at 5% for the whole
comparison.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Literal, cast

from evalharness.plan import canonical
from evalharness.runs import RunData
from evalharness.scoring import catalogue
from evalharness.scoring.cases import CASE_TESTED, CaseTest, beyond, case_tests, judge_cases
from evalharness.scoring.catalogue import split_metric
from evalharness.scoring.compare import Change, quantile_ratio, rate_difference, verdict
from evalharness.scoring.paired import (
    COMPARABLE,
    LATENCY_FIELDS,
    Units,
    by_case,
    pair_units,
    why_unpaired,
)
from evalharness.scoring.suite import (
    POWER_CHANGE,
    repeats_needed,
    stratified_difference,
    stratified_quantile_ratio,
)
from evalharness.types import CaseFinding, CellComparison, ComparedCell, Comparison, MetricComparison, PlannedCell

#: The question a comparison answers: did *this suite* change (cases fixed, the default), or would *cases
#: like these* (a new sample of cases; clustered by case, opt-in).
Population = Literal["suite", "cases"]
ANALYSIS: dict[str, str] = {"suite": "this suite", "cases": "cases like these"}
#: Rates scored once per case (over all its repeats): more repeats do not narrow them, more cases do.
PER_CASE_RATES = catalogue.Names(catalogue.compared_per_case)
TESTS: dict[tuple[str, str], str] = {
    ("suite", "rate"): "stratified difference over cases, Agresti-Caffo interval",
    ("suite", "latency"): "quantile ratio, bootstrap of repeats within cases",
    ("cases", "rate"): "paired difference, standard error clustered by case (Miller 2024)",
    ("cases", "latency"): "quantile ratio, bootstrap over cases",
}

#: What ``compare`` and ``run --baseline`` judge, per matched cell (the catalogue's ``compared``).
DEFAULT_METRICS = catalogue.Names(catalogue.compared_by_default)
#: What summary.json compares between the cells of one run (the catalogue's ``between_cells``).
CELL_METRICS = catalogue.Names(catalogue.compared_between_cells)
#: Default tolerances: any significant worsening of a rate; latency only when over twice as slow, because
#: runs on different machines or at different load differ that much without any change of the suite.
RATE_TOLERANCE = 0.0
LATENCY_TOLERANCE = 1.0
#: "unchanged" claims the run rules out a worsening bigger than this (or the tolerance, if larger).
RATE_RESOLUTION = 0.05
LATENCY_RESOLUTION = 0.10
FAMILY_LEVEL = 0.95
#: Up to this many cells, summary.json also compares every two cells that differ in exactly one axis.
AXIS_PAIRS_MAX_CELLS = 16
CELL_FINDINGS = {"regressed": "worse", "improved": "better", "unchanged": "same", "inconclusive": "inconclusive"}


def measure(metric: str, before: Units | None, after: Units | None, *, level: float = 0.95,
            population: Population = "suite") -> Change | str:
    """The change of ``metric`` (``name`` or ``name.pNN``) at confidence ``level``, or why none.

    ``population`` is the question asked: ``suite`` (these cases, repeats random; ``scoring/suite.py``) or
    ``cases`` (a new sample of cases like these; clustered by case, ``scoring/compare.py``).
    """
    name, fld = split_metric(metric)
    rate = COMPARABLE[name].kind == "rate"
    if population == "cases":
        pairs = pair_units(before or {}, after or {})
        if not pairs:
            return why_unpaired(name, before, after)
        change = rate_difference(pairs, level=level) if rate else quantile_ratio(
            pairs, q=LATENCY_FIELDS[fld or "p50"], level=level)
        return _few_cases(change) if rate else change
    b, a = by_case(before or {}), by_case(after or {})
    if not any(case in a for case in b):
        return why_unpaired(name, before, after)
    if rate:
        return stratified_difference(b, a, level=level, unit="cases" if name in PER_CASE_RATES else "repeats")
    return stratified_quantile_ratio(b, a, q=LATENCY_FIELDS[fld or "p50"], level=level)


def _few_cases(change: Change) -> Change:
    """A clustered difference whose minimum detectable effect (Student's t with cases - 1 degrees of freedom)
    exceeds the whole range says so, with about how many cases would detect a change of ``POWER_CHANGE``:
    too few cases cannot answer "cases like these"."""
    if change.mde is None or change.mde <= 1 or change.se is None:
        return change
    needed = max(change.cases + 1, repeats_needed(change.se, change.cases, POWER_CHANGE, change.level))
    return replace(change, mde=None, reason=(
        f"cannot detect any change with this run: {change.cases} cases cannot tell; about {needed} cases "
        f"would detect a {100 * POWER_CHANGE:.0f}-pt change"))


#: The rates model-graded checks decide: a change of one smaller than the judges' own disagreement is noise.
JUDGED_RATES = ("pass_rate",)


def judge_noise(metric: str, before: RunData, before_cell: str, after: RunData, after_cell: str) -> float:
    """The judges' disagreement on either side, for a rate the judges decide (0 for any other metric)."""
    if split_metric(metric)[0] not in JUDGED_RATES:
        return 0.0
    return max(before.judge_noise(before_cell), after.judge_noise(after_cell))


def judge(metric: str, before: Units | None, after: Units | None, *, tolerance: float | None = None,
          level: float = 0.95, population: Population = "suite", noise: float = 0.0) -> MetricComparison:
    """One metric's comparison as summary.json and the console show it: the change, its 95% interval,
    the interval at ``level`` behind the verdict, the minimum detectable effect, the verdict, and the
    question and test behind it (``analysis``, ``test``).

    ``noise`` is the judges' own disagreement (``judge_noise``): a rate must change by more than it, as by
    more than the tolerance, to be a regression; the verdict says it as ``judge_noise``."""
    name, _ = split_metric(metric)
    spec = COMPARABLE[name]
    if tolerance is None:
        tolerance = RATE_TOLERANCE if spec.kind == "rate" else LATENCY_TOLERANCE
    noise_note: MetricComparison = {}
    if noise > 0 and spec.kind == "rate":
        tolerance = max(tolerance, noise)
        noise_note = {"judge_noise": noise}
    asked: MetricComparison = {"analysis": ANALYSIS[population], "test": TESTS[population, spec.kind]}
    at_95 = measure(metric, before, after, population=population)
    if isinstance(at_95, str):
        return {"metric": metric, "change": None, "verdict": None, "reason": at_95, **asked}
    at_level = at_95 if level == 0.95 else measure(metric, before, after, level=level, population=population)
    assert isinstance(at_level, Change)
    resolution = RATE_RESOLUTION if spec.kind == "rate" else LATENCY_RESOLUTION
    out: MetricComparison = {"metric": metric, **at_level.to_json(), "ci95": list(at_95.ci) if at_95.ci else None,
           "higher_is_better": spec.higher_is_better, "tolerance": tolerance,
           "verdict": verdict(at_level, higher_is_better=spec.higher_is_better, tolerance=tolerance,
                              margin=resolution), **asked, **noise_note}
    if at_level.se and spec.kind == "rate":
        by_repeats = population == "suite" and name not in PER_CASE_RATES
        unit = "repeats" if by_repeats else "cases"
        per = at_level.n / at_level.cases if by_repeats else at_level.cases
        out["power"] = {"change": POWER_CHANGE,
                        unit: repeats_needed(at_level.se, per, POWER_CHANGE, at_level.level)}
    return out


def family_level(comparisons: int, alpha: float = 1 - FAMILY_LEVEL) -> float:
    """Confidence of each interval behind a verdict so that all ``comparisons`` hold together at 1 - alpha."""
    return 1 - alpha / max(1, comparisons)


def applicable(before: Units | None, after: Units | None) -> bool:
    if not before or not after:
        return False
    cases_after = {case for case, _ in after}
    return any(case in cases_after for case, _ in before)


def split_alpha(metrics: Sequence[str]) -> tuple[float, float]:
    """The family's error rate split between cell-level intervals and per-case exact tests (Bonferroni over
    the two parts), fixed by which metrics are compared, never by the data."""
    alpha = 1 - FAMILY_LEVEL
    if any(split_metric(m)[0] in CASE_TESTED for m in metrics):
        return alpha / 2, alpha / 2
    return alpha, 0.0


def compare_runs(base: RunData, new: RunData, *, metrics: Sequence[str] = DEFAULT_METRICS,
                 rate_tolerance: float = RATE_TOLERANCE, latency_tolerance: float = LATENCY_TOLERANCE,
                 population: Population = "suite") -> Comparison:
    """Every matched cell and metric of ``new`` against ``base``, with verdicts judged together, and every
    case judged on its own (exact tests, Holm across cases, metrics and cells)."""
    base_cells, new_cells = base.cell_by_params(), new.cell_by_params()
    matched = [(base_cells[k], new_cells[k]) for k in new_cells if k in base_cells]
    tolerance = {m: rate_tolerance if COMPARABLE[split_metric(m)[0]].kind == "rate" else latency_tolerance
                 for m in metrics}
    todo = [(b, n, m) for b, n in matched for m in metrics
            if applicable(base.units(b["cell_id"]).get(split_metric(m)[0]),
                           new.units(n["cell_id"]).get(split_metric(m)[0]))]
    cell_alpha, case_alpha = split_alpha(metrics)
    level = family_level(len(todo), cell_alpha)
    cells: list[ComparedCell] = []
    tests: list[CaseTest] = []
    for b, n in matched:
        results: list[MetricComparison] = []
        for m in metrics:
            name = split_metric(m)[0]
            before, after = base.units(b["cell_id"]).get(name), new.units(n["cell_id"]).get(name)
            results.append(judge(m, before, after, tolerance=tolerance[m], level=level, population=population,
                                 noise=judge_noise(m, base, b["cell_id"], new, n["cell_id"])))
            tests += case_tests(name, before, after, cell=n["label"], cell_id=n["cell_id"])
        cells.append({"params": n["params"], "label": n["label"], "cell_id": n["cell_id"],
                      "base_cell_id": b["cell_id"], "metrics": results})
    cases = [c for c in judge_cases(tests, case_alpha) if beyond(c, rate_tolerance)]
    counts: Counter[str] = Counter(v for c in cells for r in c["metrics"] if (v := r.get("verdict")))
    case_regressions = [c for c in cases if c["verdict"] == "regressed"]
    base_cases = {f"{r['suite']}/{r['case_id']}" for r in base.records}
    new_cases = {f"{r['suite']}/{r['case_id']}" for r in new.records}
    return {
        "base": base.describe(), "new": new.describe(), "level": level, "comparisons": len(todo),
        "population": population, "analysis": ANALYSIS[population],
        "case_level": 1 - case_alpha, "case_tests": sum(t.tested for t in tests),
        "tolerance": {"rate": rate_tolerance, "latency": latency_tolerance},
        "cells": cells,
        "cases": cases,
        "unmatched_cells": {"base_only": [c["label"] for k, c in base_cells.items() if k not in new_cells],
                            "new_only": [c["label"] for k, c in new_cells.items() if k not in base_cells]},
        "unmatched_cases": {"base_only": sorted(base_cases - new_cases), "new_only": sorted(new_cases - base_cases)},
        "counts": dict(counts),
        "regressions": [{"cell": c["label"], **r} for c in cells for r in c["metrics"]
                        if r["verdict"] == "regressed"],
        "case_regressions": case_regressions,
        "passed": counts.get("regressed", 0) == 0 and not case_regressions and bool(matched),
    }


def cell_comparisons(run: RunData, metrics: Sequence[str] = CELL_METRICS) -> list[CellComparison]:
    """Cells of one run against each other, each at 95% (findings to read, not gates): every cell against
    the first, and, for up to 16 cells, every two cells that differ in exactly one grid axis."""
    cells = run.cells
    if len(cells) < 2:
        return []
    pairs = [(cells[0], c) for c in cells[1:]]
    if len(cells) <= AXIS_PAIRS_MAX_CELLS:
        pairs += [(a, b) for a, b in itertools.combinations(cells[1:], 2) if len(_differs(a, b)) == 1]
    return [compare_cells(run, ref, cell, metrics) for ref, cell in pairs]


def compare_cells(run: RunData, ref: PlannedCell, cell: PlannedCell, metrics: Sequence[str] = CELL_METRICS
                  ) -> CellComparison:
    """One cell of a run against another (``ref``, the "before") at 95%: findings per metric and per case."""
    results: dict[str, MetricComparison] = {}
    for m in metrics:
        name, fld = split_metric(m)
        # Tolerance 0: a finding reports any change the data shows, whatever CI would tolerate.
        found = judge(m, run.units(ref["cell_id"]).get(name), run.units(cell["cell_id"]).get(name),
                      tolerance=0.0, noise=judge_noise(m, run, ref["cell_id"], run, cell["cell_id"]))
        # At 95% and tolerance 0 by construction, so only ci95 is kept; "before" is the reference cell.
        # The same fields less those a finding has no use for (a subset of the same keys).
        entry = cast(MetricComparison, {k: v for k, v in found.items()
                                        if k not in ("metric", "ci", "level", "tolerance", "verdict")})
        entry["finding"] = CELL_FINDINGS.get(found["verdict"] or "")
        if fld:
            entry["field"] = fld
        results[name] = entry
    return {"reference": {"cell_id": ref["cell_id"], "label": ref["label"]},
            "cell": {"cell_id": cell["cell_id"], "label": cell["label"]},
            "differs_in": _differs(ref, cell), "metrics": results,
            "cases": _changed_cases(run, ref, cell, metrics)}


def _changed_cases(run: RunData, ref: PlannedCell, cell: PlannedCell, metrics: Sequence[str]
                   ) -> list[CaseFinding]:
    """The cases whose own repeats differ between two cells of a run (Fisher's exact test per case, Holm at 5%
    over this pair's cases and metrics), as findings: ``worse`` or ``better`` in ``cell`` than in ``ref``."""
    tests: list[CaseTest] = []
    for m in metrics:
        name = split_metric(m)[0]
        tests += case_tests(name, run.units(ref["cell_id"]).get(name), run.units(cell["cell_id"]).get(name),
                            cell=cell["label"], cell_id=cell["cell_id"])
    return [{"case": c["case"], "metric": c["metric"], "counts": c["counts"], "p_adjusted": c["p_adjusted"],
             "finding": CELL_FINDINGS[c["verdict"]], "test": c["test"]}
            for c in judge_cases(tests, 1 - FAMILY_LEVEL)]


def _differs(a: PlannedCell, b: PlannedCell) -> list[str]:
    keys = list(dict.fromkeys([*a["params"], *b["params"]]))
    return [k for k in keys if canonical(a["params"].get(k)) != canonical(b["params"].get(k))]
