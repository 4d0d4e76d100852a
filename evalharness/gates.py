"""Gates: pass/fail rules from the config, evaluated on a summary. They decide the exit code.

Baseline gates (``baseline: DIR | previous``) compare with another run; they are in ``baselines.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evalharness.config import Gate
from evalharness.params import merge_params
from evalharness.types import Capacity, CellSummary, FailingCase, GateVerdict, Metrics, Totals


def metric_value(metrics: Metrics, path: str) -> float | None:
    """``json_valid_rate`` -> its value; ``e2e_s.p95`` -> that field of the metric object."""
    name, _, field = path.partition(".")
    metric = metrics.get(name)
    if not isinstance(metric, dict):
        return None
    value = metric.get(field or "value")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def matches_where(cell_params: dict[str, Any], where: dict[str, Any], defaults: dict[str, Any] | None) -> bool:
    """A gate's ``where`` holds for a cell: every key equals the cell's effective value (null: not sent).

    A cell's params hold only its grid axes; its requests carry the config's defaults overlaid by them (an
    axis set to null removes a default), and that is what ``where`` matches. Per-case params do not count:
    a cell holds every case.
    """
    params = merge_params(defaults or {}, cell_params)
    return all(params.get(key) == value for key, value in where.items())


def _verdict(gate: Gate, value: float) -> bool:
    return (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)


#: Each case's (successes, samples) of a rate in a cell: ``case_counts(cell_id, metric)``.
CaseCounts = Callable[[str, str], dict[str, tuple[int, int]]]
#: Failing cases a verdict's reason names; summary.json lists them all.
REASON_CASES = 5


def per_case_verdict(gate: Gate, counts: dict[str, tuple[int, int]]) -> GateVerdict | None:
    """A ``per_case`` gate in one cell: each case's share judged on its own; None when no case has a sample.

    ``value`` is the lowest share of any case (the highest, for a gate with only a max), so it fails exactly
    when some case does; ``failing_cases`` lists them, worst first, with their counts.
    """
    shares = {case: (s, n) for case, (s, n) in counts.items() if n}
    if not shares:
        return None
    low_is_bad = gate.min is not None
    # Worst first; sorted by name before, so cases equally far out keep a stable order.
    outside = sorted(((case, s, n) for case, (s, n) in sorted(shares.items()) if not _verdict(gate, s / n)),
                     key=lambda c: c[1] / c[2] if low_is_bad else -c[1] / c[2])
    failing: list[FailingCase] = [{"case": case, "successes": s, "n": n, "value": s / n} for case, s, n in outside]
    values = [s / n for s, n in shares.values()]
    out: GateVerdict = {"value": min(values) if low_is_bad else max(values), "passed": not failing,
                           "failing_cases": failing, "cases_checked": len(shares)}
    if failing:
        named = ", ".join(f"{c['case']} {c['successes']}/{c['n']}" for c in failing[:REASON_CASES])
        more = f" and {len(failing) - REASON_CASES} more" if len(failing) > REASON_CASES else ""
        out["reason"] = f"{len(failing)} of {len(shares)} cases outside the bound: {named}{more}"
    return out


def metric_n(metrics: Metrics, path: str) -> int | None:
    """How many samples a metric was measured on (its ``n``), where the summary says."""
    metric = metrics.get(path.partition(".")[0])
    n = metric.get("n") if isinstance(metric, dict) else None
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def judge_sample(gate: Gate, found: GateVerdict, cell: CellSummary, planned: int | None) -> GateVerdict:
    """Say the sample a cell verdict stands on: its ``n``, and a ``note`` when requests the cell planned
    failed or were never sent (the verdict then stands on part of the plan); a sample smaller than the gate's
    ``min_n`` fails the verdict whatever its value."""
    n = found.get("n")
    out: GateVerdict = {**found, "planned": planned}
    if n is None:
        return out
    errors = int((cell["metrics"].get("errors") or {}).get("value") or 0)
    unsent = max(0, (planned or 0) - int(cell.get("n") or 0))
    if errors or unsent:
        lost = " and ".join(part for part in (f"{errors} failed" if errors else "",
                                              f"{unsent} were not sent" if unsent else "") if part)
        out["note"] = f"measured on n={n}: of the cell's {planned} planned requests {lost}"
    if gate.min_n is not None and n < gate.min_n:
        out["passed"] = False
        out["reason"] = f"measured on n={n}, fewer than min_n={gate.min_n}"
    return out


def evaluate_gates(gates: list[Gate], cells: list[CellSummary], totals: Totals, *,
                   defaults: dict[str, Any] | None = None, case_counts: CaseCounts | None = None,
                   planned: int | None = None, capacity: list[Capacity] | None = None) -> list[GateVerdict]:
    """One verdict per gate and matching cell (or one for a ``totals.*`` gate), each with ``gate``: the gate's
    index in ``gates`` (the config's list, baseline gates included and skipped here).

    ``defaults`` are the config's, for matching ``where``; ``case_counts`` gives ``per_case`` gates the
    counts of each case in a cell (without it they cannot be judged and fail); ``planned`` is the requests
    planned per cell, against which each verdict's ``n`` is set; ``capacity`` is a load run's capacity search,
    which a ``capacity.max_rate`` gate bounds per grid point.
    """
    verdicts: list[GateVerdict] = []
    for index, gate in enumerate(gates):
        if gate.baseline is not None:  # judged against another run, in baselines.baseline_verdicts
            continue
        base: GateVerdict = {"gate": index, "metric": gate.metric, "min": gate.min, "max": gate.max,
                             "where": gate.where, "per_case": gate.per_case, "min_n": gate.min_n}
        if gate.metric.startswith("totals."):
            value = totals.get(gate.metric.removeprefix("totals."))
            if not isinstance(value, (int, float)):
                verdicts.append({**base, "cell_id": None, "value": None, "passed": False,
                                 "reason": f"{gate.metric} is not a run total"})
            else:
                verdicts.append({**base, "cell_id": None, "value": value, "passed": _verdict(gate, value)})
            continue
        if gate.metric == "capacity.max_rate":
            verdicts += capacity_verdicts(gate, base, capacity or [], defaults)
            continue
        matched = [c for c in cells if matches_where(c["params"], gate.where, defaults)]
        measured = 0
        for cell in matched:
            found = _cell_verdict(gate, cell, case_counts)
            if found is None:
                continue
            measured += 1
            verdicts.append({**base, "cell_id": cell["cell_id"], "label": cell["label"],
                             **judge_sample(gate, found, cell, planned)})
        if not measured:
            reason = ("no cell matches where" if not matched else
                      f"no matching cell has a value for {gate.metric}")
            verdicts.append({**base, "cell_id": None, "value": None, "passed": False, "reason": reason})
    return verdicts


def capacity_verdicts(gate: Gate, base: GateVerdict, capacity: list[Capacity],
                      defaults: dict[str, Any] | None) -> list[GateVerdict]:
    """A ``capacity.max_rate`` gate: one verdict per grid point ``where`` matches; no rate found fails."""
    from evalharness.plan import cell_label  # the plan reads gates (fanout); a label is all this needs

    out: list[GateVerdict] = []
    for found in capacity:
        if not matches_where(found["params"], gate.where, defaults):
            continue
        value = found["max_rate"]
        label = cell_label(found["params"])
        if value is None:
            out.append({**base, "cell_id": None, "label": label, "value": None, "passed": False,
                        "reason": found["reason"]})
        else:
            out.append({**base, "cell_id": None, "label": label, "value": value, "passed": _verdict(gate, value)})
    return out or [{**base, "cell_id": None, "value": None, "passed": False,
                    "reason": "no grid point matches where" if capacity else "no capacity search in this run"}]


def _cell_verdict(gate: Gate, cell: CellSummary, case_counts: CaseCounts | None) -> GateVerdict | None:
    if gate.per_case:
        counts = case_counts(cell["cell_id"], gate.metric) if case_counts else None
        found = per_case_verdict(gate, counts) if counts is not None else None
        return None if found is None or counts is None else {**found, "n": sum(n for _, n in counts.values())}
    value = metric_value(cell["metrics"], gate.metric)
    if value is None:
        return None
    return {"value": value, "passed": _verdict(gate, value), "n": metric_n(cell["metrics"], gate.metric)}
