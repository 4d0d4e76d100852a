"""The runner: executes work items concurrently, retries what is worth retrying, and stores each record.

Per-request work stays small: the request body is built before timing starts, and a record is one
JSON line appended and flushed after the response has been timed.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from evalharness import client as kinds
from evalharness.client import ChatClient, Outcome
from evalharness.config import Pricing, RunOptions
from evalharness.errors import BudgetExhausted, RunInterrupted, SystematicFailure
from evalharness.params import build_body
from evalharness.plan import WorkItem
from evalharness.progress import Progress
from evalharness.store import ResultWriter

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
RETRY_KINDS = frozenset({kinds.TIMEOUT, kinds.CONNECT, kinds.STREAM_BROKEN, kinds.STREAM_INCOMPLETE})
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
# The run stops when this many requests in a row have all failed the same way and none has succeeded.
SYSTEMATIC_AFTER = 5
# A request without max_tokens is reserved against the budget at this many output tokens.
UNBOUNDED_MAX_TOKENS = 4096


def is_retryable(outcome: Outcome) -> bool:
    if outcome.ok:
        return False
    if outcome.error_kind == kinds.HTTP:
        return outcome.status in RETRY_STATUS or (outcome.status or 0) >= 500
    return outcome.error_kind in RETRY_KINDS


def backoff_s(attempt: int, retry_after: float | None, rng: random.Random) -> float:
    """Full-jitter exponential backoff; a server's Retry-After wins when it is given."""
    if retry_after is not None:
        return min(retry_after, BACKOFF_CAP_S * 4)
    return rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** attempt))


def failure_hint(outcome: Outcome, api_key_env: str | None) -> str | None:
    """What to do about a non-retryable failure."""
    if outcome.status == 401:
        return f"the API key was rejected; set {api_key_env or 'the API key variable'} to a valid key"
    if outcome.status == 403:
        return "the API key is not allowed to use this model or endpoint"
    if outcome.status == 404:
        return "the endpoint or model was not found; check target.base_url and target.model"
    if outcome.status in (400, 422):
        return "the server rejected the request body; a parameter may be unsupported by this server"
    return None


def cost_of(usage: dict[str, Any] | None, pricing: Pricing) -> float | None:
    if not usage:
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return prompt / 1000 * pricing.input_per_1k + completion / 1000 * pricing.output_per_1k


@dataclass
class RunState:
    """Counters shared by the workers and the progress line."""

    total: int
    done: int = 0
    errors: int = 0
    spent: float = 0.0
    reserved: float = 0.0
    stop_reason: str | None = None
    error_kinds: Counter[str] = field(default_factory=Counter)
    streak_key: str | None = None
    streak: int = 0
    any_ok: bool = False


class Runner:
    """Runs work items against one target and appends a record per finished item."""

    def __init__(self, chat: ChatClient, *, model: str, options: RunOptions, pricing: Pricing,
                 writer: ResultWriter, api_key_env: str | None = None, progress: Progress | None = None,
                 seed: int = 0) -> None:
        self.chat = chat
        self.model = model
        self.options = options
        self.pricing = pricing
        self.writer = writer
        self.api_key_env = api_key_env
        self.progress = progress
        self.rng = random.Random(seed)
        self._stop = asyncio.Event()
        self.state = RunState(total=0)
        self.on_record: Callable[[dict[str, Any]], None] | None = None

    def stop(self, reason: str) -> None:
        """Stop scheduling new items; in-flight ones finish."""
        if self.state.stop_reason is None:
            self.state.stop_reason = reason
        self._stop.set()

    async def run(self, items: Iterable[WorkItem], *, total: int) -> RunState:
        """Run every item (stopping early on budget, interruption or systematic failure)."""
        self.state = RunState(total=total)
        queue: asyncio.Queue[WorkItem] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        loop = asyncio.get_running_loop()
        installed = _install_signal_handlers(loop, lambda: self.stop("interrupted"))
        if self.progress:
            self.progress.start(self.state)
        try:
            workers = [asyncio.create_task(self._worker(queue)) for _ in range(self.options.concurrency)]
            await asyncio.gather(*workers)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            if self.progress:
                self.progress.finish(self.state)
        reason = self.state.stop_reason
        if reason == "interrupted":
            raise RunInterrupted(f"interrupted after {self.state.done} of {total} requests")
        if reason and reason.startswith("budget"):
            raise BudgetExhausted(reason)
        if reason and reason.startswith("systematic"):
            raise SystematicFailure(reason.removeprefix("systematic: "))
        return self.state

    async def _worker(self, queue: asyncio.Queue[WorkItem]) -> None:
        while not self._stop.is_set():
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            record = await self._execute(item)
            if record is None:
                return
            self.writer.write(record)
            self._account(record)
            if self.on_record:
                self.on_record(record)

    def _reserve(self, item: WorkItem) -> float | None:
        """Reserve the worst-case cost of ``item`` against the budget; None if it does not fit."""
        budget = self.options.budget
        if budget is None:
            return 0.0
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in item.messages) // 2 + 16
        out_tokens = item.params.get("max_tokens") or UNBOUNDED_MAX_TOKENS
        worst = prompt_tokens / 1000 * self.pricing.input_per_1k + out_tokens / 1000 * self.pricing.output_per_1k
        if self.state.spent + self.state.reserved + worst > budget:
            return None
        self.state.reserved += worst
        return worst

    async def _execute(self, item: WorkItem) -> dict[str, Any] | None:
        body = build_body(self.model, item.messages, item.params, stream=self.options.stream)
        picked = time.perf_counter_ns()
        reservation = self._reserve(item)
        if reservation is None:
            self.stop(f"budget: the next request could push spend past the budget of "
                      f"{self.options.budget} {self.pricing.currency} (spent {self.state.spent:.6f})")
            return None
        attempts: list[dict[str, Any]] = []
        started = datetime.now(UTC).isoformat(timespec="milliseconds")
        try:
            while True:
                sent = time.perf_counter_ns()
                outcome = await self.chat.complete(body)
                attempt = {"status": outcome.status, "error_kind": outcome.error_kind, "error": outcome.error,
                           "e2e_s": outcome.e2e_s}
                attempts.append(attempt)
                if outcome.ok or not is_retryable(outcome) or len(attempts) > self.options.max_retries:
                    break
                if self._stop.is_set() and self.state.stop_reason == "interrupted":
                    break
                wait = backoff_s(len(attempts) - 1, outcome.retry_after_s, self.rng)
                attempt["wait_s"] = round(wait, 3)
                await asyncio.sleep(wait)
        finally:
            self.state.reserved -= reservation
        queue_s = (sent - picked) / 1e9 if len(attempts) == 1 else None
        return self._record(item, outcome, attempts, started, queue_s)

    def _record(self, item: WorkItem, outcome: Outcome, attempts: list[dict[str, Any]], started: str,
                queue_s: float | None) -> dict[str, Any]:
        error = outcome.error
        if not outcome.ok and not is_retryable(outcome):
            hint = failure_hint(outcome, self.api_key_env)
            if hint:
                error = f"{error} — {hint}"
        return {
            "item_id": item.item_id, "cell_id": item.cell_id, "suite": item.suite, "case_id": item.case_id,
            "repeat": item.repeat, "params": item.params, "started_at": started,
            "ok": outcome.ok, "http_status": outcome.status, "error_kind": outcome.error_kind, "error": error,
            "content": outcome.content, "reasoning": outcome.reasoning, "tool_calls": outcome.tool_calls,
            "finish_reason": outcome.finish_reason, "usage": outcome.usage,
            "cost": cost_of(outcome.usage, self.pricing), "logprobs": outcome.logprobs,
            "timings": {"queue_s": queue_s, "ttft_s": outcome.ttft_s, "ttfc_s": outcome.ttfc_s,
                        "e2e_s": outcome.e2e_s, "chunk_times": outcome.chunk_times},
            "attempts": attempts, "response_id": outcome.response_id,
        }

    def _account(self, record: dict[str, Any]) -> None:
        st = self.state
        st.done += 1
        st.spent += record["cost"] or 0.0
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
            self.stop(f"systematic: the first {st.streak} requests all failed the same way: {record['error']}")


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
