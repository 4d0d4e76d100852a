"""Token buckets for run.rpm and run.tpm, on a fake clock: the rate holds, bursts stay small, usage settles."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalharness.ratelimit import RateLimiter, TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def start_times(limiter: RateLimiter, fake: FakeTime, tokens: list[float]) -> list[float]:
    async def go() -> list[float]:
        times = []
        for n in tokens:
            await limiter.acquire(n)
            times.append(fake.now)
        return times
    return asyncio.run(go())


def test_rpm_spreads_requests_evenly_after_a_burst_of_one_second() -> None:
    fake = FakeTime()
    limiter = RateLimiter(rpm=120, clock=fake.clock, sleep=fake.sleep)  # 2 a second
    assert start_times(limiter, fake, [0] * 6) == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0])


@given(rpm=st.floats(1, 10_000), n=st.integers(2, 200))
def test_rpm_never_exceeds_its_rate_beyond_the_initial_burst(rpm: float, n: int) -> None:
    fake = FakeTime()
    limiter = RateLimiter(rpm=rpm, clock=fake.clock, sleep=fake.sleep)
    times = start_times(limiter, fake, [0] * n)
    burst = max(1.0, rpm / 60)
    # n requests need at least (n - burst) refills at rpm/60 a second.
    assert times[-1] >= (n - burst) / (rpm / 60) - 1e-3


def test_a_request_bigger_than_the_bucket_still_runs_and_the_debt_slows_the_next() -> None:
    fake = FakeTime()
    limiter = RateLimiter(tpm=600, clock=fake.clock, sleep=fake.sleep)  # 10 tokens a second, bucket of 10
    assert start_times(limiter, fake, [50, 10]) == pytest.approx([0, 5.0])


def test_settling_returns_unused_tokens_and_charges_an_overrun() -> None:
    bucket = TokenBucket(600, now=0.0)  # 10 a second, bucket of 10
    bucket.take(10, now=0.0)
    limiter = RateLimiter(tpm=600, clock=lambda: 0.0)
    limiter.tokens = bucket
    limiter.settle(reserved=10, used=4)
    assert bucket.wait_s(10, now=0.0) == pytest.approx(0.4)
    limiter.settle(reserved=0, used=8)  # the estimate was 8 tokens short
    assert bucket.wait_s(10, now=0.0) == pytest.approx(1.2)
    limiter.settle(reserved=10, used=None)  # no usage reported: the reservation stands
    assert bucket.wait_s(10, now=0.0) == pytest.approx(1.2)


def test_both_limits_apply_and_the_slower_one_wins() -> None:
    fake = FakeTime()
    limiter = RateLimiter(rpm=6000, tpm=60, clock=fake.clock, sleep=fake.sleep)  # 100 req/s but 1 token/s
    assert start_times(limiter, fake, [1, 1, 1]) == pytest.approx([0, 1, 2])


def test_no_limits_never_waits() -> None:
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    assert not limiter.enabled
    assert start_times(limiter, fake, [10**9] * 3) == [0, 0, 0]
