"""Targets compared: at every grid point, each target against the reference target (``compare_to``, else the
first), on the same paired analysis as cells of a run (``regress.compare_cells``: these cases, repeats
random; every case judged on its own), plus the ratio of their costs. summary.json ``target_comparisons``.

Also the runs of ``evalharness compare --match-target A=B``: the cells of target A in one run matched with
those of target B in the other, grid point by grid point.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, cast

from evalharness.fanout import cell_target, grid_point, is_multi, reference_name, target_names
from evalharness.plan import canonical, cell_label
from evalharness.regress import CELL_METRICS, compare_cells
from evalharness.runs import RunData
from evalharness.types import CellSummary, Manifest, PlannedCell, Record, TargetComparison, TargetStatus

#: What targets are compared on: the metrics cells are compared on, with errors and tail latencies, where
#: providers differ most.
METRICS: tuple[str, ...] = (*CELL_METRICS, *(m for m in ("error_rate", "ttft_s.p95") if m not in CELL_METRICS))


def by_point(run: RunData) -> dict[str, dict[str, PlannedCell]]:
    """The run's cells by grid point (canonical params without the target), then by target name."""
    config = run.manifest["config"]
    points: dict[str, dict[str, PlannedCell]] = {}
    for cell in run.cells:
        points.setdefault(canonical(grid_point(cell["params"])), {})[cell_target(cell, config)] = cell
    return points


def _mean_cost(cell: CellSummary | None) -> float | None:
    metric = cell["metrics"].get("cost_per_1k_requests") if cell else None
    value = metric.get("value") if isinstance(metric, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def target_comparisons(run: RunData, cells: list[CellSummary]) -> list[TargetComparison]:
    """Every target against the reference target at each grid point both ran; empty with one target."""
    config = run.manifest["config"]
    if not is_multi(config):
        return []
    reference = reference_name(config)
    present = {cell_target(c, config) for c in run.cells}
    if reference not in present:  # skipped (optional, no key): the first target that ran stands in
        reference = next((n for n in target_names(config) if n in present), reference)
    summaries = {c["cell_id"]: c for c in cells}
    out: list[TargetComparison] = []
    for point in by_point(run).values():
        ref = point.get(reference)
        if ref is None:
            continue
        for name, cell in point.items():
            if name == reference:
                continue
            found = compare_cells(run, ref, cell, METRICS)
            before, after = _mean_cost(summaries.get(ref["cell_id"])), _mean_cost(summaries.get(cell["cell_id"]))
            out.append({**found, "target": name, "reference_target": reference,
                        "point": cell_label(grid_point(cell["params"])),
                        "cost_ratio": after / before if before and after is not None else None})
    return out


#: Requests and errors of each target, by name.
TargetCounts = tuple[Counter[str], Counter[str]]


def target_counts(records: Iterable[Record], config: dict[str, Any]) -> TargetCounts:
    """How many requests each target got and how many failed (a record without ``target``: the first's)."""
    first = target_names(config)[0]
    requests: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for r in records:
        name = r.get("target") or first
        requests[name] += 1
        errors[name] += not r["ok"]
    return requests, errors


def target_statuses(manifest_targets: list[TargetStatus], config: dict[str, Any], cells: list[PlannedCell],
                    counts: TargetCounts) -> list[TargetStatus]:
    """The run's targets as summary.json lists them: how each went, with its cells, requests and errors."""
    requests, errors = counts
    n_cells: Counter[str] = Counter(cell_target(c, config) for c in cells)
    return [{**t, "cells": n_cells[t["name"]], "requests": requests[t["name"]], "errors": errors[t["name"]]}
            for t in manifest_targets]


def matched_run(run: RunData, target: str) -> RunData:
    """``run`` narrowed to the cells of ``target``, their params without the target: what ``compare
    --match-target`` matches with the other run's target, grid point by grid point."""
    config = run.manifest["config"]
    names = target_names(config)
    if target not in names:
        from evalharness.errors import UsageError
        raise UsageError(f"{run.run_dir or run.run_id} has no target {target!r}; its targets are {', '.join(names)}")
    cells: list[PlannedCell] = [{"cell_id": c["cell_id"], "params": grid_point(c["params"]),
                                 "label": cell_label(grid_point(c["params"]))}
                                for c in run.cells if cell_target(c, config) == target]
    ids = {c["cell_id"] for c in cells}
    manifest = {**run.manifest, "plan": {**run.manifest["plan"], "cells": cells}}
    return replace(run, manifest=cast(Manifest, manifest), records=[r for r in run.records if r["cell_id"] in ids],
                   _units={}, _by_cell=None, _cases=None)
