"""Load runs: the arrival schedule (a pure function of a seed), the load level as an axis of the plan, the load
metrics, the capacity search, and config errors that name the key and line."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import multiprocessing
import statistics
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import evalharness
from evalharness.config import load_config
from evalharness.console import format_outcome
from evalharness.errors import ConfigError, UsageError
from evalharness.load.metrics import capacity, determinism_notes, load_metrics, meets_slo
from evalharness.load.schedule import gaps, offsets, read_replay
from evalharness.load.spread import _watch, shares
from evalharness.plan import make_plan
from evalharness.transport import run_async
from evalharness.types import CellSummary, Record

rates = st.floats(min_value=0.5, max_value=500, allow_nan=False)
seeds = st.integers(min_value=0, max_value=2**31)


@given(rates, st.integers(min_value=1, max_value=200))
def test_constant_arrivals_are_evenly_spaced_at_the_rate(rate: float, n: int) -> None:
    due = offsets("constant", rate, n)
    assert due[0] == 0.0
    assert all(math.isclose(b - a, 1 / rate) for a, b in itertools.pairwise(due))


@settings(max_examples=25, deadline=None)
@given(rates, seeds)
def test_poisson_gaps_have_mean_one_over_rate_and_cv_one(rate: float, seed: int) -> None:
    g = gaps("poisson", rate, 20_000, seed=seed)
    mean = statistics.fmean(g)
    # The mean of 20,000 exponential gaps is within 4% of 1/rate (5 standard errors) in all but ~1e-6 of seeds.
    assert abs(mean * rate - 1) < 0.04
    assert abs(statistics.pstdev(g) / mean - 1) < 0.06


@settings(max_examples=25, deadline=None)
@given(rates, seeds, st.sampled_from([0.5, 1.0, 2.0, 4.0, 16.0]))
def test_gamma_gaps_have_mean_one_over_rate_and_cv_one_over_sqrt_burstiness(rate: float, seed: int,
                                                                              burstiness: float) -> None:
    g = gaps("gamma", rate, 40_000, burstiness=burstiness, seed=seed)
    mean = statistics.fmean(g)
    assert abs(mean * rate - 1) < 0.05
    assert abs(statistics.pstdev(g) / mean * math.sqrt(burstiness) - 1) < 0.08


@given(st.sampled_from(["poisson", "gamma"]), rates, seeds)
def test_a_schedule_is_a_pure_function_of_its_seed(arrival: str, rate: float, seed: int) -> None:
    first = offsets(arrival, rate, 50, burstiness=2.0, seed=seed)
    assert first == offsets(arrival, rate, 50, burstiness=2.0, seed=seed)
    assert first != offsets(arrival, rate, 50, burstiness=2.0, seed=seed + 1)
    assert first == sorted(first) and first[0] == 0.0


def test_replay_reads_offsets_in_any_order_and_rescales_to_a_rate(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text('{"offset_s": 2.0, "case": "b"}\n{"offset_s": 0.5}\n\n{"offset_s": 1.0, "case": "a"}\n')
    replay = read_replay(path, known_cases=["a", "b"])
    assert replay.offsets == (0.5, 1.0, 2.0) and replay.cases == (None, "a", "b")
    assert replay.rate == pytest.approx(2 / 1.5)
    assert replay.at_rate(None) == [0.0, 0.5, 1.5]
    assert replay.at_rate(4.0) == pytest.approx([0.0, 1 / 6, 0.5])


@pytest.mark.parametrize(("text", "line", "words"), [
    ('{"offset_s": 0}\n{"offset": 1}\n', 2, "offset_s"),
    ('{"offset_s": 0}\nnope\n', 2, "not JSON"),
    ('{"offset_s": 0}\n{"offset_s": 1, "case": "zz"}\n', 2, "unknown case 'zz'"),
])
def test_a_bad_replay_line_is_named_with_its_file_and_line(tmp_path: Path, text: str, line: int,
                                                           words: str) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_replay(path, known_cases=["a"])
    assert info.value.file == str(path) and info.value.line == line and words in str(info.value)


LOAD = """\
name: t
target: {base_url: http://127.0.0.1:9/v1, model: m}
suites: [suite.yaml]
defaults: {max_tokens: 16}
grid:
  temperature: [0, 0.7]
repeats: 2
load:
  arrival: poisson
  rate: [4, 1]
  requests: 6
  warmup_s: 0.5
gates:
  - {metric: slo_attainment, where: {rate: 4}, min: 0.5}
"""


def test_each_grid_point_is_swept_over_the_levels_with_the_same_requests(write_config: Callable[..., Path]) -> None:
    plan = make_plan(load_config(write_config(LOAD)))
    assert [c.params for c in plan.cells] == [{"temperature": 0, "rate": 1}, {"temperature": 0, "rate": 4},
                                              {"temperature": 0.7, "rate": 1}, {"temperature": 0.7, "rate": 4}]
    assert [c.label for c in plan.cells][:2] == ["temperature=0 rate=1", "temperature=0 rate=4"]
    by_cell = {c.cell_id: [i for i in plan.items if i.cell_id == c.cell_id] for c in plan.cells}
    # Warm-up: rate × warmup_s extra requests first (1 at rate 1, 2 at rate 4), then the 6 measured.
    assert [len(items) for items in by_cell.values()] == [7, 8, 7, 8]
    assert [lv.warmup for lv in plan.levels] == [1, 2, 1, 2]
    # Every level asks the cases in the same seeded order; the level is never sent as a parameter.
    orders = [[i.case_id for i in items][:7] for items in by_cell.values()]
    assert orders[0] == orders[1] == orders[2] == orders[3]
    assert all("rate" not in i.params for i in plan.items)
    assert len({i.item_id for i in plan.items}) == len(plan.items)
    assert plan.levels[1].offsets is not None and plan.levels[1].offsets[0] == 0.0


def test_a_search_with_only_max_rate_sweeps_halvings_of_it(write_config: Callable[..., Path]) -> None:
    text = LOAD.replace("  rate: [4, 1]\n", "  search: {slo_attainment: 0.9, max_rate: 64}\n")
    plan = make_plan(load_config(write_config(text)))
    assert [c.params["rate"] for c in plan.cells][:6] == [2, 4, 8, 16, 32, 64]


def test_a_closed_loop_sweeps_concurrency(write_config: Callable[..., Path]) -> None:
    text = LOAD.replace("  arrival: poisson\n  rate: [4, 1]\n", "  arrival: closed\n  concurrency: [1, 3]\n")
    plan = make_plan(load_config(write_config(text.replace("where: {rate: 4}", "where: {concurrency: 3}"))))
    assert [c.params["concurrency"] for c in plan.cells] == [1, 3, 1, 3]
    assert all(lv.offsets is None for lv in plan.levels)
    assert len(plan.items) == 4 * 6


@pytest.mark.parametrize(("old", "new", "key", "words"), [
    ("  rate: [4, 1]\n", "", "load", "needs rate"),
    ("  arrival: poisson\n", "  arrival: closed\n", "load", "closed needs concurrency"),
    ("  requests: 6\n", "  requests: 6\n  duration_s: 3\n", "load", "not both"),
    ("  rate: [4, 1]\n", "  rate: [4, 4]\n", "load", "repeats a level"),
    ("  arrival: poisson\n  rate: [4, 1]\n", "  arrival: closed\n  concurrency: [1, 3]\n  workers: 2\n", "load",
     "a closed loop is sent by one"),
    ("  requests: 6\n", "  requests: 6\n  workers: 65\n", "load.workers", "less than or equal to 64"),
    ("  requests: 6\n", "  requests: 6\n  slo: {ttft: 1}\n", "load.slo.ttft", "unknown key"),
])
def test_load_mistakes_name_the_key_and_line(write_config: Callable[..., Path], old: str, new: str, key: str,
                                             words: str) -> None:
    path = write_config(LOAD.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key and info.value.line is not None and words in str(info.value)


def test_a_capacity_gate_needs_a_capacity_search(write_config: Callable[..., Path]) -> None:
    path = write_config(LOAD.replace("{metric: slo_attainment, where: {rate: 4}, min: 0.5}",
                                     "{metric: capacity.max_rate, min: 2}"))
    with pytest.raises(ConfigError, match="needs a capacity search") as info:
        load_config(path)
    assert info.value.key == "gates[0].metric" and info.value.line == 14
    text = LOAD.replace("  warmup_s: 0.5\n", "  warmup_s: 0.5\n  search: {slo_attainment: 0.9}\n")
    assert load_config(write_config(text.replace("{metric: slo_attainment, where: {rate: 4}, min: 0.5}",
                                                 "{metric: capacity.max_rate, min: 2}"))).config.gates


def test_where_may_name_the_level_only_in_a_load_run(write_config: Callable[..., Path]) -> None:
    text = LOAD.split("load:")[0] + "gates:\n  - {metric: pass_rate, where: {rate: 4}, min: 0.5}\n"
    with pytest.raises(ConfigError, match="unknown parameter 'rate'"):
        load_config(write_config(text))


def _rec(i: int, *, sent: float, done: float, ok: bool = True, ttft: float | None = 0.1, tokens: int = 5,
         lag: float = 0.001, warmup: bool = False) -> Record:
    return {"item_id": f"c/s/a/{i}", "cell_id": "c", "suite": "s", "case_id": "a", "repeat": i, "params": {},
            "started_at": "", "ok": ok, "http_status": 200 if ok else 500, "error_kind": None if ok else "http",
            "error": None, "content": "x", "reasoning": None, "tool_calls": None, "finish_reason": "stop",
            "usage": {"prompt_tokens": 3, "completion_tokens": tokens}, "cost": None, "logprobs": None,
            "timings": {"queue_s": 0.0, "ttft_s": ttft, "ttfc_s": ttft, "e2e_s": done - sent, "chunk_times": []},
            "attempts": 1, "schedule_lag_s": lag, "warmup": warmup,
            "load_clock": {"due_s": sent - lag, "sent_s": sent, "done_s": done}}


def test_load_metrics_over_the_window_from_first_sent_to_last_done() -> None:
    # Five requests sent 0.5 s apart, each taking 1 s; the fourth failed; a warm-up one is left out.
    records = [_rec(i, sent=0.5 * i, done=0.5 * i + 1.0, ok=i != 3, lag=0.001 * (i + 1)) for i in range(5)]
    records.append(_rec(9, sent=-1.0, done=0.0, warmup=True))
    m = load_metrics(records, {"e2e_s": 2.0})
    assert m["achieved_rate_rps"]["value"] == pytest.approx(4 / 2.0)
    assert m["throughput_rps"]["value"] == pytest.approx(4 / 3.0) and m["throughput_rps"]["window_s"] == 3.0
    assert m["output_tps"]["value"] == pytest.approx(20 / 3.0)
    assert m["slo_attainment"]["value"] == pytest.approx(4 / 5)  # the failed request is not good
    assert m["goodput_rps"]["value"] == pytest.approx(4 / 3.0)
    assert m["in_flight_mean"]["value"] == pytest.approx(5.0 / 3.0)
    assert m["schedule_lag_s"]["max"] == pytest.approx(0.005) and m["schedule_lag_s"]["n"] == 5


def test_without_slo_the_slo_metrics_say_why_and_outside_a_load_run_all_do() -> None:
    m = load_metrics([_rec(0, sent=0, done=1), _rec(1, sent=1, done=2)], {})
    assert m["slo_attainment"] == {"value": None, "reason": "no load.slo set"}
    assert m["throughput_rps"]["value"] == pytest.approx(1.0)
    assert all(v["value"] is None and "not a load run" in str(v.get("reason"))
               for v in load_metrics([], None).values())


@pytest.mark.parametrize(("slo", "record", "good"), [
    ({"ttft_s": 0.2}, _rec(0, sent=0, done=1, ttft=0.1), True),
    ({"ttft_s": 0.05}, _rec(0, sent=0, done=1, ttft=0.1), False),
    ({"ttft_s": 0.2}, _rec(0, sent=0, done=1, ttft=None), False),  # not measured: not met
    ({"e2e_s": 0.5}, _rec(0, sent=0, done=1), False),
    ({"tpot_s": 0.2}, _rec(0, sent=0, done=1, ttft=0.2, tokens=5), True),  # 0.8 s / 4 tokens
    ({"tpot_s": 0.1}, _rec(0, sent=0, done=1, ttft=0.2, tokens=5), False),
    ({"tpot_s": 0.1}, _rec(0, sent=0, done=1, ttft=0.2, tokens=1), True),  # one token: TPOT 0, as vLLM
    ({}, _rec(0, sent=0, done=1, ok=False), False),
])
def test_a_request_is_good_when_it_completed_within_every_bound(slo: dict[str, float], record: Record,
                                                                good: bool) -> None:
    assert meets_slo(record, slo) is good


def _cell(params: dict[str, Any], attained: float | None, rps: float, e2e: float,
          exact: float | None = None) -> CellSummary:
    metrics: dict[str, Any] = {"slo_attainment": {"value": attained, "reason": "no load.slo set"},
                               "throughput_rps": {"value": rps}, "e2e_s": {"p50": e2e},
                               "exact_match_rate": {"value": exact}}
    return {"cell_id": repr(params), "label": "", "params": params, "n": 1, "metrics": metrics, "checks": {}}


def test_capacity_is_the_last_rate_before_attainment_falls_below_the_bound() -> None:
    cells = [_cell({"seed": 1, "rate": r}, a, r * 0.98, 1.0 + r / 10)
             for r, a in ((8, 0.7), (1, 1.0), (2, 0.95), (4, 0.92), (16, 0.2))]
    [found] = capacity(cells, 0.9)
    assert found["params"] == {"seed": 1}
    assert found["max_rate"] == 4 and found["levels_tried"] == 4
    assert "rate 8: SLO attainment 0.70 is below 0.9" in found["reason"]


def test_capacity_stops_at_saturation_and_says_when_every_level_met_the_bound() -> None:
    saturated = [_cell({"rate": r}, 1.0, min(r, 3.0), 1.0 + r) for r in (1, 2, 4, 8)]
    [found] = capacity(saturated, 0.9)
    assert found["max_rate"] == 4 and "rate 8: saturated" in found["reason"]
    [found] = capacity([_cell({"rate": r}, 1.0, r, 1.0) for r in (1, 2)], 0.9)
    assert found["max_rate"] == 2 and "at least 2 req/s" in found["reason"]
    [found] = capacity([_cell({"rate": 1}, None, 1.0, 1.0)], 0.9)
    assert found["max_rate"] is None and "no load.slo set" in found["reason"]


def test_the_report_says_at_which_level_temperature_0_repeats_stop_being_identical() -> None:
    cells = [_cell({"temperature": 0, "concurrency": c}, None, 1, 1, exact=e) for c, e in ((1, 1.0), (8, 0.5))]
    cells += [_cell({"temperature": 1, "concurrency": c}, None, 1, 1, exact=0.0) for c in (1, 8)]
    assert determinism_notes(cells, {}) == [
        "temperature=0: temperature-0 repeats stop being identical at concurrency 8 (identical repeats 50%, "
        "100% at concurrency 1)"]


class _Slots:
    """A server with ``slots`` requests served at once, each taking ``service_s``; more wait in line."""

    def __init__(self, slots: int, service_s: float) -> None:
        self.sem = asyncio.Semaphore(slots)
        self.service_s = service_s

    async def complete(self, body: dict[str, Any]) -> evalharness.Outcome:
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with self.sem:
            await asyncio.sleep(self.service_s)
        e2e = loop.time() - start
        return evalharness.Outcome(ok=True, status=200, content="same", finish_reason="stop", e2e_s=e2e,
                                   ttft_s=e2e / 2, usage={"prompt_tokens": 3, "completion_tokens": 2})

    async def aclose(self) -> None:
        pass


def test_an_open_loop_keeps_its_schedule_past_the_servers_capacity(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text("name: s\ncases:\n  - {id: a, prompt: hi}\n  - {id: b, prompt: ho}\n")
    # Two slots of 50 ms: capacity 40 req/s. At 20 req/s the server keeps up; at 80 req/s requests queue.
    run = evalharness.run({
        "name": "slots", "target": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}, "suites": ["suite.yaml"],
        "load": {"arrival": "constant", "rate": [20, 80], "requests": 40, "slo": {"e2e_s": 0.08},
                 "search": {"slo_attainment": 0.9}},
        "gates": [{"metric": "capacity.max_rate", "min": 10}, {"metric": "capacity.max_rate", "min": 50},
                  {"metric": "slo_attainment", "where": {"rate": 80}, "min": 0.9}],
    }, backend=_Slots(2, 0.05), out=tmp_path / "run")
    low, high = (c.metrics for c in run.cells)
    assert low["achieved_rate_rps"]["value"] == pytest.approx(20, rel=0.05)
    assert high["achieved_rate_rps"]["value"] == pytest.approx(80, rel=0.05)  # open loop: sent on time anyway
    assert high["schedule_lag_s"]["p50"] < 0.005 and high["schedule_lag_s"]["capped"] == 0
    assert low["slo_attainment"]["value"] >= 0.9 and high["slo_attainment"]["value"] < 0.5
    assert high["throughput_rps"]["value"] == pytest.approx(40, rel=0.15)  # what two slots can serve
    assert high["e2e_s"]["p95"] > 3 * low["e2e_s"]["p95"]
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["capacity"][0]["max_rate"] == 20
    assert [(g["metric"], g.get("where"), g["value"], g["passed"]) for g in summary["gates"]] == [
        ("capacity.max_rate", {}, 20, True), ("capacity.max_rate", {}, 20, False),
        ("slo_attainment", {"rate": 80}, high["slo_attainment"]["value"], False)]
    # The console: a level table, the capacity, and the run's own throughput.
    text = format_outcome(summary, "run", [])
    assert "Capacity of default: 20 req/s (rate 80: SLO attainment" in text
    assert [line.split()[:2] for line in text.splitlines() if line.startswith("default ")] == [
        ["default", "20"], ["default", "80"]]
    assert summary["totals"]["throughput_rps"] == pytest.approx(80 / summary["totals"]["duration_s"])
    assert " req/s, " in text and "output tok/s over" in text
    records = [json.loads(line) for line in (run.run_dir / "results.jsonl").read_text().splitlines()]
    late = [(r["scheduled_at"], r["sent_at"], r["schedule_lag_s"]) for r in records
            if not (r["scheduled_at"] <= r["sent_at"] and r["schedule_lag_s"] >= 0)]
    assert not late, f"sent before they were due: {late}"


def _gaps(run: evalharness.Run, clock: str) -> list[float]:
    records = [json.loads(line) for line in (run.run_dir / "results.jsonl").read_text().splitlines()]
    times = sorted(r["load_clock"][clock] for r in records)
    return [b - a for a, b in itertools.pairwise(times)]


def test_requests_are_sent_with_the_arrival_processs_spread(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text("name: s\ncases:\n  - {id: a, prompt: hi}\n")
    config: dict[str, Any] = {"name": "spread", "target": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
                              "suites": ["suite.yaml"]}
    poisson = evalharness.run({**config, "load": {"arrival": "poisson", "rate": [200], "requests": 400}},
                              backend=_Slots(64, 0.001), out=tmp_path / "poisson")
    constant = evalharness.run({**config, "load": {"arrival": "constant", "rate": [50], "requests": 100,
                                                   "warmup_s": 0.1}},
                               backend=_Slots(64, 0.001), out=tmp_path / "constant")
    # The schedule the level kept: CV near 1 for Poisson, 0 for constant; and the sends followed it (a busy
    # machine's stall delays a few, which the lag's tail shows; the median stays within a few ms).
    gaps_p, gaps_c = _gaps(poisson, "due_s"), _gaps(constant, "due_s")
    assert 0.85 < statistics.pstdev(gaps_p) / statistics.fmean(gaps_p) < 1.15
    assert statistics.pstdev(gaps_c) / statistics.fmean(gaps_c) < 1e-6
    # Warm-up (rate × 0.1 s: 5 requests) is stored and left out of every figure of its level.
    records = [json.loads(line) for line in (constant.run_dir / "results.jsonl").read_text().splitlines()]
    assert sum(r["warmup"] for r in records) == 5 and len(records) == 105
    assert constant.cells[0]["requests"].value == 100 and constant.cells[0]["schedule_lag_s"].n == 100
    for run, rate in ((poisson, 200), (constant, 50)):
        assert run.cells[0]["achieved_rate_rps"].value == pytest.approx(rate, rel=0.15)
        assert run.cells[0]["schedule_lag_s"].p50 < 0.01


def test_the_capacity_search_lands_near_a_servers_known_capacity(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text("name: s\ncases:\n  - {id: a, prompt: hi}\n")
    # Eight slots of 100 ms: 80 requests/s. Below it constant arrivals never wait; above it a queue grows.
    run = evalharness.run({
        "name": "capacity", "target": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}, "suites": ["suite.yaml"],
        "load": {"arrival": "constant", "rate": [20, 40, 60, 72, 88, 120], "requests": 60,
                 "slo": {"e2e_s": 0.16}, "search": {"slo_attainment": 0.8}},
    }, backend=_Slots(8, 0.1), out=tmp_path / "run")
    summary = json.loads((run.run_dir / "summary.json").read_text())
    [found] = summary["capacity"]
    assert found["max_rate"] == pytest.approx(80, rel=0.15), found
    rates = [c.metrics["throughput_rps"]["value"] for c in run.cells]
    assert rates[-1] == pytest.approx(80, rel=0.15)  # past capacity, the server's rate, not the offered one


def test_requests_due_while_max_in_flight_are_out_wait_and_say_so(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text("name: s\ncases:\n  - {id: a, prompt: hi}\n")
    # 80 req/s at a server that takes 50 ms, with at most 2 in flight: most requests are due while 2 are out.
    run = evalharness.run({
        "name": "cap", "target": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}, "suites": ["suite.yaml"],
        "load": {"arrival": "constant", "rate": [80], "requests": 20, "max_in_flight": 2},
    }, backend=_Slots(8, 0.05), out=tmp_path / "run")
    lag = run.cells[0].metrics["schedule_lag_s"]
    assert 10 <= lag["capped"] <= 19
    assert lag["p99"] > 0.1  # it waited for a slot: an open loop held back says so in its lag
    assert run.cells[0]["in_flight_mean"].value <= 2.0 + 1e-6


@given(n=st.integers(0, 300), workers=st.integers(1, 8))
def test_a_level_is_dealt_over_load_workers_one_request_each_every_nth(n: int, workers: int) -> None:
    items = [(i, f"item-{i}") for i in range(n)]
    parts = shares(items, workers)  # type: ignore[arg-type]
    assert len(parts) == workers
    assert sorted(itertools.chain.from_iterable(parts)) == items  # every request once, none twice
    assert max(map(len, parts)) - min(map(len, parts)) <= 1  # an even share: 1/N of the rate each
    for k, part in enumerate(parts):
        assert [i for i, _ in part] == list(range(k, n, workers))


def test_load_workers_refuse_a_python_backend_before_making_a_run_folder(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text("name: s\ncases:\n  - {id: a, prompt: Hi.}\n")
    config = {"name": "t", "suites": ["suite.yaml"], "target": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
              "load": {"arrival": "constant", "rate": [5], "requests": 4, "workers": 2}}
    with pytest.raises(UsageError, match="a Python backend cannot be given"):
        evalharness.run(config, base_dir=tmp_path, out=tmp_path / "run", backend=_Never())
    assert not (tmp_path / "run").exists()


class _Never:
    async def complete(self, body: Any) -> Any:
        raise AssertionError("no request is sent")

    async def aclose(self) -> None:
        pass


def test_a_watched_pipe_reads_a_message_many_times_its_buffer_whole() -> None:
    # A level's share or a batch of records is megabytes; the loop (uvloop here) must not read half of one.
    sender, receiver = multiprocessing.Pipe()
    big = [f"record {i} " * 100 for i in range(5000)]  # ~5 MB
    got: list[Any] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        arrived = asyncio.Event()
        _watch(loop, receiver, lambda: (got.append(receiver.recv()), arrived.set()))
        threading.Thread(target=sender.send, args=(big,)).start()
        await asyncio.wait_for(arrived.wait(), 30)
        loop.remove_reader(receiver.fileno())

    run_async(main())
    assert got == [big]


class _RaisesOnce:
    """Answers at once, but the second request raises: a bug in a backend, not a failed request."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, body: Any) -> evalharness.Outcome:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("the backend broke")
        return evalharness.Outcome(ok=True, status=200, content="ok", finish_reason="stop", e2e_s=0.001,
                                   ttft_s=0.001, usage={"prompt_tokens": 3, "completion_tokens": 1})

    async def aclose(self) -> None:
        pass


def test_a_request_that_raises_mid_level_is_raised_not_lost_with_its_record(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text("name: s\ncases:\n  - {id: a, prompt: hi}\n")
    config = {"name": "t", "suites": ["suite.yaml"], "target": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
              "load": {"arrival": "constant", "rate": [50], "requests": 10}}
    with pytest.raises(RuntimeError, match="the backend broke"):
        evalharness.run(config, base_dir=tmp_path, out=tmp_path / "run", backend=_RaisesOnce())
