"""Load runs against a server whose capacity is known (tests/load/known_server.py: 4 slots of 50 ms, so 80
requests per second at most): the schedule is kept, latency and SLO attainment follow from the server's queue,
and the capacity search lands near the true capacity.

Rates stay far below what the client holds on a busy machine (bench/RESULTS.md: thousands per second), so the
figures are the server's, not the client's.
"""

from __future__ import annotations

import heapq
import itertools
import json
import statistics
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import evalharness
from tests.load.known_server import running

SLOTS, SERVICE_S = 4, 0.05
CAPACITY = SLOTS / SERVICE_S  # 80 requests per second
BELOW, ABOVE = [20.0, 50.0, 72.0], [90.0, 120.0]
SLO_E2E_S = 0.1


@pytest.fixture(scope="module")
def known_server() -> Iterator[str]:
    with running(SLOTS, SERVICE_S, 0.002) as url:
        yield url


def _run(url: str, folder: Path, load: dict[str, Any]) -> tuple[evalharness.Run, list[dict[str, Any]]]:
    (folder / "suite.yaml").write_text("name: known\ncases:\n  - {id: a, prompt: Say ok.}\n  - {id: b, prompt: Hi.}\n")
    run = evalharness.run({
        "name": "known-capacity", "suites": ["suite.yaml"],
        "target": {"base_url": url, "model": "known-capacity", "api_key_env": None},
        "defaults": {"max_tokens": 8}, "run": {"stream": True, "max_retries": 0, "timeout_s": 30},
        "load": {"seed": 5, "warmup_s": 0.25, "max_in_flight": 1024, **load},
    }, base_dir=folder, out=folder / "run")
    records = [json.loads(line) for line in (run.run_dir / "results.jsonl").read_text().splitlines()]
    assert records and all(r["ok"] for r in records)
    return run, records


@pytest.fixture(scope="module")
def constant(known_server: str, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[evalharness.Run, list[dict[str, Any]]]:
    return _run(known_server, tmp_path_factory.mktemp("constant"), {
        "arrival": "constant", "rate": BELOW + ABOVE, "duration_s": 2, "slo": {"e2e_s": SLO_E2E_S},
        "search": {"slo_attainment": 0.9}})


@pytest.fixture(scope="module")
def poisson(known_server: str, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[evalharness.Run, list[dict[str, Any]]]:
    return _run(known_server, tmp_path_factory.mktemp("poisson"), {
        "arrival": "poisson", "rate": [20, 40], "duration_s": 3, "slo": {"e2e_s": SLO_E2E_S}})


def _level(run: evalharness.Run, records: list[dict[str, Any]], rate: float
           ) -> tuple[evalharness.Cell, list[dict[str, Any]]]:
    [cell] = [c for c in run.cells if c.params["rate"] == rate]
    return cell, sorted((r for r in records if r["cell_id"] == cell.cell_id), key=lambda r: r["load_clock"]["sent_s"])


def _cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values)


def _sent_gaps(records: list[dict[str, Any]]) -> list[float]:
    times = [datetime.fromisoformat(r["sent_at"]).timestamp() for r in records if not r["warmup"]]
    return [b - a for a, b in itertools.pairwise(times)]


def _predicted_good(records: list[dict[str, Any]], service_s: float) -> float:
    """The share of a level's measured requests the server's queue lets finish within the SLO: each request,
    in the order it was sent, takes the first slot to free up and holds it ``service_s``."""
    free = [0.0] * SLOTS
    good = measured = 0
    for r in records:
        sent = r["load_clock"]["sent_s"]
        start = max(sent, heapq.heappop(free))
        heapq.heappush(free, start + service_s)
        if not r["warmup"]:
            measured += 1
            good += start + service_s - sent <= SLO_E2E_S
    return good / measured


def test_requests_are_sent_at_the_rate_asked_below_capacity(constant: tuple[evalharness.Run, list[Any]],
                                                            poisson: tuple[evalharness.Run, list[Any]]) -> None:
    run, records = constant
    for rate in BELOW:
        cell, _ = _level(run, records, rate)
        assert cell["achieved_rate_rps"].value == pytest.approx(rate, rel=0.05)
        assert cell["throughput_rps"].value == pytest.approx(rate, rel=0.05)
    # A Poisson sample's own mean rate is noisy; the client keeps the schedule it drew to within 5%.
    run, records = poisson
    for rate in (20.0, 40.0):
        cell, mine = _level(run, records, rate)
        due = [r["load_clock"]["due_s"] for r in mine if not r["warmup"]]
        assert cell["achieved_rate_rps"].value == pytest.approx((len(due) - 1) / (due[-1] - due[0]), rel=0.05)
        assert cell["achieved_rate_rps"].value == pytest.approx(rate, rel=0.3)


def test_inter_arrival_gaps_vary_as_the_arrival_process_does(constant: tuple[evalharness.Run, list[Any]],
                                                             poisson: tuple[evalharness.Run, list[Any]]) -> None:
    run, records = poisson
    levels = [_level(run, records, rate)[1] for rate in (20.0, 40.0)]
    gaps = [g for mine in levels for g in _sent_gaps(mine)]
    assert len(gaps) > 150
    assert 0.8 < _cv(gaps) < 1.2  # exponential gaps: CV 1
    # The gaps sent are the gaps drawn: the client adds no regularity and no bursts of its own.
    drawn = [b - a for mine in levels for a, b in itertools.pairwise(
        [r["load_clock"]["due_s"] for r in mine if not r["warmup"]])]
    assert _cv(gaps) == pytest.approx(_cv(drawn), abs=0.05)
    run, records = constant
    for rate in (20.0, 50.0):
        cv = _cv(_sent_gaps(_level(run, records, rate)[1]))
        assert cv < 0.1, (rate, cv)  # even gaps; what is left is millisecond timestamps and the machine's jitter
        assert all(r["scheduled_at"] <= r["sent_at"] for r in records)


def test_latency_rises_and_throughput_flattens_past_capacity(constant: tuple[evalharness.Run, list[Any]]) -> None:
    run, records = constant
    p50 = {rate: _level(run, records, rate)[0]["e2e_s"].p50 for rate in BELOW + ABOVE}
    # Below capacity a request is served as it arrives: its service time and little more.
    for rate in BELOW:
        assert SERVICE_S <= p50[rate] < SERVICE_S + 0.03, (rate, p50)
    # The server streams its 4 tokens 2 ms apart: pooled over gaps or per request, the same gap here.
    low, _ = _level(run, records, 20.0)
    assert 0.002 <= low["itl_s"].p50 < 0.012 and 0.002 <= low["itl_per_request_s"].p50 < 0.012
    # Past it the queue grows with every request: latency climbs with the rate.
    assert p50[72.0] * 2 < p50[90.0] < p50[120.0]
    top, _ = _level(run, records, 120.0)
    assert top["throughput_rps"].value == pytest.approx(CAPACITY, rel=0.15)
    assert top["throughput_rps"].value < 0.9 * top["achieved_rate_rps"].value
    assert top["in_flight_mean"].value > 2 * SLOTS  # the queue: more out than the server serves


def test_goodput_and_slo_attainment_follow_the_servers_queue(constant: tuple[evalharness.Run, list[Any]]) -> None:
    run, records = constant
    # The service time as the client sees it unloaded (50 ms, and the server's and client's own overhead).
    service_s = _level(run, records, BELOW[0])[0]["e2e_s"].p50
    for rate in BELOW + ABOVE:
        cell, mine = _level(run, records, rate)
        attained = cell["slo_attainment"].value
        assert attained == pytest.approx(_predicted_good(mine, service_s), abs=0.1), rate
        measured = [r for r in mine if not r["warmup"]]
        window = max(r["load_clock"]["done_s"] for r in measured) - measured[0]["load_clock"]["sent_s"]
        assert cell["goodput_rps"].value == pytest.approx(attained * len(measured) / window)
        if rate in BELOW:
            assert attained >= 0.9 and cell["goodput_rps"].value == pytest.approx(rate, rel=0.1)
        else:
            assert attained < 0.5  # most wait behind the queue longer than the SLO allows


def test_the_capacity_search_lands_near_the_true_capacity(constant: tuple[evalharness.Run, list[Any]]) -> None:
    run, _ = constant
    summary = json.loads((run.run_dir / "summary.json").read_text())
    [found] = summary["capacity"]
    assert found["max_rate"] == pytest.approx(CAPACITY, rel=0.15), found
    assert found["levels_tried"] == 4 and "90" in found["reason"]
