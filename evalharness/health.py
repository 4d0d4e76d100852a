"""Is the target still there? Failure streaks across the whole run, and the check that settles it.

A backend that dies in the middle of a run (the model server behind a gateway, a crashed pod) turns every
later request into the same failure: a refused connection, a timeout, or a gateway's ``HTTP 500 … Connection
error``. Retrying each item on its own spends minutes and every item's retries on a target that is gone.
So the runner counts *consecutive* failed attempts of one unreachable kind across all items (any answer
resets the count); at ``SUSPECT_AFTER`` it pauses new attempts and asks the target once more with a tiny
request. If that fails the same way, the run stops as "target unreachable" (exit 3, resumable) and says what
the last responses said; if it answers, the run goes on as before.

Other failures (a 429, a 400, a 503 without a connection error in its body) say the target is there and
answering: they never start a check.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from evalharness import backend as kinds
from evalharness.backend import Outcome

#: Consecutive unreachable-looking failed attempts (across items) that start a check of the target.
SUSPECT_AFTER = 5
#: Check requests before the target is given up on, and the pause between them: a backend that is
#: restarting gets a moment to come back, and the run still ends within seconds of a real death.
CHECK_TRIES = 2
CHECK_PAUSE_S = 1.0
#: Distinct error messages the stop reason quotes.
QUOTED = 3

# What gateways and proxies put in a 5xx body when they could not reach the backend: LiteLLM's
# "OpenAIException - Connection error.", Envoy's "upstream connect error", nginx's "connect() failed",
# "Connection refused", "no healthy upstream", "Name or service not known".
_CONNECTION_WORDS = re.compile(
    r"connection (?:error|refused|reset|failed|aborted)|connect(?:ion)?error|cannot connect|connect\(\) failed|"
    r"upstream connect|no healthy upstream|could not connect|failed to connect|name or service not known|"
    r"apiconnectionerror", re.IGNORECASE)

#: A tiny request that any chat model answers; what the check sends (one output token).
CHECK_PROMPT = "Say OK."


def unreachable_kind(outcome: Outcome) -> str | None:
    """The kind of "cannot reach the model" failure this attempt is, or None if it is anything else."""
    if outcome.ok:
        return None
    if outcome.error_kind in (kinds.CONNECT, kinds.TIMEOUT):
        return outcome.error_kind
    if outcome.error_kind == kinds.STREAM_BROKEN and outcome.status is None:
        return kinds.STREAM_BROKEN  # the connection dropped before any response
    if (outcome.error_kind == kinds.HTTP and (outcome.status or 0) >= 500
            and _CONNECTION_WORDS.search(outcome.error or "")):
        return f"HTTP {outcome.status} naming a connection error"
    return None


@dataclass
class FailureStreak:
    """Consecutive failed attempts of one unreachable kind, across every item of the run."""

    threshold: int = SUSPECT_AFTER
    kind: str | None = None
    count: int = 0
    messages: list[str] = field(default_factory=list)

    def observe(self, outcome: Outcome) -> bool:
        """Count one attempt; True when the streak has just reached the threshold (time to check)."""
        kind = unreachable_kind(outcome)
        if kind is None:
            # An answer, or a failure of another sort: the target is there.
            self.reset()
            return False
        if kind != self.kind:
            self.kind, self.count, self.messages = kind, 0, []
        self.count += 1
        if outcome.error and outcome.error not in self.messages:
            self.messages = [*self.messages, outcome.error][-QUOTED:]
        return self.count == self.threshold

    def reset(self) -> None:
        self.kind, self.count, self.messages = None, 0, []

    def describe(self, check: Outcome) -> str:
        """Why the run stops: the streak, what the last responses said, and how the check ended."""
        said = "; ".join(f"“{m}”" for m in self.messages) or "(no message)"
        checked = ("a check request got the same answer" if check.error in self.messages
                   else f"a check request failed too (“{check.error}”)")
        return (f"target unreachable: {self.count} requests in a row failed the same way ({self.kind}) and "
                f"{checked}. The last responses said: {said}. Bring the target (or the model server behind a "
                "gateway) back, then resume")


Check = Callable[[], Awaitable[Outcome]]


class TargetHealth:
    """Pauses the run while a streak of unreachable failures is checked; says whether to stop."""

    def __init__(self, send_check: Check, *, threshold: int = SUSPECT_AFTER, tries: int = CHECK_TRIES,
                 pause_s: float = CHECK_PAUSE_S) -> None:
        self.send_check = send_check
        self.streak = FailureStreak(threshold)
        self.tries = tries
        self.pause_s = pause_s
        self._open = asyncio.Event()
        self._open.set()
        self.unreachable: str | None = None  # the stop reason, once the target is given up on

    @property
    def checking(self) -> bool:
        """Whether a check is under way (``ready`` then waits for it)."""
        return not self._open.is_set()

    async def ready(self) -> None:
        """Wait while a check is under way: no new attempt is sent into a target being checked."""
        await self._open.wait()

    def answered(self) -> None:
        """An attempt got an answer: the streak is over (what ``observe`` does for it, without a coroutine)."""
        self.streak.reset()

    async def observe(self, outcome: Outcome) -> str | None:
        """Count an attempt; when it completes a streak, check the target. The stop reason, or None."""
        if self.unreachable is not None:
            return self.unreachable
        if not self.streak.observe(outcome) or not self._open.is_set():
            return None
        self._open.clear()
        try:
            return await self._check()
        finally:
            self._open.set()

    async def _check(self) -> str | None:
        check = Outcome(ok=False)
        for attempt in range(self.tries):
            if attempt:
                await asyncio.sleep(self.pause_s)
            check = await self.send_check()
            if unreachable_kind(check) is None:
                self.streak.reset()  # it answers (or fails in another way): go on
                return None
        self.unreachable = self.streak.describe(check)
        return self.unreachable
