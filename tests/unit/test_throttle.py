"""The run slows down as a whole on 429s: fewer requests in flight, and a pause every request waits out.

The runs use async MockTransport handlers (httpx awaits them), so requests overlap as they would on a server.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from evalharness.config import RunOptions
from evalharness.ratelimit import Throttle
from tests.unit.test_runner import FakeTime, make_items, ok_response, prompt_of, run, stored


def test_a_429_halves_the_requests_in_flight_once_per_burst_and_successes_win_them_back() -> None:
    throttle = Throttle(8)
    throttle.done(0, ok=False, rate_limited=True)
    assert throttle.limit == 4
    throttle.done(0, ok=False, rate_limited=True)  # sent before the decrease: counted once
    assert throttle.limit == 4
    throttle.done(1, ok=False, rate_limited=True)
    assert throttle.limit == 2
    throttle.done(2, ok=False, rate_limited=False)  # a 503 is no rate limit
    assert throttle.limit == 2
    for _ in range(2):
        throttle.done(2, ok=True, rate_limited=False)
    assert throttle.limit == 3  # one more for every `limit` successes
    for _ in range(3 + 4 + 100):
        throttle.done(2, ok=True, rate_limited=False)
    assert throttle.limit == 8  # never above run.concurrency


def test_the_limit_never_drops_below_one() -> None:
    throttle = Throttle(2)
    for epoch in range(5):
        throttle.done(epoch, ok=False, rate_limited=True)
    assert throttle.limit == 1


def test_a_pause_holds_every_request_until_it_has_passed() -> None:
    fake = FakeTime()
    throttle = Throttle(4, clock=fake.clock, sleep=fake.sleep)

    async def go() -> None:
        throttle.pause(3.0)
        throttle.pause(1.0)  # a shorter pause does not cut the longer one short
        await asyncio.gather(*(throttle.acquire() for _ in range(3)))

    asyncio.run(go())
    assert fake.now == pytest.approx(3.0) and throttle.in_flight == 3


def test_a_request_waits_for_a_slot_and_gets_it_when_one_is_released() -> None:
    throttle = Throttle(2)
    throttle.done(0, ok=False, rate_limited=True)  # limit 1

    async def go() -> list[str]:
        order: list[str] = []
        await throttle.acquire()
        waiting = asyncio.ensure_future(throttle.acquire())
        await asyncio.sleep(0.01)
        order.append("second waits" if not waiting.done() else "second went")
        throttle.release()
        await asyncio.wait_for(waiting, 5)
        order.append("second went")
        return order

    assert asyncio.run(go()) == ["second waits", "second went"]


# --- in a run ---------------------------------------------------------------------------------------------

def test_a_retry_after_holds_back_every_worker_not_only_the_one_told(tmp_path: Path) -> None:
    arrivals: list[tuple[float, str, int]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        prompt = prompt_of(request)
        arrivals.append((time.monotonic(), prompt, len(arrivals)))
        if prompt == "q0" and sum(p == "q0" for _, p, _ in arrivals) == 1:
            return httpx.Response(429, headers={"retry-after-ms": "400"}, json={"error": {"message": "slow"}})
        await asyncio.sleep(0.05)
        return ok_response()

    run(handler, make_items(6), tmp_path, options=RunOptions(concurrency=2, stream=False))
    told = next(t for t, p, _ in arrivals if p == "q0")
    # Sleeps never end early, so no request may arrive within the pause (one was in flight already).
    later = [t - told for t, _, i in arrivals if t > told and i > 1]
    assert later and min(later) >= 0.4
    records = {r["case_id"]: r for r in stored(tmp_path)}
    first = records["case0"]["attempts"][0]
    assert (first["retry_after_s"], first["retry_after_header"], first["wait_s"]) == (0.4, "retry-after-ms", 0.4)
    assert records["case0"]["timings"]["queue_s"] >= 0.4  # the wait is the retry's queue time
    assert all(r["ok"] for r in records.values())


def test_persistent_429s_cut_the_requests_in_flight(tmp_path: Path) -> None:
    in_flight = 0
    seen: list[int] = []  # requests in flight as each one arrives

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight
        in_flight += 1
        seen.append(in_flight)
        try:
            await asyncio.sleep(0.02)
            if len(seen) <= 6:
                return httpx.Response(429, json={"error": {"message": "slow down"}})
            return ok_response()
        finally:
            in_flight -= 1

    run(handler, make_items(8), tmp_path, options=RunOptions(concurrency=4, stream=False, max_retries=5))
    assert seen[:4] == [1, 2, 3, 4]  # run.concurrency at first
    assert max(seen[4:6]) <= 2  # after a burst of 429s, half as many
    assert seen[6] == 1  # and after 429s at that level, one at a time
    assert all(r["ok"] for r in stored(tmp_path))
