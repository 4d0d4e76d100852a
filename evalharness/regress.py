"""Regression verdicts: a run against a baseline run, and the cells of one run against each other.

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
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from evalharness.config import Gate
from evalharness.gates import matches_where
from evalharness.plan import canonical
from evalharness.scoring import catalogue
from evalharness.scoring.cases import CASE_TEST_NAME, CASE_TESTED, CaseTest, beyond, case_tests, judge_cases
from evalharness.scoring.catalogue import split_metric
from evalharness.scoring.compare import Change, quantile_ratio, rate_difference, verdict
from evalharness.scoring.metrics import CaseSpec
from evalharness.scoring.paired import (
    COMPARABLE,
    LATENCY_FIELDS,
    Units,
    cell_units,
    pair_units,
    why_unpaired,
)
from evalharness.scoring.suite import (
    POWER_CHANGE,
    repeats_needed,
    stratified_difference,
    stratified_quantile_ratio,
)
from evalharness.store import MANIFEST, SUMMARY, open_run_dir, read_json, read_records

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


@dataclass
class RunData:
    """A stored run, as comparisons need it: cells by params, case specs, and records per cell."""

    run_dir: Path | None
    manifest: dict[str, Any]
    records: list[dict[str, Any]]
    _units: dict[str, dict[str, Units]] = field(default_factory=dict, repr=False)
    _by_cell: dict[str, list[dict[str, Any]]] | None = field(default=None, repr=False)
    _cases: dict[str, CaseSpec] | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", ""))

    @property
    def cells(self) -> list[dict[str, Any]]:
        cells: list[dict[str, Any]] = self.manifest["plan"]["cells"]
        return cells

    def cell_by_params(self) -> dict[str, dict[str, Any]]:
        return {canonical(c["params"]): c for c in self.cells}

    def units(self, cell_id: str) -> dict[str, Units]:
        """The comparison units of one cell (computed once)."""
        if cell_id not in self._units:
            if self._by_cell is None or self._cases is None:
                # Grouped once: a grid of many cells must not scan every record per cell.
                self._by_cell = {}
                for r in self.records:
                    self._by_cell.setdefault(r["cell_id"], []).append(r)
                self._cases = {key: CaseSpec.from_manifest(spec) for key, spec in self.manifest["cases"].items()}
            self._units[cell_id] = cell_units(self._by_cell.get(cell_id, []), self._cases)
        return self._units[cell_id]

    def describe(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir) if self.run_dir else None,
                "path": str(self.run_dir.resolve()) if self.run_dir else None,
                "run_id": self.run_id, "name": self.manifest.get("config", {}).get("name")}


def load_run(path: str | Path) -> RunData:
    """Read a run directory (manifest and records); a folder that is not a run is a usage error."""
    run_dir = open_run_dir(Path(path))
    return RunData(run_dir, read_json(run_dir / MANIFEST), read_records(run_dir, compact=True))


def by_case(units: Units) -> dict[str, list[float]]:
    """A side's units grouped by case (repeat indices dropped: without a seed they pair nothing)."""
    out: dict[str, list[float]] = defaultdict(list)
    for (case, _), value in units.items():
        out[case].append(value)
    return out


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


def judge(metric: str, before: Units | None, after: Units | None, *, tolerance: float | None = None,
          level: float = 0.95, population: Population = "suite") -> dict[str, Any]:
    """One metric's comparison as summary.json and the console show it: the change, its 95% interval,
    the interval at ``level`` behind the verdict, the minimum detectable effect, the verdict, and the
    question and test behind it (``analysis``, ``test``)."""
    name, _ = split_metric(metric)
    spec = COMPARABLE[name]
    if tolerance is None:
        tolerance = RATE_TOLERANCE if spec.kind == "rate" else LATENCY_TOLERANCE
    asked = {"analysis": ANALYSIS[population], "test": TESTS[population, spec.kind]}
    at_95 = measure(metric, before, after, population=population)
    if isinstance(at_95, str):
        return {"metric": metric, "change": None, "verdict": None, "reason": at_95, **asked}
    at_level = at_95 if level == 0.95 else measure(metric, before, after, level=level, population=population)
    assert isinstance(at_level, Change)
    resolution = RATE_RESOLUTION if spec.kind == "rate" else LATENCY_RESOLUTION
    out = {"metric": metric, **at_level.to_json(), "ci95": list(at_95.ci) if at_95.ci else None,
           "higher_is_better": spec.higher_is_better, "tolerance": tolerance,
           "verdict": verdict(at_level, higher_is_better=spec.higher_is_better, tolerance=tolerance,
                              margin=resolution), **asked}
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


def _applicable(before: Units | None, after: Units | None) -> bool:
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
                 population: Population = "suite") -> dict[str, Any]:
    """Every matched cell and metric of ``new`` against ``base``, with verdicts judged together, and every
    case judged on its own (exact tests, Holm across cases, metrics and cells)."""
    base_cells, new_cells = base.cell_by_params(), new.cell_by_params()
    matched = [(base_cells[k], new_cells[k]) for k in new_cells if k in base_cells]
    tolerance = {m: rate_tolerance if COMPARABLE[split_metric(m)[0]].kind == "rate" else latency_tolerance
                 for m in metrics}
    todo = [(b, n, m) for b, n in matched for m in metrics
            if _applicable(base.units(b["cell_id"]).get(split_metric(m)[0]),
                           new.units(n["cell_id"]).get(split_metric(m)[0]))]
    cell_alpha, case_alpha = split_alpha(metrics)
    level = family_level(len(todo), cell_alpha)
    cells = []
    tests: list[CaseTest] = []
    for b, n in matched:
        results = []
        for m in metrics:
            name = split_metric(m)[0]
            before, after = base.units(b["cell_id"]).get(name), new.units(n["cell_id"]).get(name)
            results.append(judge(m, before, after, tolerance=tolerance[m], level=level, population=population))
            tests += case_tests(name, before, after, cell=n["label"], cell_id=n["cell_id"])
        cells.append({"params": n["params"], "label": n["label"], "cell_id": n["cell_id"],
                      "base_cell_id": b["cell_id"], "metrics": results})
    cases = [c for c in judge_cases(tests, case_alpha) if beyond(c, rate_tolerance)]
    counts = Counter(r["verdict"] for c in cells for r in c["metrics"] if r["verdict"])
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


def cell_comparisons(run: RunData, metrics: Sequence[str] = CELL_METRICS) -> list[dict[str, Any]]:
    """Cells of one run against each other, each at 95% (findings to read, not gates): every cell against
    the first, and, for up to 16 cells, every two cells that differ in exactly one grid axis."""
    cells = run.cells
    if len(cells) < 2:
        return []
    pairs = [(cells[0], c) for c in cells[1:]]
    if len(cells) <= AXIS_PAIRS_MAX_CELLS:
        pairs += [(a, b) for a, b in itertools.combinations(cells[1:], 2) if len(_differs(a, b)) == 1]
    out = []
    for ref, cell in pairs:
        results: dict[str, Any] = {}
        for m in metrics:
            name, fld = split_metric(m)
            # Tolerance 0: a finding reports any change the data shows, whatever CI would tolerate.
            found = judge(m, run.units(ref["cell_id"]).get(name), run.units(cell["cell_id"]).get(name),
                          tolerance=0.0)
            # At 95% and tolerance 0 by construction, so only ci95 is kept; "before" is the reference cell.
            entry = {k: v for k, v in found.items() if k not in ("metric", "ci", "level", "tolerance", "verdict")}
            entry["finding"] = CELL_FINDINGS.get(found["verdict"] or "")
            results[name] = entry | ({"field": fld} if fld else {})
        out.append({"reference": {"cell_id": ref["cell_id"], "label": ref["label"]},
                    "cell": {"cell_id": cell["cell_id"], "label": cell["label"]},
                    "differs_in": _differs(ref, cell), "metrics": results})
    return out


def _differs(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = list(dict.fromkeys([*a["params"], *b["params"]]))
    return [k for k in keys if canonical(a["params"].get(k)) != canonical(b["params"].get(k))]


# --- baselines of a run: config gates with `baseline:` and `run --baseline DIR` -------------------------------

@dataclass
class Baselines:
    """The baseline runs a run's gates refer to, loaded: by the gate's ``baseline`` as written, and the
    ``--baseline`` run. None means "previous" found no earlier run."""

    by_spec: dict[str, RunData | None] = field(default_factory=dict)
    cli: RunData | None = None


def baseline_dir(spec: str, folder: Path) -> Path:
    """A gate's ``baseline: DIR``, relative to the config's folder like every path in a config."""
    path = Path(spec).expanduser()
    return path if path.is_absolute() else folder / path


def previous_run(run_dir: Path, manifest: dict[str, Any]) -> Path | None:
    """The latest complete run of the same config that started before this one, beside it in its folder
    (``reports/<name>/``); None when there is none."""
    name = manifest["config"]["name"]
    me = (manifest.get("started_at", ""), run_dir.name)
    found: list[tuple[tuple[str, str], Path]] = []
    for other in run_dir.parent.iterdir() if run_dir.parent.is_dir() else ():
        if other.resolve() == run_dir.resolve() or not (other / SUMMARY).is_file() or not (other / MANIFEST).is_file():
            continue
        try:
            theirs, summary = read_json(other / MANIFEST), read_json(other / SUMMARY)
        except (OSError, ValueError):
            continue
        key = (str(theirs.get("started_at", "")), other.name)
        if theirs.get("config", {}).get("name") == name and summary.get("complete") and key < me:
            found.append((key, other))
    return max(found)[1] if found else None


def load_baselines(manifest: dict[str, Any], run_dir: Path, cli_baseline: str | None) -> Baselines:
    """Load every baseline the run's gates name, and the ``--baseline`` run (I/O at the edge)."""
    out = Baselines()
    # A config given as a mapping has no file, only the folder its paths are relative to (config_dir).
    folder = Path(manifest.get("config_dir") or Path(manifest.get("config_path") or run_dir / "config.yaml").parent)
    for gate in manifest["config"].get("gates", []):
        spec = gate.get("baseline")
        if not spec or spec in out.by_spec:
            continue
        if spec == "previous":
            found = previous_run(run_dir, manifest)
            out.by_spec[spec] = load_run(found) if found else None
        else:
            out.by_spec[spec] = load_run(baseline_dir(spec, folder))
    if cli_baseline:
        out.cli = load_run(cli_baseline)
    return out


@dataclass(frozen=True)
class _Job:
    entry: dict[str, Any]
    baseline: RunData
    before: Units | None
    after: Units | None
    metric: str
    tolerance: float
    required: bool  # a config gate must be measurable; --baseline skips metrics that do not apply
    population: Population


def stored_baseline(summary: dict[str, Any]) -> str | None:
    """The ``--baseline`` run a stored summary was judged against, if that folder still holds a run:
    ``evalharness report`` judges against it again (a baseline deleted since is left out)."""
    path = (summary.get("baseline") or {}).get("path")
    return str(path) if path and (Path(path) / MANIFEST).is_file() else None


def baseline_verdicts(gates: Sequence[Gate], run: RunData, baselines: Baselines,
                      population: Population = "suite") -> list[dict[str, Any]]:
    """Gate verdicts against baselines: per baseline gate and matching cell, and per cell and default
    metric for ``--baseline`` (asked with ``population``). All of them are judged together (one family,
    see the module docstring), and so are the per-case exact tests behind them: a case that regressed is
    a failing verdict of its own, named by suite/id with its counts.

    A regressed verdict fails; improved, unchanged and inconclusive pass (inconclusive says how big a change
    the run could have seen). A gate that cannot be measured fails, as plain gates do, except that
    ``baseline: previous`` passes when there is no earlier run yet (the first run of a config).
    """
    jobs: list[_Job] = []
    verdicts: list[dict[str, Any]] = []

    def add(entry: dict[str, Any], baseline: RunData, where: dict[str, Any], metrics: Sequence[str],
            tolerance: float | None, required: bool, asked: Population) -> None:
        matched = _matched_cells(baseline, run, where)
        if not matched:
            verdicts.append({**entry, "cell_id": None, "value": None, "verdict": None, "passed": False,
                             "reason": f"no cell{' matching where' if where else ''} has the same params as a "
                                       f"cell of baseline {baseline.run_id}"})
        for (b, n), metric in itertools.product(matched, metrics):
            name = split_metric(metric)[0]
            tol = tolerance if tolerance is not None else (
                RATE_TOLERANCE if COMPARABLE[name].kind == "rate" else LATENCY_TOLERANCE)
            jobs.append(_Job({**entry, "metric": metric, "cell_id": n["cell_id"], "label": n["label"],
                              "baseline_run_id": baseline.run_id},
                             baseline, baseline.units(b["cell_id"]).get(name), run.units(n["cell_id"]).get(name),
                             metric, tol, required, asked))

    for gate in gates:
        if gate.baseline is None:
            continue
        entry = {"metric": gate.metric, "where": gate.where, "min": None, "max": None, "baseline": gate.baseline,
                 "max_drop": gate.max_drop, "max_rise": gate.max_rise, "population": gate.population}
        baseline = baselines.by_spec.get(gate.baseline)
        if baseline is None:
            verdicts.append({**entry, "cell_id": None, "value": None, "verdict": None, "passed": True,
                             "reason": "no earlier complete run of this config to compare with"})
            continue
        add(entry, baseline, gate.where, [gate.metric],
            gate.max_drop if gate.max_drop is not None else gate.max_rise, required=True, asked=gate.population)
    if baselines.cli is not None:
        entry = {"metric": "*", "where": {}, "min": None, "max": None, "baseline": str(baselines.cli.run_dir),
                 "max_drop": None, "max_rise": None, "population": population}
        add(entry, baselines.cli, {}, DEFAULT_METRICS, None, required=False, asked=population)

    measurable = [_applicable(j.before, j.after) for j in jobs]
    cell_alpha, case_alpha = split_alpha([j.metric for j in jobs])
    level = family_level(sum(measurable), cell_alpha)
    tests: list[tuple[_Job, CaseTest]] = []
    for job, can in zip(jobs, measurable, strict=True):
        if not can and not job.required:
            continue
        found = judge(job.metric, job.before, job.after, tolerance=job.tolerance, level=level,
                      population=job.population)
        extra = {k: v for k, v in found.items() if k not in ("metric", "tolerance")}
        verdicts.append({**job.entry, "value": found.get("after"), "tolerance": job.tolerance, **extra,
                         "passed": found["verdict"] not in ("regressed", None),
                         "reason": _explain(found, job.baseline.run_id)})
        tests += [(job, t) for t in case_tests(split_metric(job.metric)[0], job.before, job.after,
                                               cell=job.entry["label"], cell_id=job.entry["cell_id"],
                                               against=job.baseline.run_id)]
    # The same case of the same cell may be tested by a config gate and by --baseline: it counts once.
    owner = {(t.metric, t.cell_id, t.case, t.against): (job, t) for job, t in tests}
    for case in judge_cases([t for _, t in owner.values()], case_alpha):
        job, _ = owner[case["metric"], case["cell_id"], case["case"], case["against"]]
        if case["verdict"] != "regressed" or not beyond(case, job.tolerance):
            continue
        verdicts.append({**job.entry, "metric": case["metric"], "case": case["case"],
                         "value": case["after"]["count"] / case["after"]["n"], "verdict": "regressed",
                         "passed": False, "case_verdict": case, "analysis": case["analysis"],
                         "test": CASE_TEST_NAME,
                         "reason": f"case {case['case']} regressed against {job.baseline.run_id}: "
                                   f"{case['counts']} ({CASE_TEST_NAME}, p = {case['p_adjusted']:.2g})"})
    return verdicts


def _matched_cells(baseline: RunData, run: RunData, where: dict[str, Any]
                   ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    theirs = baseline.cell_by_params()
    defaults = run.manifest["config"].get("defaults")
    return [(theirs[canonical(c["params"])], c) for c in run.cells
            if canonical(c["params"]) in theirs and matches_where(c["params"], where, defaults)]


def _explain(found: dict[str, Any], baseline_id: str) -> str:
    if found["verdict"] is None:
        return f"not compared: {found['reason']}"
    before, after, change, interval = describe_change(found)
    text = (f"{found['verdict']} against {baseline_id} ({found.get('analysis', 'this suite')}): {before} → {after}, "
            f"change {change} ({100 * found['level']:.3g}% interval {interval}; tolerance {found['tolerance']:g})")
    if found["verdict"] == "inconclusive":
        text += "; " + too_small(found)
    return text


def too_small(found: dict[str, Any]) -> str:
    """Why an inconclusive verdict is one: the run's minimum detectable effect, or the missing interval."""
    mde = found.get("mde")
    if mde is None:
        return str(found.get("reason", "no interval"))
    size = f"{100 * mde:.1f} pts" if found["kind"] == "difference" else f"{100 * mde:.0f}%"
    text = f"min. detectable {size}"
    power = found.get("power")
    if power and mde > power["change"]:
        unit, count = next((k, v) for k, v in power.items() if k != "change")
        text += f"; {count} {unit} would detect {100 * power['change']:.0f} pts"
    return text


def describe_change(r: dict[str, Any]) -> tuple[str, str, str, str]:
    """(before, after, change, interval) of a comparison as people read them: rates in % and points,
    latency in seconds and as a ratio."""
    ci = r.get("ci") or r.get("ci95")
    if r["kind"] == "difference":
        interval = f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}] pts" if ci else "–"
        return _pct(r["before"]), _pct(r["after"]), f"{100 * r['change']:+.1f} pts", interval
    interval = f"[×{ci[0]:.2f}, ×{ci[1]:.2f}]" if ci else "–"
    seconds = r.get("metric", "").partition(".")[0].endswith("_s")
    ratio = "–" if r.get("change") is None else f"×{r['change']:.2f}"
    return ((_secs(r["before"]), _secs(r["after"])) if seconds else (f"{r['before']:.3g}", f"{r['after']:.3g}")) + (
        ratio, interval)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _secs(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
