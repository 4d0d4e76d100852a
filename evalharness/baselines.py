"""Baselines of a run: config gates with ``baseline: DIR | previous`` and ``run --baseline DIR``.

Which earlier run a gate means (``previous`` is the latest complete run of the same config beside this one),
loading them, and the gate verdicts against them: every baseline gate and matching cell, and every cell and
default metric of ``--baseline``, judged together with the per-case exact tests behind them
(``regress.py`` has the statistics and the family's error rate).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from evalharness.config import Gate
from evalharness.fanout import gate_defaults
from evalharness.gates import matches_where
from evalharness.plan import canonical
from evalharness.regress import (
    DEFAULT_METRICS,
    LATENCY_TOLERANCE,
    RATE_TOLERANCE,
    Population,
    applicable,
    family_level,
    judge,
    judge_noise,
    split_alpha,
)
from evalharness.runs import RunData, load_run
from evalharness.scoring.cases import CASE_TEST_NAME, CaseTest, beyond, case_tests, judge_cases
from evalharness.scoring.catalogue import split_metric
from evalharness.scoring.paired import COMPARABLE, Units
from evalharness.store import MANIFEST, SUMMARY, read_json
from evalharness.types import GateVerdict, Manifest, MetricComparison, PlannedCell, Summary
from evalharness.wording import describe_change, too_small


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


def previous_run(run_dir: Path, manifest: Manifest) -> Path | None:
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


def load_baselines(manifest: Manifest, run_dir: Path, cli_baseline: str | None) -> Baselines:
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
    entry: GateVerdict
    baseline: RunData
    before: Units | None
    after: Units | None
    metric: str
    tolerance: float
    required: bool  # a config gate must be measurable; --baseline skips metrics that do not apply
    population: Population
    noise: float = 0.0  # the judges' own disagreement, for a rate they decide (regress.judge_noise)


def stored_baseline(summary: Summary) -> str | None:
    """The ``--baseline`` run a stored summary was judged against, if that folder still holds a run:
    ``evalharness report`` judges against it again (a baseline deleted since is left out)."""
    path = (summary.get("baseline") or {}).get("path")
    return str(path) if path and (Path(path) / MANIFEST).is_file() else None


def baseline_verdicts(gates: Sequence[Gate], run: RunData, baselines: Baselines,
                      population: Population = "suite") -> list[GateVerdict]:
    """Gate verdicts against baselines: per baseline gate and matching cell, and per cell and default
    metric for ``--baseline`` (asked with ``population``). All of them are judged together (one family,
    see the module docstring), and so are the per-case exact tests behind them: a case that regressed is
    a failing verdict of its own, named by suite/id with its counts.

    Each verdict's ``gate`` is its gate's index in ``gates`` (the config's list); None for ``--baseline``.

    A regressed verdict fails; improved, unchanged and inconclusive pass (inconclusive says how big a change
    the run could have seen). A gate that cannot be measured fails, as plain gates do, except that
    ``baseline: previous`` passes when there is no earlier run yet (the first run of a config).
    """
    jobs: list[_Job] = []
    verdicts: list[GateVerdict] = []

    def add(entry: GateVerdict, baseline: RunData, where: dict[str, Any], metrics: Sequence[str],
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
                             metric, tol, required, asked,
                             judge_noise(metric, baseline, b["cell_id"], run, n["cell_id"])))

    for index, gate in enumerate(gates):
        if gate.baseline is None:
            continue
        entry: GateVerdict = {"gate": index, "metric": gate.metric, "where": gate.where, "min": None, "max": None,
                              "baseline": gate.baseline, "max_drop": gate.max_drop, "max_rise": gate.max_rise,
                              "population": gate.population}
        baseline = baselines.by_spec.get(gate.baseline)
        if baseline is None:
            verdicts.append({**entry, "cell_id": None, "value": None, "verdict": None, "passed": True,
                             "reason": "no earlier complete run of this config to compare with"})
            continue
        add(entry, baseline, gate.where, [gate.metric],
            gate.max_drop if gate.max_drop is not None else gate.max_rise, required=True, asked=gate.population)
    if baselines.cli is not None:
        cli_entry: GateVerdict = {"gate": None, "metric": "*", "where": {}, "min": None, "max": None,
                                  "baseline": str(baselines.cli.run_dir), "max_drop": None, "max_rise": None,
                                  "population": population}
        add(cli_entry, baselines.cli, {}, DEFAULT_METRICS, None, required=False, asked=population)

    measurable = [applicable(j.before, j.after) for j in jobs]
    cell_alpha, case_alpha = split_alpha([j.metric for j in jobs])
    level = family_level(sum(measurable), cell_alpha)
    tests: list[tuple[_Job, CaseTest]] = []
    for job, can in zip(jobs, measurable, strict=True):
        if not can and not job.required:
            continue
        found = judge(job.metric, job.before, job.after, tolerance=job.tolerance, level=level,
                      population=job.population, noise=job.noise)
        extra = cast(GateVerdict, {k: v for k, v in found.items() if k not in ("metric", "tolerance")})
        verdicts.append({**job.entry, "value": found.get("after"), "tolerance": job.tolerance, **extra,
                         "passed": found["verdict"] not in ("regressed", None),
                         "reason": _explain(found, job.baseline.run_id)})
        tests += [(job, t) for t in case_tests(split_metric(job.metric)[0], job.before, job.after,
                                               cell=job.entry["label"], cell_id=job.entry.get("cell_id") or "",
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
                   ) -> list[tuple[PlannedCell, PlannedCell]]:
    theirs = baseline.cell_by_params()
    defaults = gate_defaults(run.manifest["config"])
    return [(theirs[canonical(c["params"])], c) for c in run.cells
            if canonical(c["params"]) in theirs and matches_where(c["params"], where, defaults)]


def _explain(found: MetricComparison, baseline_id: str) -> str:
    if found["verdict"] is None:
        return f"not compared: {found['reason']}"
    before, after, change, interval = describe_change(found)
    text = (f"{found['verdict']} against {baseline_id} ({found.get('analysis', 'this suite')}): {before} → {after}, "
            f"change {change} ({100 * found['level']:.3g}% interval {interval}; tolerance {found['tolerance']:g})")
    if found["verdict"] == "inconclusive":
        text += "; " + too_small(found)
    return text
