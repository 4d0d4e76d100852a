"""Which failures look like a target that is gone, and when a streak of them calls for a check."""

from __future__ import annotations

import asyncio

import pytest

from evalharness import backend as kinds
from evalharness.backend import Outcome
from evalharness.health import FailureStreak, TargetHealth, unreachable_kind

LITELLM = ("HTTP 500: litellm.InternalServerError: InternalServerError: OpenAIException - Connection error. "
           "LiteLLM: model group 'smollm2' failed with the error above.")


@pytest.mark.parametrize(("outcome", "gone"), [
    (Outcome(ok=False, error_kind=kinds.CONNECT, error="cannot connect: refused"), True),
    (Outcome(ok=False, error_kind=kinds.TIMEOUT, error="timed out before the response"), True),
    (Outcome(ok=False, error_kind=kinds.STREAM_BROKEN, error="connection lost before the response"), True),
    (Outcome(ok=False, status=500, error_kind=kinds.HTTP, error=LITELLM), True),
    (Outcome(ok=False, status=503, error_kind=kinds.HTTP, error="HTTP 503: upstream connect error or "
                                                                 "disconnect/reset before headers"), True),
    # The target is there and answering: overloaded, limited, or refusing the request.
    (Outcome(ok=False, status=503, error_kind=kinds.HTTP, error="HTTP 503: down for maintenance"), False),
    (Outcome(ok=False, status=429, error_kind=kinds.HTTP, error="HTTP 429: Connection error quota"), False),
    (Outcome(ok=False, status=400, error_kind=kinds.HTTP, error="HTTP 400: No connected db."), False),
    (Outcome(ok=False, status=200, error_kind=kinds.STREAM_BROKEN, error="connection lost while reading"), False),
    (Outcome(ok=True, status=200), False),
])
def test_only_failures_that_say_nothing_is_there_count(outcome: Outcome, gone: bool) -> None:
    assert (unreachable_kind(outcome) is not None) is gone


def test_a_streak_needs_consecutive_failures_of_one_kind_and_an_answer_resets_it() -> None:
    dead = Outcome(ok=False, status=500, error_kind=kinds.HTTP, error=LITELLM)
    refused = Outcome(ok=False, error_kind=kinds.CONNECT, error="cannot connect")
    streak = FailureStreak(threshold=3)
    assert [streak.observe(o) for o in (dead, dead, Outcome(ok=True), dead, dead)] == [False] * 5
    assert [streak.observe(o) for o in (refused, dead, dead, dead)] == [False, False, False, True]
    assert streak.count == 3 and streak.messages == [LITELLM]


def test_the_check_decides_stop_or_go_on() -> None:
    dead = Outcome(ok=False, error_kind=kinds.CONNECT, error="cannot connect: refused")
    answers = [dead, Outcome(ok=True, status=200)]

    async def check() -> Outcome:
        return answers.pop(0)

    async def main() -> tuple[list[str | None], list[str | None]]:
        health = TargetHealth(check, threshold=2, tries=1, pause_s=0)
        first = [await health.observe(dead) for _ in range(2)]   # the check fails: stop
        healthy = TargetHealth(check, threshold=2, tries=1, pause_s=0)
        second = [await healthy.observe(dead) for _ in range(2)]  # the check answers: go on
        return first, second

    first, second = asyncio.run(main())
    assert first[0] is None and first[1] is not None
    assert "target unreachable" in first[1] and "cannot connect: refused" in first[1]
    assert second == [None, None]
