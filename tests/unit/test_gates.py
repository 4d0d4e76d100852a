"""Gates: verdicts per matching cell, percentile fields, run totals, and metrics that cannot be measured."""

from __future__ import annotations

from typing import Any

from evalharness.config import Gate
from evalharness.gates import evaluate_gates

CELLS: list[dict[str, Any]] = [
    {"cell_id": "a", "label": "t=0", "params": {"temperature": 0, "response_format": {"type": "json_object"}},
     "metrics": {"json_valid_rate": {"value": 0.95}, "e2e_s": {"p95": 2.0}}},
    {"cell_id": "b", "label": "t=1", "params": {"temperature": 1, "response_format": None},
     "metrics": {"json_valid_rate": {"value": None, "reason": "n/a"}, "e2e_s": {"p95": 6.0}}},
]


def test_gate_applies_to_matching_cells_only() -> None:
    gate = Gate(metric="json_valid_rate", where={"response_format": {"type": "json_object"}}, min=0.99)
    [verdict] = evaluate_gates([gate], CELLS, {})
    assert verdict["cell_id"] == "a" and verdict["value"] == 0.95 and verdict["passed"] is False


def test_percentile_gate_and_totals_gate() -> None:
    verdicts = evaluate_gates([Gate(metric="e2e_s.p95", max=5.0), Gate(metric="totals.cost", max=1.0)],
                              CELLS, {"cost": 0.4})
    assert [(v["cell_id"], v["passed"]) for v in verdicts] == [("a", True), ("b", False), (None, True)]


def test_gate_on_a_metric_no_cell_measured_fails_with_reason() -> None:
    [verdict] = evaluate_gates([Gate(metric="json_valid_rate", where={"temperature": 1}, min=0.5)], CELLS, {})
    assert verdict["passed"] is False and "no matching cell has a value" in verdict["reason"]
