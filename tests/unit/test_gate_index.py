"""Every gate verdict in summary.json says which gate of the config it is (``gate``: its index)."""

from __future__ import annotations

from evalharness.baselines import Baselines
from evalharness.plan import make_cells
from evalharness.results import GateVerdict
from evalharness.runs import RunData
from evalharness.summary import build_summary
from tests.unit.test_gates_per_case import _manifest, _records


def test_verdicts_carry_their_gates_index_in_the_config() -> None:
    cells = make_cells({"seed": [1, 2]})
    # Gates 0 and 2 differ only in min_n, which no other field of a verdict repeats: only the index tells
    # their verdicts apart. Gate 1 compares with the previous run.
    gates = [{"metric": "pass_rate", "min": 0.5}, {"metric": "pass_rate", "baseline": "previous", "max_drop": 0.1},
             {"metric": "pass_rate", "min": 0.5, "min_n": 1000}]
    records = _records(cells, lambda case, r: True)
    base = RunData(None, _manifest(cells, []), _records(cells, lambda case, r: True))
    summary = build_summary(_manifest(cells, gates), records, complete=True,
                            baselines=Baselines(by_spec={"previous": base}))
    found = sorted((v["gate"], v["label"], v["passed"]) for v in summary["gates"])
    assert found == [(0, "seed=1", True), (0, "seed=2", True), (1, "seed=1", True), (1, "seed=2", True),
                     (2, "seed=1", False), (2, "seed=2", False)]
    assert {GateVerdict.from_summary(v).gate for v in summary["gates"]} == {0, 1, 2}


def test_a_run_baseline_verdict_has_no_gate_of_the_config() -> None:
    cells = make_cells({"seed": [1]})
    cli = RunData(None, _manifest(cells, []), _records(cells, lambda case, r: True))
    summary = build_summary(_manifest(cells, []), _records(cells, lambda case, r: True), complete=True,
                            baselines=Baselines(cli=cli))
    assert summary["gates"] and all(v["gate"] is None for v in summary["gates"])
