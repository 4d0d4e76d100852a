"""Reading when a server says to come back: every common rate-limit header, as seconds."""

from __future__ import annotations

import time
from email.utils import formatdate

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalharness.retry_after import RetryAfter, parse_duration, server_wait


def go_duration(hours: int, minutes: int, seconds: float) -> str:
    """A duration as Go's time.Duration.String() writes it (what OpenAI's reset headers carry)."""
    if hours:
        return f"{hours}h{minutes}m{seconds:g}s"
    if minutes:
        return f"{minutes}m{seconds:g}s"
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


@pytest.mark.parametrize(("text", "seconds"), [
    ("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0s", 0.0), ("1.5µs", 1.5e-6),
    ("250us", 2.5e-4), ("3", 3.0), ("0.5", 0.5), (" 2s ", 2.0),
])
def test_openai_durations_are_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "1x", "1s garbage", "m1s", "-1s", "1 s", "soon", "1e999"])
def test_what_is_not_a_duration_is_none(text: str) -> None:
    assert parse_duration(text) is None


@given(st.integers(0, 48), st.integers(0, 59), st.integers(0, 59_999).map(lambda ms: ms / 1000))
def test_every_go_formatted_duration_reads_back_as_its_seconds(hours: int, minutes: int, seconds: float) -> None:
    text = go_duration(hours, minutes, seconds)
    assert parse_duration(text) == pytest.approx(hours * 3600 + minutes * 60 + seconds, abs=1e-9), text


@given(st.text(max_size=30))
def test_any_header_text_gives_a_wait_or_none_never_an_exception(text: str) -> None:
    seconds = parse_duration(text)
    assert seconds is None or seconds >= 0


def wait(status: int = 429, **headers: str) -> RetryAfter | None:
    """``server_wait`` for the headers named as keywords (``retry_after_ms`` is ``retry-after-ms``)."""
    names = {k: k if k.startswith("llm_provider") else k.replace("_", "-") for k in headers}
    return server_wait(httpx.Headers({names[k]: v for k, v in headers.items()}), status)


def test_each_header_is_read_and_named() -> None:
    assert wait(retry_after="2") == RetryAfter(2.0, "retry-after")
    assert wait(retry_after_ms="1500") == RetryAfter(1.5, "retry-after-ms")
    assert wait(**{"llm_provider-retry-after": "60"}) == RetryAfter(60.0, "llm_provider-retry-after")
    assert wait(**{"llm_provider-retry-after-ms": "250"}) == RetryAfter(0.25, "llm_provider-retry-after-ms")
    assert wait(x_ratelimit_reset_requests="6m0s") == RetryAfter(360.0, "x-ratelimit-reset-requests")
    assert wait(x_ratelimit_reset_tokens="20ms") == RetryAfter(0.02, "x-ratelimit-reset-tokens")


def test_an_http_date_is_read_as_seconds_from_now() -> None:
    found = wait(retry_after=formatdate(usegmt=True, timeval=time.time() + 30))
    assert found is not None and found.header == "retry-after" and 25 < found.seconds <= 30


def test_milliseconds_win_over_seconds_and_explicit_waits_over_resets() -> None:
    assert wait(retry_after="2", retry_after_ms="1500") == RetryAfter(1.5, "retry-after-ms")
    assert wait(retry_after="2", x_ratelimit_reset_requests="9s") == RetryAfter(2.0, "retry-after")


def test_the_exhausted_limit_says_when_to_retry() -> None:
    assert wait(x_ratelimit_remaining_requests="0", x_ratelimit_reset_requests="1s",
                x_ratelimit_remaining_tokens="900", x_ratelimit_reset_tokens="6m0s") == \
        RetryAfter(1.0, "x-ratelimit-reset-requests")
    assert wait(x_ratelimit_reset_requests="1s", x_ratelimit_reset_tokens="6m0s") == \
        RetryAfter(360.0, "x-ratelimit-reset-tokens")  # which one ran out is not said: the later one


def test_reset_headers_mean_nothing_outside_a_429_but_retry_after_does() -> None:
    assert wait(503, x_ratelimit_reset_requests="1s") is None
    assert wait(503, retry_after="4") == RetryAfter(4.0, "retry-after")


def test_unreadable_or_absent_headers_give_no_wait() -> None:
    assert wait() is None
    assert wait(retry_after="soon") is None
    assert wait(retry_after="nan") is None
    assert wait(retry_after="soon", retry_after_ms="x", x_ratelimit_reset_tokens="2s") == \
        RetryAfter(2.0, "x-ratelimit-reset-tokens")
