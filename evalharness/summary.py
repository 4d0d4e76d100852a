"""summary.json: per-cell metrics, totals and gate verdicts, computed only from the stored records."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt

from evalharness.baselines import Baselines, baseline_verdicts
from evalharness.config import Gate
from evalharness.crosstarget import TargetCounts, target_comparisons, target_counts, target_statuses
from evalharness.fanout import gate_defaults
from evalharness.gates import evaluate_gates
from evalharness.load.metrics import capacity, determinism_notes, run_throughput
from evalharness.regress import Population, cell_comparisons
from evalharness.report.view import run_time
from evalharness.runs import RunData
from evalharness.scoring.metrics import CaseSpec, case_counts, cell_metrics
from evalharness.scoring.tally import check_tallies, own_checks
from evalharness.types import CellSummary, Manifest, PlannedCell, Record, Summary, Totals
from evalharness.usage import SERVER, UsageSource, cached_tokens, source_marks, source_of, usage_check


def _totals_source(sources: list[tuple[UsageSource | None, bool]]) -> str | None:
    """``server``, ``counted`` or ``mixed`` for the run's token totals (from each record's ``source_of``);
    None when no record has usage."""
    if not any(source for source, _ in sources):
        return None
    return str(source_marks(sources).get("source", SERVER))


def build_summary(manifest: Manifest, records: list[Record], *, complete: bool,
                  stop_reason: str | None = None, gates_enabled: bool = True,
                  baselines: Baselines | None = None, population: Population = "suite") -> Summary:
    """The summary of a run. ``complete`` is False when the run stopped before its plan was done.

    ``baselines`` holds the runs that baseline gates and ``run --baseline`` compare with, already loaded;
    ``population`` is the question ``run --baseline`` asks (gates say their own).
    """
    cases = {key: CaseSpec.from_manifest(spec) for key, spec in manifest["cases"].items()}
    by_cell: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        # A load level's warm-up requests are stored, and left out of its figures, gates and comparisons.
        if not record.get("warmup"):
            by_cell[record["cell_id"]].append(record)
    cells = [cell_summary(manifest, cell, by_cell.get(cell["cell_id"], []), cases)
             for cell in manifest["plan"]["cells"]]
    run = RunData(None, manifest, records, _by_cell=dict(by_cell), _cases=cases)
    counted: dict[str, dict[str, dict[str, tuple[int, int]]]] = {}

    def counts(cell_id: str, metric: str) -> dict[str, tuple[int, int]]:
        if cell_id not in counted:  # only cells a per_case gate matches are counted
            counted[cell_id] = case_counts(by_cell.get(cell_id, []), cases)
        return counted[cell_id].get(metric, {})

    totals = run_totals(manifest, records)
    totals.update(run_throughput(records, run_time(records)))
    return assemble(manifest, cells, totals, run, counts, complete=complete,
                    stop_reason=stop_reason, gates_enabled=gates_enabled, baselines=baselines,
                    population=population, cases=cases, by_target=target_counts(records, manifest["config"]))


def _slo(manifest: Manifest) -> dict[str, float] | None:
    load = manifest["config"].get("load")
    return {k: v for k, v in load["slo"].items() if v is not None} if load else None


def cell_summary(manifest: Manifest, cell: PlannedCell, rows: list[Record], cases: dict[str, CaseSpec], *,
                 counts: dict[str, dict[str, tuple[int, int]]] | None = None,
                 latencies: Mapping[str, npt.NDArray[np.float64]] | None = None) -> CellSummary:
    """One cell of summary.json from that cell's records (warm-up records already left out); ``counts`` and
    ``latencies``: see ``cell_metrics``."""
    # Unset pass_k (and runs made before it existed): the repeats.
    pass_k = manifest["config"].get("pass_k") or manifest["plan"].get("repeats")
    return {"cell_id": cell["cell_id"], "label": cell["label"], "params": cell["params"], "n": len(rows),
            "metrics": cell_metrics(rows, cases, stream=bool(manifest["config"]["run"]["stream"]),
                                    currency=manifest["config"]["pricing"]["currency"], pass_k=pass_k,
                                    slo=_slo(manifest), counts=counts, latencies=latencies),
            "checks": check_tallies(rows, cases)}


def run_totals(manifest: Manifest, records: list[Record]) -> Totals:
    """summary.json's ``totals`` of these records (the run's duration and throughput are added apart: they
    need the run's whole time window)."""
    usages = [r.get("usage") or {} for r in records]
    sources = [source_of(r) for r in records]
    return {
        "requests": len(records),
        "planned": manifest["plan"]["requests"],
        "errors": sum(not r["ok"] for r in records),
        "prompt_tokens": sum(u.get("prompt_tokens") or 0 for u in usages),
        "completion_tokens": sum(u.get("completion_tokens") or 0 for u in usages),
        "cost": math.fsum(r.get("cost") or 0.0 for r in records),  # exactly rounded: the same in any order
        "usage_reported": sum(bool(u) for u in usages),
        # Where the token and cost totals came from: see usage.source_fields (no mark: the server's usage).
        "usage_source": _totals_source(sources),
        "usage_sources": dict(Counter(source or "none" for source, _ in sources)),
        "prompt_tokens_estimated": any(estimated for _, estimated in sources),
        # Reported usage against the model server's tokenizer on a sample: a gateway's estimate is said as such.
        "usage_check": usage_check(records),
        "cached_tokens": sum(cached_tokens(u) or 0 for u in usages),
        "cached_saving": math.fsum(r.get("cached_saving") or 0.0 for r in records),
        "currency": manifest["config"]["pricing"]["currency"],
        "errors_by_kind": dict(Counter(r["error_kind"] or "unknown" for r in records if not r["ok"])),
    }


def assemble(manifest: Manifest, cells: list[CellSummary], totals: Totals, run: RunData,
             counts: Callable[[str, str], dict[str, tuple[int, int]]], *, complete: bool,
             stop_reason: str | None, gates_enabled: bool, baselines: Baselines | None, population: Population,
             cases: dict[str, CaseSpec], by_target: TargetCounts) -> Summary:
    """summary.json from its cells and totals: gate verdicts, comparisons (``run`` gives each cell's units,
    ``counts`` each cell's per-case counts of a rate), targets (``by_target``: requests and errors of each)."""
    gates = [Gate.model_validate(g) for g in manifest["config"].get("gates", [])] if gates_enabled else []
    load = manifest["config"].get("load")
    found = capacity(cells, float(load["search"]["slo_attainment"])) if load and load.get("search") else None
    verdicts = evaluate_gates(gates, cells, totals,
                              defaults=gate_defaults(manifest["config"]), case_counts=counts,
                              # A load run's levels plan different numbers of requests (and of warm-up).
                              planned=None if load else manifest["plan"]["requests"] // max(1, len(cells)) or None,
                              capacity=found)
    if gates_enabled:
        verdicts += baseline_verdicts(gates, run, baselines or Baselines(), population)
    summary: Summary = {
        "run_id": manifest["run_id"],
        "name": manifest["config"]["name"],
        "target": manifest["target"],
        "started_at": manifest["started_at"],
        "complete": complete,
        "stop_reason": stop_reason,
        "passed": complete and all(v["passed"] for v in verdicts),
        "totals": totals,
        "cells": cells,
        "comparisons": cell_comparisons(run),
        "baseline": baselines.cli.describe() | {"population": population} if baselines and baselines.cli else None,
        "gates": verdicts,
        # Checks of the cases' own (file or name): where each is, and whether it was found again as it was.
        "checks": own_checks(cases),
        # Every target and how it went; each against the reference target per grid point (crosstarget.py).
        "targets": target_statuses(manifest.get("targets") or [], manifest["config"], manifest["plan"]["cells"],
                                   by_target),
        "target_comparisons": target_comparisons(run, cells),
    }
    if load:
        summary["load_notes"] = determinism_notes(cells, manifest["config"].get("defaults"))
    if found is not None:
        summary["capacity"] = found
    return summary
