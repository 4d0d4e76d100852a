"""The runner: executes work items concurrently, retries what is worth retrying, and stores each record.

Per-request work stays small: the request body is built before timing starts, and a record is one
JSON line appended and flushed after the response has been timed.

An item is either stored whole (one record, with every attempt it took) or not at all: an item cut short
by a stop (Ctrl-C, the budget, a local server that died) between attempts is left unrecorded, so
``--resume`` sends it again, and a recorded item is never sent again.

Budget: before each attempt the worst case (estimated prompt + max_tokens) is reserved; after it, the cost
from ``usage`` is charged, or the whole worst case when the server reported no usage for an attempt it
may have billed (tokens counted with the server's tokenizer afterwards are for the reports, not the budget:
a counted prompt may be an estimate, and a budget must not under-charge). ``budget_charge`` in a record is
what the item was charged, so a resumed run starts from what the earlier part spent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from evalharness import backend as kinds
from evalharness.backend import Backend, Outcome
from evalharness.config import Pricing, RunOptions
from evalharness.errors import (
    BudgetExhausted,
    RunAborted,
    RunInterrupted,
    SystematicFailure,
    TargetCrashed,
    TargetUnreachable,
)
from evalharness.health import CHECK_PROMPT, TargetHealth
from evalharness.hints import failure_hint
from evalharness.params import build_body
from evalharness.plan import WorkItem
from evalharness.progress import Progress
from evalharness.ratelimit import RateLimiter, Throttle
from evalharness.store import ResultWriter
from evalharness.tokens import Counted, TokenCounter
from evalharness.types import Attempt, Record, Usage
from evalharness.usage import cached_saving, cost_of

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
RETRY_KINDS = frozenset({kinds.TIMEOUT, kinds.CONNECT, kinds.STREAM_BROKEN, kinds.STREAM_INCOMPLETE})
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
# The run stops when this many requests in a row have all failed the same way and none has succeeded.
SYSTEMATIC_AFTER = 5
# Responses that carry usage whose tokens are counted too, to tell the server's counts from a gateway's
# estimate (usage.usage_check); the first ones of the run, so the extra requests stay few.
USAGE_CHECK_SAMPLE = 8
# A request without max_tokens is reserved against the budget at this many output tokens.
UNBOUNDED_MAX_TOKENS = 4096


def is_retryable(outcome: Outcome) -> bool:
    if outcome.ok:
        return False
    if outcome.error_kind == kinds.HTTP:
        return outcome.status in RETRY_STATUS or (outcome.status or 0) >= 500
    return outcome.error_kind in RETRY_KINDS


def backoff_s(attempt: int, retry_after: float | None, rng: random.Random, cap_s: float) -> float:
    """Full-jitter exponential backoff; a server's Retry-After (or the like) wins when it is given, cut to
    ``cap_s`` (``run.max_retry_wait_s``)."""
    if retry_after is not None:
        return min(retry_after, cap_s)
    return rng.uniform(0, min(BACKOFF_CAP_S, cap_s, BACKOFF_BASE_S * 2 ** attempt))


def tokens_used(usage: Usage | None) -> int | None:
    """Prompt + completion tokens from ``usage`` (whose counts are numbers: see ``Outcome.usage``)."""
    if not usage:
        return None
    return int((usage.get("prompt_tokens") or 0) + (usage.get("completion_tokens") or 0))


def may_be_billed(outcome: Outcome) -> bool:
    """Whether the server may have generated (and billed) tokens for this attempt.

    An HTTP error status or a refused connection means the request was turned away before any generation;
    anything else (a timeout, a broken stream, a garbled body) may have cost tokens.
    """
    if outcome.error_kind == kinds.CONNECT:
        return False
    return not (outcome.error_kind == kinds.HTTP and (outcome.status or 0) >= 400)


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """A deliberately high estimate (2 characters a token) for reservations against budget and tpm."""
    return sum(len(str(m.get("content", ""))) for m in messages) // 2 + 16


@dataclass
class RunState:
    """Counters shared by the workers and the progress line."""

    total: int
    done: int = 0
    errors: int = 0
    spent: float = 0.0
    reserved: float = 0.0
    # Why the run stops early, as the error ``run`` raises once in-flight items are done (None: it did not).
    stop: RunAborted | None = None
    error_kinds: Counter[str] = field(default_factory=Counter)
    streak_key: str | None = None
    streak: int = 0
    any_ok: bool = False
    interrupts: int = 0


@dataclass
class Purse:
    """What the run has spent and holds reserved against ``run.budget``: one for the run, shared by the
    runners of its targets, so the budget bounds the whole run."""

    spent: float = 0.0
    reserved: float = 0.0


class Runner:
    """Runs work items against one target and appends a record per finished item."""

    def __init__(self, backend: Backend, *, model: str, options: RunOptions, pricing: Pricing,
                 writer: ResultWriter, api_key_env: str | None = None, progress: Progress | None = None,
                 seed: int = 0, counter: TokenCounter | None = None,
                 check_target: Callable[[], Awaitable[None]] | None = None, purse: Purse | None = None) -> None:
        self.backend = backend
        # Spend against the budget; given, it is shared with other runners (one per target).
        self.purse = purse or Purse()
        self._shared_purse = purse is not None
        # Counts tokens for responses that carry no usage (see tokens.py); None: such responses stay uncounted.
        self.counter = counter
        # For a server the harness started: raises TargetCrashed once it has died (see local.py).
        self.check_target = check_target
        self.model = model
        self.options = options
        self.pricing = pricing
        self.writer = writer
        self.api_key_env = api_key_env
        self.progress = progress
        self.rng = random.Random(seed)
        self.limiter = RateLimiter(options.rpm, options.tpm)
        self.throttle = Throttle(options.concurrency)
        # Streaks of "nothing there" failures across items, and the check that ends the run on one.
        self.health = TargetHealth(self._send_check)
        self._stop = asyncio.Event()
        self._interrupted = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self.state = RunState(total=0)
        self._usage_checks = 0
        #: Called with an item and the perf_counter_ns at which its first attempt is written (load/driver.py).
        self.on_send: Callable[[WorkItem, int], None] | None = None

    @property
    def stopping(self) -> bool:
        """Whether the run has been told to stop scheduling new items."""
        return self._stop.is_set()

    def stop(self, reason: RunAborted) -> None:
        """Stop scheduling new items; in-flight ones finish. The first reason given is the one raised."""
        if self.state.stop is None:
            self.state.stop = reason
        self._stop.set()

    def interrupt(self) -> None:
        """Ctrl-C or SIGTERM: the first stops scheduling and lets in-flight requests finish; the second
        cancels them (they are not recorded, so a resume sends them again)."""
        self.state.interrupts += 1
        self.stop(RunInterrupted("interrupted"))
        self._interrupted.set()
        if self.state.interrupts == 1:
            busy = sum(not w.done() for w in self._workers)
            if busy:
                print(f"\nStopping: letting {busy} in-flight request(s) finish (Ctrl-C again to cancel them)",
                      file=sys.stderr, flush=True)
            return
        for worker in self._workers:
            worker.cancel()

    async def run(self, items: Iterable[WorkItem], *, total: int, spent: float = 0.0,
                  signals: bool = True,
                  drive: Callable[[Runner, list[WorkItem]], Coroutine[Any, Any, None]] | None = None) -> RunState:
        """Run every item (stopping early on budget, interruption or systematic failure).

        ``spent`` is what earlier parts of a resumed run were charged against ``run.budget`` (unless a shared
        purse keeps it); ``signals`` False leaves Ctrl-C to the caller (who runs several runners at once).
        ``drive`` sends the items its own way (a load run's schedule, load/driver.py) through ``execute`` and
        ``store``, instead of ``run.concurrency`` workers taking them in order.
        """
        self.state = RunState(total=total, spent=spent)
        if not self._shared_purse:
            self.purse = Purse(spent=spent)
        queue: asyncio.Queue[WorkItem] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        loop = asyncio.get_running_loop()
        installed = _install_signal_handlers(loop, self.interrupt) if signals else []
        if self.progress:
            self.progress.start(self.state)
        # What exists before the first request (modules, config, plan) is never garbage, yet each full
        # collection scans all of it and stalls the event loop (20-60 ms in bench/bench_timing.py), which lands
        # in whichever requests are in flight. Frozen, it is skipped.
        gc.collect()
        gc.freeze()
        try:
            if drive is not None:
                self._workers = [asyncio.create_task(drive(self, [queue.get_nowait() for _ in range(queue.qsize())]))]
            else:
                self._workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.options.concurrency)]
            results = await asyncio.gather(*self._workers, return_exceptions=True)
        finally:
            gc.unfreeze()
            for sig in installed:
                loop.remove_signal_handler(sig)
            if self.progress:
                self.progress.finish(self.state)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        stop = self.state.stop
        if isinstance(stop, RunInterrupted):
            # Said now: how far the run got is known once the in-flight requests have finished.
            cancelled = " (in-flight requests cancelled)" if self.state.interrupts > 1 else ""
            raise RunInterrupted(f"interrupted after {self.state.done} of {total} requests{cancelled}")
        if stop is not None:
            raise stop
        return self.state

    async def _worker(self, queue: asyncio.Queue[WorkItem]) -> None:
        while not self._stop.is_set():
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            record = await self.execute(item)
            if record is None:
                return
            self.store(record)

    async def execute(self, item: WorkItem) -> Record | None:
        """Every attempt at one item, and its record (None: the run stopped first; the item stays unrecorded)."""
        return await self._execute(item)

    def store(self, record: Record) -> None:
        """Append a finished item's record and count it."""
        self.writer.write(record)
        self._account(record)

    def _reserve(self, worst: float) -> bool:
        """Reserve ``worst`` against the budget; False if it does not fit."""
        budget = self.options.budget
        if budget is None:
            return True
        purse = self.purse
        if purse.spent + purse.reserved + worst > budget:
            return False
        purse.reserved += worst
        return True

    def _release(self, worst: float) -> None:
        if self.options.budget is not None:
            self.purse.reserved -= worst

    async def _unless_interrupted(self, waiting: Awaitable[object]) -> bool:
        """Await ``waiting`` (a backoff or a rate-limit wait) unless Ctrl-C comes first; False if it did.

        Waits can be long (a Retry-After, a low tpm), and an interrupted run should stop now, not then.
        """
        task = asyncio.ensure_future(waiting)
        interrupted = asyncio.ensure_future(self._interrupted.wait())
        try:
            await asyncio.wait({task, interrupted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupted.cancel()
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return not self._interrupted.is_set()

    async def _execute(self, item: WorkItem) -> Record | None:
        """All attempts at one item: its record, or None if the run stopped before the item was done."""
        body = build_body(self.model, item.messages, item.params, stream=self.options.stream)
        prompt_tokens = estimate_prompt_tokens(item.messages)
        out_tokens = item.params.get("max_tokens") or UNBOUNDED_MAX_TOKENS
        worst_tokens = prompt_tokens + out_tokens
        worst_cost = prompt_tokens / 1000 * self.pricing.input_per_1k + out_tokens / 1000 * self.pricing.output_per_1k
        attempts: list[Attempt] = []
        started: str | None = None
        charged = 0.0
        # An attempt's queue_s runs from when it could have gone (the item's start, or the end of the attempt
        # before it) to when it is sent: the waits for a slot, a rate limit and a retry all count.
        ready = time.perf_counter_ns()
        while True:
            # A target that stopped answering holds every item here while it is checked (the wait counts in
            # queue_s like any other); once it is found unreachable the run stops.
            if self.health.checking:
                await self.health.ready()
            if self.health.unreachable:
                return None
            if not self._reserve(worst_cost):
                self.stop(BudgetExhausted(
                    f"budget: the next request could push spend past the budget of {self.options.budget} "
                    f"{self.pricing.currency} (spent {self.purse.spent:.6f}); raise run.budget to go on"))
                return None
            try:
                epoch = await self._admitted()
                if epoch is None:
                    return None
                try:
                    if self.limiter.enabled and not await self._unless_interrupted(
                            self.limiter.acquire(worst_tokens)):
                        return None
                    started = started or datetime.now(UTC).isoformat(timespec="milliseconds")
                    sent = time.perf_counter_ns()
                    if self.on_send is not None and not attempts:
                        self.on_send(item, sent)
                    outcome = await self.backend.complete(body)
                finally:
                    self.throttle.release()
            finally:
                self._release(worst_cost)
            self.throttle.done(epoch, ok=outcome.ok, rate_limited=outcome.status == 429)
            billed = may_be_billed(outcome)
            cost = cost_of(outcome.usage, self.pricing)
            # No usage for an attempt that may have been billed: charge the worst case, never nothing.
            charge = (worst_cost if cost is None else cost) if billed else 0.0
            charged += charge
            self.state.spent += charge
            self.purse.spent += charge
            self.limiter.settle(worst_tokens, tokens_used(outcome.usage) if billed else 0)
            if outcome.error_kind in RETRY_KINDS:
                await self._check_target()
            if await self._gone(outcome):
                return None  # unrecorded, like any item a stop cuts short: --resume sends it again
            attempts.append({"status": outcome.status, "error_kind": outcome.error_kind, "error": outcome.error,
                             "queue_s": (sent - ready) / 1e9, "e2e_s": outcome.e2e_s})
            if outcome.retry_after_s is not None:
                attempts[-1]["retry_after_s"] = round(outcome.retry_after_s, 3)
                attempts[-1]["retry_after_header"] = outcome.retry_after_header
            if outcome.ok or not is_retryable(outcome) or len(attempts) > self.options.max_retries:
                break
            ready = time.perf_counter_ns()
            if not await self._wait_to_retry(outcome, attempts):
                return None
        assert started is not None
        counted = await self._count(body, outcome)
        if counted is not None:
            cost = cost_of(counted.usage, self.pricing)
        return self._record(item, outcome, attempts, started, charged, cost, counted,
                            await self._check_usage(body, outcome))

    async def _admitted(self) -> int | None:
        """An in-flight slot from the throttle (the epoch it was given in), or None if Ctrl-C came first."""
        epoch = self.throttle.try_acquire()
        if epoch is not None:
            return epoch
        task = asyncio.ensure_future(self.throttle.acquire())
        if await self._unless_interrupted(task):
            return task.result()
        if task.done() and not task.cancelled() and task.exception() is None:
            self.throttle.release()  # the slot came at the same moment as the interrupt
        return None

    async def _wait_to_retry(self, outcome: Outcome, attempts: list[Attempt]) -> bool:
        """Back off before the next attempt (its wait recorded on the last one); False if Ctrl-C came first.

        A wait the server asked for pauses the whole run (the next attempt waits it out in the throttle,
        with every other request); without one, this item alone backs off with jitter.
        """
        wait = backoff_s(len(attempts) - 1, outcome.retry_after_s, self.rng, self.options.max_retry_wait_s)
        attempts[-1]["wait_s"] = round(wait, 3)
        if outcome.retry_after_s is not None:
            self.throttle.pause(wait)
            return True
        return await self._unless_interrupted(asyncio.sleep(wait))

    async def _count(self, body: dict[str, Any], outcome: Outcome) -> Counted | None:
        """Token counts from the server's tokenizer for a completed response that carried no usage.

        Called once the response is timed and before the record is written: the tokenize requests are in
        no measured interval, and the next item's queue time starts after them.
        """
        if self.counter is None or outcome.usage is not None or not outcome.ok:
            return None
        return await self.counter.count(body, outcome)

    async def _check_usage(self, body: dict[str, Any], outcome: Outcome) -> dict[str, Any] | None:
        """For the first responses that carry usage: their tokens counted with the server's tokenizer too,
        stored beside the reported usage (not instead of it). Outside any measured interval, like ``_count``."""
        if (self.counter is None or outcome.usage is None or not outcome.ok
                or self._usage_checks >= USAGE_CHECK_SAMPLE):
            return None
        self._usage_checks += 1
        counted = await self.counter.count(body, outcome)
        return None if counted is None else {**counted.usage, **counted.describe()}

    async def _gone(self, outcome: Outcome) -> bool:
        """Whether this failed attempt completed a streak after which the target is given up on."""
        if outcome.ok and self.health.unreachable is None:
            self.health.answered()
            return False
        reason = await self.health.observe(outcome)
        if reason is None:
            return False
        self.stop(TargetUnreachable(reason))
        # Items waiting out a backoff stop waiting now, as on Ctrl-C: the run ends within seconds.
        self._interrupted.set()
        return True

    async def _send_check(self) -> Outcome:
        """The tiny request that tells a dead target from a run of bad luck (one token, not streamed)."""
        body = build_body(self.model, [{"role": "user", "content": CHECK_PROMPT}],
                          {"max_tokens": 1, "temperature": 0}, stream=False)
        return await self.backend.complete(body)

    async def _check_target(self) -> None:
        """After a request failed on the way: a dead server stops the run at once, the item unrecorded."""
        if self.check_target is None:
            return
        try:
            await self.check_target()
        except TargetCrashed as exc:
            self.stop(exc)
            raise

    def _record(self, item: WorkItem, outcome: Outcome, attempts: list[Attempt], started: str,
                charged: float, cost: float | None, counted: Counted | None = None,
                usage_check: dict[str, Any] | None = None) -> Record:
        error = outcome.error
        if not outcome.ok and not is_retryable(outcome):
            hint = failure_hint(outcome.status, outcome.server_error, self.api_key_env, params=item.params,
                                key_is_set=bool(self.api_key_env and os.environ.get(self.api_key_env)))
            if hint:
                error = f"{error} — {hint}"
        return {
            "item_id": item.item_id, "cell_id": item.cell_id, "suite": item.suite, "case_id": item.case_id,
            "repeat": item.repeat, "params": item.params, "target": item.target, "started_at": started,
            "ok": outcome.ok, "http_status": outcome.status, "error_kind": outcome.error_kind, "error": error,
            "content": outcome.content, "reasoning": outcome.reasoning, "tool_calls": outcome.tool_calls,
            "finish_reason": outcome.finish_reason, "usage": counted.usage if counted else outcome.usage,
            # Counted usage is marked as such on the record and in every figure built from it.
            "usage_source": "server" if outcome.usage else "counted" if counted else None,
            "usage_count": counted.describe() if counted else None,
            "cost": cost, "cached_saving": cached_saving(outcome.usage, self.pricing),
            "budget_charge": charged, "logprobs": outcome.logprobs,
            # Timings are those of the last attempt; queue_s is its wait for a slot, a rate limit or a retry.
            "timings": {"queue_s": attempts[-1]["queue_s"], "ttft_s": outcome.ttft_s, "ttfc_s": outcome.ttfc_s,
                        "e2e_s": outcome.e2e_s, "chunk_times": outcome.chunk_times},
            "attempts": attempts, "response_id": outcome.response_id, "usage_check": usage_check,
        }

    def _account(self, record: Record) -> None:
        st = self.state
        st.done += 1
        if record["ok"]:
            st.any_ok = True
            st.streak_key, st.streak = None, 0
            return
        st.errors += 1
        st.error_kinds[record["error_kind"] or "unknown"] += 1
        key = f"{record['error_kind']}:{record['http_status']}"
        st.streak = st.streak + 1 if key == st.streak_key else 1
        st.streak_key = key
        if not st.any_ok and st.streak >= min(SYSTEMATIC_AFTER, st.total):
            self.stop(SystematicFailure(
                f"the first {st.streak} requests all failed the same way: {record['error']}"))


def _install_signal_handlers(loop: asyncio.AbstractEventLoop, on_signal: Callable[[], None]) -> list[int]:
    installed: list[int] = []
    if sys.platform == "win32":
        return installed
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (RuntimeError, ValueError):  # not the main thread
            pass
    return installed
