"""Sending a load run: level after level, each open-loop (every request when it is due, whether or not earlier
ones have finished) or closed-loop (a fixed number in flight).

An open loop that cannot keep up must say so rather than quietly turning into a closed one: each record keeps
when it was due and when its first attempt was written, on the same monotonic clock, and ``schedule_lag_s`` is
the difference. The lag includes any wait for ``max_in_flight``, for ``run.rpm``/``tpm`` and for the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from evalharness.errors import RunAborted
from evalharness.load.options import LoadOptions
from evalharness.load.plan import Level
from evalharness.plan import WorkItem
from evalharness.ratelimit import Throttle
from evalharness.remote import Remote
from evalharness.runner import Runner
from evalharness.types import Record


def _iso(wall_ns: int) -> str:
    """As ``started_at`` is written: UTC, milliseconds."""
    return datetime.fromtimestamp(wall_ns / 1e9, UTC).isoformat(timespec="milliseconds")


#: The event loop's timers may fire a little early; the last stretch before a due time is waited out here.
SPIN_NS = 200_000


async def _until(due: int) -> None:
    """Wait until ``perf_counter_ns()`` reaches ``due``: never early (a request is never sent before it is due)."""
    while (left := due - time.perf_counter_ns()) > SPIN_NS:
        await asyncio.sleep((left - SPIN_NS) / 1e9)
    while time.perf_counter_ns() < due:
        pass


def connections(concurrency: int, load: LoadOptions | None) -> int:
    """The client's connection pool: enough for every request a level may have in flight, so none waits for
    a connection unseen (a wait for ``max_in_flight`` shows in the lag instead)."""
    if load is None:
        return concurrency
    if load.arrival == "closed":
        return int(max([concurrency, *(load.concurrency or ())]))
    return max(concurrency, load.worker_in_flight)


class LoadDriver:
    """``Runner.run(drive=...)`` for a load run: the plan's levels in order, grid point by grid point.

    With ``load.workers`` above 1, ``spread(remote)`` gives the driver of one target whose levels are sent
    by that many processes (load/spread.py); ``remote`` is what those processes need to reach the target.
    """

    def __init__(self, load: LoadOptions, levels: Sequence[Level], remote: Remote | None = None) -> None:
        self.load = load
        self.levels = levels
        self.remote = remote

    def spread(self, remote: Remote) -> LoadDriver:
        return LoadDriver(self.load, self.levels, remote)

    async def __call__(self, runner: Runner, items: list[WorkItem]) -> None:
        todo = {item.item_id: item for item in items}
        pending = [(level, [(i, todo[item_id]) for i, item_id in enumerate(level.item_ids) if item_id in todo])
                   for level in self.levels]
        pending = [(level, mine) for level, mine in pending if mine]
        if not pending:
            return
        if self.remote is not None:  # given by spread(): load.workers above 1
            from evalharness.load.spread import Spread  # multiprocessing: imported only when asked for

            async with Spread(self.load, self.remote, runner) as spread:
                for level, mine in pending:
                    if runner.stopping:
                        return
                    await spread.send(level, mine)
            return
        for level, mine in pending:
            if runner.stopping:
                return
            await LevelRun(runner, level, Clock.now(level, mine)).send(mine, self.load.max_in_flight)


@dataclass(frozen=True)
class Clock:
    """A level's clock: ``perf_counter_ns`` and wall time of its start, read together, and the offset of its
    first item to send (a resumed level starts with its first unsent item due at the start). Every process
    sending a share of the level uses the same one (``perf_counter`` is the system's monotonic clock)."""

    t0: int
    wall0: int
    start: float

    @classmethod
    def now(cls, level: Level, items: list[tuple[int, WorkItem]], lead_ns: int = 0) -> Clock:
        start = level.offsets[items[0][0]] if level.offsets is not None else 0.0
        return cls(time.perf_counter_ns() + lead_ns, time.time_ns() + lead_ns, start)


class LevelRun:
    """One level (or one worker's share of it): its clock and the sends of its items."""

    def __init__(self, runner: Runner, level: Level, clock: Clock, worker: int | None = None) -> None:
        self.runner = runner
        self.level = level
        self.sent: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.wall0 = clock.wall0
        self.t0 = clock.t0
        self.start = clock.start
        self.worker = worker

    async def send(self, items: list[tuple[int, WorkItem]], max_in_flight: int) -> None:
        runner = self.runner
        runner.on_send = lambda item, ns: self.sent.__setitem__(item.item_id, ns)
        try:
            if self.level.offsets is None:
                runner.throttle = Throttle(int(self.level.value))
                await self._closed(items, int(self.level.value))
            else:
                runner.throttle = Throttle(max_in_flight)
                self.max_in_flight = max_in_flight
                await self._open(items, self.level.offsets)
        finally:
            runner.on_send = None

    async def _open(self, items: list[tuple[int, WorkItem]], offsets: Sequence[float]) -> None:
        start = self.start
        tasks: set[asyncio.Task[None]] = set()
        failed: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            # A request that raised (a bug, never a failed request: those are records) stops the level and is
            # raised below, rather than lost with its record.
            if not task.cancelled() and (exc := task.exception()) is not None:
                failed.append(exc)
                self.runner.stop(RunAborted(f"a request raised {type(exc).__name__}: {exc}"))

        try:
            for index, item in items:
                if self.runner.stopping:
                    break
                due = self.t0 + round((offsets[index] - start) * 1e9)
                await _until(due)
                # Due while max_in_flight are out: it waits for a slot (its lag shows how long), and says so.
                capped = self.in_flight >= self.max_in_flight
                task = asyncio.create_task(self._one(item, due, warmup=index < self.level.warmup, capped=capped))
                tasks.add(task)
                task.add_done_callback(finished)
            if tasks:
                await asyncio.gather(*tasks)
            if failed:
                raise failed[0]
        finally:
            for task in tasks:  # cancelled (a second Ctrl-C): what is in flight is not recorded
                task.cancel()

    async def _closed(self, items: list[tuple[int, WorkItem]], concurrency: int) -> None:
        queue = list(reversed(items))

        async def worker() -> None:
            while queue and not self.runner.stopping:
                _, item = queue.pop()
                due = time.perf_counter_ns()  # due when a slot frees: as soon as the last one ended
                await self._one(item, due, warmup=(due - self.t0) / 1e9 < self.level.warmup_s)

        workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(items)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()

    async def _one(self, item: WorkItem, due: int, *, warmup: bool, capped: bool = False) -> None:
        self.in_flight += 1
        try:
            record = await self.runner.execute(item)
        finally:
            self.in_flight -= 1
        if record is None:
            return
        sent = self.sent.pop(item.item_id)
        self._annotate(record, due, sent, warmup)
        if self.level.offsets is not None:
            record["capped"] = capped
        self.runner.store(record)

    def _annotate(self, record: Record, due: int, sent: int, warmup: bool) -> None:
        attempts = record["attempts"]
        assert isinstance(attempts, list)
        # Done when the last attempt ended: the first's e2e, then each retry's wait and e2e.
        span = sum((a["e2e_s"] or 0.0) + (a["queue_s"] if i else 0.0) for i, a in enumerate(attempts))
        sent_s = (sent - self.t0) / 1e9
        record["scheduled_at"] = _iso(self.wall0 + due - self.t0)
        record["sent_at"] = _iso(self.wall0 + sent - self.t0)
        record["schedule_lag_s"] = (sent - due) / 1e9
        record["load_clock"] = {"due_s": (due - self.t0) / 1e9, "sent_s": sent_s, "done_s": sent_s + span}
        record["warmup"] = warmup
        if self.worker is not None:
            record["load_worker"] = self.worker
