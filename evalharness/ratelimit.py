"""Rate limits: ``run.rpm`` and ``run.tpm`` as token buckets the runner waits on before every attempt, and
the ``Throttle`` that slows the whole run down while the server answers 429.

The buckets are pure arithmetic on a clock passed in, so they can be tested with a fake clock; the only
waiting happens in ``RateLimiter.acquire`` (with an injectable ``sleep``).

A bucket refills continuously at its per-minute rate and holds at most one second's worth (at least one
request), so requests are spread out instead of bursting a whole minute's allowance at the start. A take
larger than the bucket (a request whose token estimate exceeds one second of ``tpm``) waits for a full
bucket and leaves it in debt: the request still runs, and the average rate still holds.

Tokens are reserved before a request from an estimate (prompt + max_tokens) and settled after it with the
tokens the server reports in ``usage``; without usage the reservation stands, which errs on the slow side.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class TokenBucket:
    """``per_minute`` units a minute, at most ``capacity`` at once (default: one second's worth, >= 1)."""

    def __init__(self, per_minute: float, *, now: float, capacity: float | None = None) -> None:
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.rate = per_minute / 60.0
        self.capacity = capacity if capacity is not None else max(1.0, self.rate)
        self.level = self.capacity
        self._updated = now

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self.level = min(self.capacity, self.level + (now - self._updated) * self.rate)
            self._updated = now

    def wait_s(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` may be taken; 0 when it may be taken now."""
        self._refill(now)
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def take(self, amount: float, now: float) -> None:
        """Take ``amount`` (the bucket may go into debt; see the module docstring)."""
        self._refill(now)
        self.level -= amount

    def give_back(self, amount: float, now: float) -> None:
        """Return units a request reserved but did not use."""
        self._refill(now)
        self.level = min(self.capacity, self.level + amount)


class RateLimiter:
    """Requests per minute and tokens per minute together; either may be None (no limit)."""

    def __init__(self, rpm: float | None = None, tpm: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        now = clock()
        self.requests = TokenBucket(rpm, now=now) if rpm else None
        self.tokens = TokenBucket(tpm, now=now) if tpm else None
        # One waiter at a time, first come first served: a big request is not starved by small ones.
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self.requests is not None or self.tokens is not None

    def wait_s(self, tokens: float) -> float:
        """Seconds until a request reserving ``tokens`` may start."""
        now = self._clock()
        waits = [0.0]
        if self.requests:
            waits.append(self.requests.wait_s(1, now))
        if self.tokens:
            waits.append(self.tokens.wait_s(tokens, now))
        return max(waits)

    def take(self, tokens: float) -> None:
        now = self._clock()
        if self.requests:
            self.requests.take(1, now)
        if self.tokens:
            self.tokens.take(tokens, now)

    async def acquire(self, tokens: float) -> None:
        """Wait until one request reserving ``tokens`` may start, and reserve it."""
        if not self.enabled:
            return
        async with self._lock:
            # A microsecond of slack: float rounding can leave a sliver of a wait that never quite ends.
            while (wait := self.wait_s(tokens)) > 1e-6:
                await self._sleep(wait)
            self.take(tokens)

    def settle(self, reserved: float, used: float | None) -> None:
        """After a request: correct its reservation to the tokens it used (``used`` None keeps the reservation)."""
        if self.tokens is None or used is None:
            return
        if used < reserved:
            self.tokens.give_back(reserved - used, self._clock())
        else:  # the estimate was low: the excess is owed
            self.tokens.take(used - reserved, self._clock())


class Throttle:
    """How many requests of the run may be in flight, and a pause they all wait out: the run slows down as
    a whole when the server says it is rate-limited, instead of each request hammering on its own.

    A 429 halves the allowed in-flight requests (at least one) and a success adds one back for every
    ``limit`` successes, up to ``run.concurrency``: additive increase, multiplicative decrease, as TCP
    and Inspect AI's adaptive connections do. Only a 429 to a request sent since the last decrease halves
    again, so the answers to a burst sent at the old limit count once. A server-given wait (``Retry-After``
    and the like) pauses every request until it has passed, not only the one that was told.
    """

    def __init__(self, ceiling: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.in_flight = 0
        self.paused_until = 0.0
        self._clock = clock
        self._sleep = sleep
        self._epoch = 0  # bumped at each decrease; a request carries the epoch it was sent in
        self._successes = 0
        self._waiters: list[asyncio.Future[None]] = []

    def pause_s(self) -> float:
        """Seconds until the shared pause ends (0 when there is none)."""
        return max(0.0, self.paused_until - self._clock())

    def try_acquire(self) -> int | None:
        """Take an in-flight slot at once if there is no pause and one is free (the epoch, as ``acquire``),
        else None: the usual case costs no task and no wait."""
        if self.in_flight < self.limit and self.paused_until <= self._clock():
            self.in_flight += 1
            return self._epoch
        return None

    async def acquire(self) -> int:
        """Wait out any pause and for an in-flight slot, and take it; returns the epoch to give ``done``."""
        while True:
            # A microsecond of slack, as in RateLimiter.acquire.
            if (wait := self.pause_s()) > 1e-6:
                await self._sleep(wait)
                continue
            if self.in_flight < self.limit:
                self.in_flight += 1
                return self._epoch
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def release(self) -> None:
        """Give back an in-flight slot."""
        self.in_flight -= 1
        self._wake()

    def done(self, epoch: int, *, ok: bool, rate_limited: bool) -> None:
        """After an attempt sent in ``epoch``: grow back on a success, halve on a 429."""
        if ok:
            self._successes += 1
            if self._successes >= self.limit and self.limit < self.ceiling:
                self.limit += 1
                self._successes = 0
                self._wake()
        elif rate_limited and epoch == self._epoch:
            self.limit = max(1, self.limit // 2)
            self._epoch += 1
            self._successes = 0

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now (a later pause already set stands)."""
        self.paused_until = max(self.paused_until, self._clock() + seconds)

    def _wake(self) -> None:
        # Every waiter checks again; they are at most run.concurrency workers.
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
