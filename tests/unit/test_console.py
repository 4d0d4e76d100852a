"""What `evalharness run` prints at the end: gates folded when they all pass, failures named one by one."""

from __future__ import annotations

from typing import Any

from evalharness.console import format_outcome


def summary(gates: list[dict[str, Any]], usage: int) -> dict[str, Any]:
    cell = {"cell_id": "c1", "label": "temperature=0", "params": {"temperature": 0}, "n": 2,
            "metrics": {"pass_rate": {"value": 1.0, "ci95": [0.34, 1.0], "n": 2}}}
    return {"cells": [cell, {**cell, "cell_id": "c2", "label": "temperature=1"}], "gates": gates,
            "complete": True, "passed": all(g["passed"] for g in gates),
            "totals": {"requests": 4, "planned": 4, "errors": 0, "errors_by_kind": {}, "prompt_tokens": 10,
                       "completion_tokens": 5, "cost": 0.0, "currency": "CNY", "usage_reported": usage}}


def gate(cell: str, passed: bool, value: float) -> dict[str, Any]:
    return {"metric": "e2e_s.p95", "min": None, "max": 1.0, "where": {}, "cell_id": cell, "label": cell,
            "value": value, "passed": passed}


def test_gates_that_pass_everywhere_are_one_line_and_failures_are_named() -> None:
    text = format_outcome(summary([gate("c1", True, 0.5), gate("c2", True, 0.7)], usage=4), "run", [])
    assert "gate pass: e2e_s.p95 (want <= 1.0) in all 2 cells it applies to" in text
    text = format_outcome(summary([gate("c1", True, 0.5), gate("c2", False, 1.7)], usage=4), "run", [])
    assert "gate FAIL: e2e_s.p95 [c2] = 1.7 (want <= 1.0)" in text and "gate pass: e2e_s.p95 [c1]" in text
    assert text.endswith("FAILED")


def test_tokens_say_when_the_server_reported_none() -> None:
    assert "15 tokens, cost 0.000000 CNY" in format_outcome(summary([], usage=4), "run", [])
    assert "tokens and cost not reported by the server" in format_outcome(summary([], usage=0), "run", [])


def test_best_setting_says_when_it_is_not_clearly_better() -> None:
    text = format_outcome(summary([], usage=4), "run", [])
    assert "Best setting: temperature=0 (pass rate 100.0%) — not clearly better: 1 other setting(s)" in text
