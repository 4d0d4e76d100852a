"""Gates: pass/fail rules from the config, evaluated on a summary. They decide the exit code.

Baseline gates (``baseline: DIR | previous``) compare with another run; they are in ``regress.py``.
"""

from __future__ import annotations

from typing import Any

from evalharness.config import Gate


def metric_value(metrics: dict[str, Any], path: str) -> float | None:
    """``json_valid_rate`` -> its value; ``e2e_s.p95`` -> that field of the metric object."""
    name, _, field = path.partition(".")
    metric = metrics.get(name)
    if not isinstance(metric, dict):
        return None
    value = metric.get(field or "value")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _matches(params: dict[str, Any], where: dict[str, Any]) -> bool:
    return all(params.get(key) == value for key, value in where.items())


def _verdict(gate: Gate, value: float) -> bool:
    return (gate.min is None or value >= gate.min) and (gate.max is None or value <= gate.max)


def evaluate_gates(gates: list[Gate], cells: list[dict[str, Any]], totals: dict[str, Any]
                   ) -> list[dict[str, Any]]:
    """One verdict per gate and matching cell (or one for a ``totals.*`` gate)."""
    verdicts: list[dict[str, Any]] = []
    for gate in gates:
        if gate.baseline is not None:  # judged against another run, in regress.baseline_verdicts
            continue
        base = {"metric": gate.metric, "min": gate.min, "max": gate.max, "where": gate.where}
        if gate.metric.startswith("totals."):
            value = totals.get(gate.metric.removeprefix("totals."))
            if not isinstance(value, (int, float)):
                verdicts.append({**base, "cell_id": None, "value": None, "passed": False,
                                 "reason": f"{gate.metric} is not a run total"})
            else:
                verdicts.append({**base, "cell_id": None, "value": value, "passed": _verdict(gate, value)})
            continue
        matched = [c for c in cells if _matches(c["params"], gate.where)]
        measured = 0
        for cell in matched:
            value = metric_value(cell["metrics"], gate.metric)
            if value is None:
                continue
            measured += 1
            verdicts.append({**base, "cell_id": cell["cell_id"], "label": cell["label"], "value": value,
                             "passed": _verdict(gate, value)})
        if not measured:
            reason = ("no cell matches where" if not matched else
                      f"no matching cell has a value for {gate.metric}")
            verdicts.append({**base, "cell_id": None, "value": None, "passed": False, "reason": reason})
    return verdicts
