"""Load runs against the bundled model: an open-loop rate sweep and a closed-loop concurrency sweep, as a user
sees them in results.jsonl, summary.json and report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import evalharness
from evalharness.load.metrics import LOAD_METRICS

SUITE = """\
name: mini
cases:
  - id: capital
    prompt: What is the capital of France? Answer in one word.
  - id: count
    prompt: Count from one to five.
"""
BASE: dict[str, Any] = {"name": "load", "target": {"kind": "local"}, "suites": ["suite.yaml"],
                        "defaults": {"max_tokens": 8, "temperature": 0, "seed": 1},
                        "run": {"max_retries": 1}}


SLO_E2E_S = 3.0


def _records(run: evalharness.Run) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run.run_dir / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def open_loop(tmp_path_factory: pytest.TempPathFactory) -> evalharness.Run:
    folder = tmp_path_factory.mktemp("load-open")
    (folder / "suite.yaml").write_text(SUITE)
    return evalharness.run({**BASE, "load": {
        "arrival": "poisson", "rate": [1, 4], "requests": 6, "seed": 3, "slo": {"e2e_s": SLO_E2E_S},
        "search": {"slo_attainment": 0.5}}}, base_dir=folder, out=folder / "run")


def test_an_open_loop_sweep_records_when_each_request_was_due_and_sent(open_loop: evalharness.Run) -> None:
    records = _records(open_loop)
    assert len(records) == 12 and all(r["ok"] for r in records)
    for r in records:
        assert r["scheduled_at"] <= r["sent_at"] and r["schedule_lag_s"] >= 0
        assert r["sent_at"][:19] == r["started_at"][:19]  # the same clock and format
        assert "rate" not in r["params"]  # the level is the cell's, never sent to the server
    # The level is an axis: one cell per rate, each with the grid point's params and the rate.
    assert [c.params for c in open_loop.cells] == [{"rate": 1}, {"rate": 4}]
    assert {r["cell_id"] for r in records} == {c.cell_id for c in open_loop.cells}


def test_an_open_loop_sweep_reports_the_load_metrics_and_the_capacity(open_loop: evalharness.Run) -> None:
    for cell in open_loop.cells:
        measured = [name for name in LOAD_METRICS if cell[name].value is not None or cell[name].p50 is not None]
        assert measured == list(LOAD_METRICS), cell.params
        # Requests sent on schedule: a Poisson sample of 6 is noisy, but nowhere near the other level's rate.
        assert 0.3 * cell.params["rate"] < cell["achieved_rate_rps"].value < 3 * cell.params["rate"]
        assert cell["schedule_lag_s"].p50 < 0.01  # its tail depends on what else the machine runs
        # Traceable to the records: the share of the level's requests that finished within the SLO.
        mine = [r for r in _records(open_loop) if r["cell_id"] == cell.cell_id]
        good = sum(r["ok"] and r["timings"]["e2e_s"] <= SLO_E2E_S for r in mine)
        assert cell["slo_attainment"].value == pytest.approx(good / len(mine))
        window = max(r["load_clock"]["done_s"] for r in mine) - min(r["load_clock"]["sent_s"] for r in mine)
        assert cell["goodput_rps"].value == pytest.approx(good / window)
    summary = json.loads((open_loop.run_dir / "summary.json").read_text())
    [found] = summary["capacity"]
    assert found["params"] == {} and found["levels_tried"] >= 1 and found["reason"]
    assert summary["load_notes"] and "temperature-0" in summary["load_notes"][0]
    html = (open_loop.run_dir / "report.html").read_text()
    assert 'id="load-levels"' in html and 'id="load-latency"' in html and 'id="load-capacity"' in html


def test_a_closed_loop_sweep_holds_the_concurrency(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    run = evalharness.run({**BASE, "load": {"arrival": "closed", "concurrency": [1, 2], "requests": 3, "seed": 2}},
                          base_dir=tmp_path, out=tmp_path / "run")
    one, two = run.cells
    assert one.params == {"concurrency": 1} and two.params == {"concurrency": 2}
    assert one["requests"].value == two["requests"].value == 3
    # One in flight at a time at concurrency 1 (a little under: the gaps between a response and the next send).
    assert 0.8 < one["in_flight_mean"].value <= 1.0 + 1e-6
    assert one["in_flight_mean"].value < two["in_flight_mean"].value <= 2.0 + 1e-6
    assert one["schedule_lag_s"].p50 < 0.01 and two["schedule_lag_s"].p50 < 0.01
    assert one["exact_match_rate"].value is not None  # determinism per level
