"""Per-case gates and ``where`` on effective params: verdicts, config errors, and the summary they end in."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evalharness.baselines import Baselines, baseline_verdicts
from evalharness.config import Gate, load_config
from evalharness.errors import ConfigError
from evalharness.gates import evaluate_gates
from evalharness.plan import make_cells
from evalharness.runs import RunData
from evalharness.summary import build_summary

COUNTS = {"s/steady": (10, 10), "s/flaky": (7, 10), "s/broken": (0, 10)}
CELL = {"cell_id": "c", "label": "temperature=1", "params": {"temperature": 1},
        "metrics": {"pass_rate": {"value": 17 / 30}}}


def per_case(counts: dict[str, tuple[int, int]], **gate: Any) -> list[dict[str, Any]]:
    return evaluate_gates([Gate(metric=gate.pop("metric", "pass_rate"), per_case=True, **gate)], [CELL], {},
                          case_counts=lambda cell_id, metric: counts)


def test_a_per_case_gate_names_every_case_below_its_bound_worst_first() -> None:
    [v] = per_case(COUNTS, min=0.9)
    assert v["passed"] is False and v["value"] == 0.0 and v["cases_checked"] == 3
    failing = [(c["case"], c["successes"], c["n"]) for c in v["failing_cases"]]
    assert failing == [("s/broken", 0, 10), ("s/flaky", 7, 10)]
    assert v["reason"] == "2 of 3 cases outside the bound: s/broken 0/10, s/flaky 7/10"


def test_a_per_case_gate_passes_when_every_case_does_though_the_cell_mean_would_not_tell() -> None:
    [v] = per_case({"s/a": (9, 10), "s/b": (10, 10)}, min=0.9)
    assert v["passed"] is True and v["failing_cases"] == [] and v["value"] == 0.9
    # The cell's mean of 0.57 passes a plain gate at 0.5 that one broken case fails per case.
    assert evaluate_gates([Gate(metric="pass_rate", min=0.5)], [CELL], {})[0]["passed"] is True
    assert per_case(COUNTS, min=0.5)[0]["failing_cases"][0]["case"] == "s/broken"


def test_a_per_case_max_bounds_each_case_error_share() -> None:
    [v] = per_case({"s/a": (0, 4), "s/b": (2, 4)}, metric="error_rate", max=0.25)
    assert v["passed"] is False and v["value"] == 0.5 and [c["case"] for c in v["failing_cases"]] == ["s/b"]


def test_a_per_case_gate_no_case_can_measure_fails_and_says_why() -> None:
    [v] = per_case({}, min=0.9)
    assert v["passed"] is False and v["reason"] == "no matching cell has a value for pass_rate"


DEFAULTS = {"max_tokens": 64, "temperature": 0.7, "seed": 7}
CELLS = [{"cell_id": c.cell_id, "label": c.label, "params": c.params, "metrics": {"pass_rate": {"value": 1.0}}}
         for c in make_cells({"temperature": [0, 1], "seed": [None, 42]})]


@pytest.mark.parametrize(("where", "labels"), [
    ({"max_tokens": 64}, ["temperature=0 seed=unset", "temperature=0 seed=42", "temperature=1 seed=unset",
                          "temperature=1 seed=42"]),
    ({"max_tokens": 64, "temperature": 1}, ["temperature=1 seed=unset", "temperature=1 seed=42"]),
    # A grid value of null means "not sent": it removes the default seed 7 from those cells.
    ({"seed": None}, ["temperature=0 seed=unset", "temperature=1 seed=unset"]),
    ({"seed": 7}, []),
    ({"max_tokens": 128}, []),
])
def test_where_matches_the_defaults_under_each_cell(where: dict[str, Any], labels: list[str]) -> None:
    verdicts = evaluate_gates([Gate(metric="pass_rate", where=where, min=0.5)], CELLS, {}, defaults=DEFAULTS)
    assert [v.get("label") for v in verdicts if v["cell_id"]] == labels
    if not labels:
        assert verdicts[0]["reason"] == "no cell matches where"


def _records(cells: list[Any], passes: Callable[[str, int], bool], repeats: int = 4) -> list[dict[str, Any]]:
    return [{"item_id": f"{cell.cell_id}/s/{case}/{r}", "cell_id": cell.cell_id, "suite": "s", "case_id": case,
             "repeat": r, "params": dict(cell.params), "ok": True, "error_kind": None, "error": None,
             "content": "yes" if passes(case, r) else "no", "usage": None, "cost": None, "attempts": [{}],
             "timings": {"queue_s": 0.0, "ttft_s": 0.1, "ttfc_s": 0.1, "e2e_s": 0.2, "chunk_times": []}}
            for cell in cells for case in ("a", "b", "c") for r in range(repeats)]


def _manifest(cells: list[Any], gates: list[dict[str, Any]], **config: Any) -> dict[str, Any]:
    return {"run_id": "r", "started_at": "2026-01-01T00:00:00+00:00", "target": {}, "config_path": "/x/c.yaml",
            "config": {"name": "n", "run": {"stream": True}, "pricing": {"currency": "X"}, "gates": gates,
                       "defaults": {"max_tokens": 64, "temperature": None}, **config},
            "plan": {"requests": 12 * len(cells), "repeats": 4, "cases": 3,
                     "cells": [{"cell_id": c.cell_id, "label": c.label, "params": c.params} for c in cells]},
            "cases": {f"s/{k}": {"expect": {"contains": "yes"}, "schema": None, "extract": None} for k in "abc"}}


def test_summary_judges_per_case_gates_from_the_records_and_reports_pass_k() -> None:
    cells = make_cells({"seed": [1]})
    gates = [{"metric": "pass_rate", "per_case": True, "min": 0.9, "where": {"max_tokens": 64}}]
    # b passes 1 of 4 repeats, the rest all 4: the cell's pass rate is 75%.
    summary = build_summary(_manifest(cells, gates), _records(cells, lambda case, r: case != "b" or r == 0),
                            complete=True)
    [v] = summary["gates"]
    assert summary["passed"] is False and v["per_case"] is True
    assert v["failing_cases"] == [{"case": "s/b", "successes": 1, "n": 4, "value": 0.25}]
    metrics = summary["cells"][0]["metrics"]
    assert metrics["pass_rate"]["value"] == 0.75
    assert metrics["pass_hat_k"]["k"] == 4 and metrics["pass_hat_k"]["value"] == pytest.approx(2 / 3)
    assert metrics["pass_at_k"]["value"] == 1.0
    k2 = build_summary(_manifest(cells, gates, pass_k=2), _records(cells, lambda case, r: True), complete=True)
    assert k2["passed"] is True and k2["cells"][0]["metrics"]["pass_at_k"]["k"] == 2


def test_a_baseline_gate_where_matches_defaults_too() -> None:
    cells = make_cells({"seed": [1, 2]})
    run = RunData(None, _manifest(cells, []), _records(cells, lambda case, r: True))
    base = RunData(None, _manifest(cells, []), _records(cells, lambda case, r: True))
    gate = Gate(metric="pass_rate", where={"max_tokens": 64, "seed": 2}, baseline="previous", max_drop=0.1)
    [v] = baseline_verdicts([gate], run, Baselines(by_spec={"previous": base}))
    assert v["label"] == "seed=2" and v["passed"] is True


CONFIG = """\
name: t
target: {base_url: http://127.0.0.1:9/v1, model: m}
suites: [suite.yaml]
defaults: {max_tokens: 64}
repeats: 4
gates:
  - {metric: pass_rate, min: 0.8}
  - GATE
"""


def test_per_case_gates_and_pass_k_load(write_config: Callable[..., Path]) -> None:
    gate = "{metric: json_valid_rate, per_case: true, min: 0.9, where: {max_tokens: 64}}"
    config = load_config(write_config(CONFIG.replace("GATE", gate) + "pass_k: 2\n")).config
    assert config.gates[-1].per_case is True and config.pass_k == 2


@pytest.mark.parametrize(("gate", "key", "words"), [
    ("{metric: pass_rate, per_case: true, baseline: previous, max_drop: 0.1}", "gates[1].per_case",
     "per_case bounds each case's share within this run"),
    ("{metric: totals.cost, per_case: true, max: 1}", "gates[1].per_case", "not totals.cost"),
    ("{metric: e2e_s.p95, per_case: true, max: 1}", "gates[1].per_case", "per_case works with the rates"),
    ("{metric: exact_match_rate, per_case: true, min: 1}", "gates[1].per_case", "not exact_match_rate"),
    ("{metric: pass_rate, per_case: true}", "gates[1]", "a gate needs min or max"),
])
def test_bad_per_case_gates_name_the_line(write_config: Callable[..., Path], gate: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(CONFIG.replace("GATE", gate)))
    assert exc.value.key == key and exc.value.line == 8
    assert words in str(exc.value)


def test_pass_k_above_repeats_is_a_config_error(write_config: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(CONFIG.replace("  - GATE\n", "") + "pass_k: 5\n"))
    assert exc.value.key == "pass_k" and exc.value.line == 8 and "exceeds repeats (4)" in str(exc.value)
