"""Gates: verdicts per matching cell, percentile fields, run totals, and metrics that cannot be measured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evalharness.config import Gate, load_config
from evalharness.errors import ConfigError
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


CONFIG = """\
name: t
target: {base_url: http://127.0.0.1:9/v1, model: m}
suites: [suite.yaml]
grid:
  temperature: [0, 0.7]
gates:
  - {metric: pass_rate, min: 0.8}
  - {metric: e2e_s.p95, max: 5.0}
  - {metric: totals.cost, max: 1.0}
  - GATE
"""


def test_baseline_gates_load_next_to_the_existing_kinds(write_config: Callable[..., Path], tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "manifest.json").write_text("{}")
    gates = load_config(write_config(CONFIG.replace("GATE", "{metric: pass_rate, baseline: base, max_drop: 0.05}")
                                     )).config.gates
    assert [(g.metric, g.min, g.max, g.baseline, g.max_drop) for g in gates] == [
        ("pass_rate", 0.8, None, None, None), ("e2e_s.p95", None, 5.0, None, None),
        ("totals.cost", None, 1.0, None, None), ("pass_rate", None, None, "base", 0.05)]
    for gate in ("{metric: e2e_s.p95, baseline: previous, max_rise: 0.2, where: {temperature: 0}}",
                 "{metric: error_rate, baseline: previous, max_rise: 0.01}"):
        assert load_config(write_config(CONFIG.replace("GATE", gate))).config.gates[-1].baseline == "previous"


@pytest.mark.parametrize(("gate", "key", "words"), [
    ("{metric: pass_rate, max_drop: 0.1}", "gates[3]", "add baseline"),
    ("{metric: pass_rate, baseline: previous, min: 0.5}", "gates[3]", "not min or max"),
    ("{metric: pass_rate, baseline: previous}", "gates[3]", "exactly one of max_drop or max_rise"),
    ("{metric: pass_rate, baseline: previous, max_drop: -0.1}", "gates[3].max_drop", "greater than or equal"),
    ("{metric: error_rate, baseline: previous, max_drop: 0.1}", "gates[3].max_drop", "use max_rise"),
    ("{metric: pass_rate, baseline: previous, max_rise: 0.1}", "gates[3].max_rise", "use max_drop"),
    ("{metric: cost, baseline: previous, max_rise: 0.1}", "gates[3].metric", "cannot be compared"),
    ("{metric: e2e_s.mean, baseline: previous, max_rise: 0.1}", "gates[3].metric", "e2e_s.p50"),
    ("{metric: pass_rate, baseline: runs/nope, max_drop: 0.1}", "gates[3].baseline", "not a run directory"),
    ("{metric: pass_rte, min: 0.5}", "gates[3].metric", "unknown metric 'pass_rte'"),
    ("{metric: pass_rate, min: 0.5, min_n: 0}", "gates[3].min_n", "greater than or equal to 1"),
    ("{metric: totals.cost, max: 1.0, min_n: 10}", "gates[3]", "min_n bounds the sample"),
    ("{metric: pass_rate, baseline: previous, max_drop: 0.1, min_n: 10}", "gates[3]", "not a baseline gate"),
])
def test_bad_gates_name_the_key_and_line(write_config: Callable[..., Path], gate: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(CONFIG.replace("GATE", gate)))
    assert exc.value.key == key and exc.value.line == 10
    assert words in str(exc.value)


def sliver_cells() -> list[dict[str, Any]]:
    """Two cells of 48 planned requests: one answered all, one lost 47 to errors (its one answer is valid)."""
    full = {"cell_id": "a", "label": "t=0", "params": {"temperature": 0}, "n": 48,
            "metrics": {"json_valid_rate": {"value": 1.0, "n": 48}, "errors": {"value": 0}}}
    sliver = {"cell_id": "b", "label": "t=1", "params": {"temperature": 1}, "n": 48,
              "metrics": {"json_valid_rate": {"value": 1.0, "n": 1}, "errors": {"value": 47}}}
    return [full, sliver]


def test_a_verdict_on_a_sliver_of_the_plan_says_so_and_min_n_fails_it() -> None:
    plain, bounded = evaluate_gates([Gate(metric="json_valid_rate", min=0.99)], sliver_cells(), {}, planned=48), \
        evaluate_gates([Gate(metric="json_valid_rate", min=0.99, min_n=24)], sliver_cells(), {}, planned=48)
    assert [(v["n"], v["passed"], v.get("note")) for v in plain] == [
        (48, True, None), (1, True, "measured on n=1: of the cell's 48 planned requests 47 failed")]
    assert [(v["n"], v["passed"]) for v in bounded] == [(48, True), (1, False)]
    assert bounded[1]["reason"] == "measured on n=1, fewer than min_n=24"
