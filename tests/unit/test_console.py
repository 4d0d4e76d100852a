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


def test_a_setting_whose_requests_mostly_failed_is_never_best() -> None:
    base = summary([], usage=4)
    good, broken = base["cells"]
    # The broken setting's one answer passed; its other 9 requests failed. The other passes 60%.
    base["cells"] = [{**good, "n": 10, "metrics": {"pass_rate": {"value": 0.6, "ci95": [0.3, 0.85], "n": 10},
                                                  "errors": {"value": 0}}},
                     {**broken, "n": 10, "metrics": {"pass_rate": {"value": 1.0, "ci95": [0.2, 1.0], "n": 1},
                                                    "errors": {"value": 9}}}]
    assert "Best setting: temperature=0 (pass rate 60.0%)" in format_outcome(base, "run", [])
    base["cells"] = [base["cells"][1], {**base["cells"][1], "cell_id": "c3", "label": "temperature=2"}]
    assert "Best setting" not in format_outcome(base, "run", [])


def test_with_one_setting_there_is_no_best_setting_line() -> None:
    base = summary([], usage=4)
    base["cells"] = base["cells"][:1]
    assert "Best setting" not in format_outcome(base, "run", [])


def test_a_gate_that_passed_on_a_sliver_shows_its_n_and_is_not_folded() -> None:
    full = {**gate("c1", True, 1.0), "n": 48, "planned": 48}
    sliver = {**gate("c2", True, 1.0), "n": 1, "planned": 48, "note": "measured on n=1: …"}
    text = format_outcome(summary([full, sliver], usage=4), "run", [])
    assert "gate pass: e2e_s.p95 [c2] = 1 (n=1 of 48 planned) (want <= 1.0)" in text
    assert "gate pass: e2e_s.p95 [c1] = 1 (n=48) (want <= 1.0)" in text
