"""When a server says to come back: the common rate-limit headers, read as seconds.

Read in this order; the first header that parses wins:

    retry-after-ms               milliseconds (OpenAI)
    retry-after                  delta-seconds or an HTTP-date (RFC 9110)
    x-ratelimit-reset-requests   when the exhausted limit refills, in OpenAI's duration format
    x-ratelimit-reset-tokens     (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``); read on a 429 only

Each is also read under LiteLLM's ``llm_provider-`` prefix, which it puts on the headers of the provider
behind it (``llm_provider-retry-after: 60``). Servers send the reset headers with every response, so they
say when to retry only on a 429; of the two, the one whose ``x-ratelimit-remaining-*`` is 0 applies, and
without that the later one (waiting too long costs time, too short costs another 429).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

PREFIXES = ("", "llm_provider-")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
# Go's time.Duration syntax, which OpenAI uses: number-unit pairs; "ms" is tried before "m".
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|μs|ns|h|m|s)")


@dataclass(frozen=True)
class RetryAfter:
    """A wait a server asked for, and the header that said so."""

    seconds: float
    header: str


def _finite(seconds: float) -> float | None:
    return max(0.0, seconds) if math.isfinite(seconds) else None


def parse_seconds(value: str) -> float | None:
    """A plain number of seconds (``1``, ``0.5``); None for anything else."""
    try:
        return _finite(float(value.strip()))
    except ValueError:
        return None


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds, from either delta-seconds or an HTTP-date."""
    if not value:
        return None
    seconds = parse_seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_duration(value: str | None) -> float | None:
    """OpenAI's (Go's) duration format as seconds: ``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``; a bare number is
    seconds. None when the text is not a duration."""
    if not value:
        return None
    text = value.strip()
    if not text:
        return None
    bare = parse_seconds(text)
    if bare is not None:
        return bare
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT_S[match.group(2)]
        pos = match.end()
    return _finite(total) if pos == len(text) and pos > 0 else None


def _lookup(headers: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """The value of ``name`` (or its LiteLLM-prefixed form) and the header it came from."""
    for prefix in PREFIXES:
        value = headers.get(prefix + name)
        if value is not None:
            return value, prefix + name
    return None


def _reset_wait(headers: Mapping[str, str]) -> RetryAfter | None:
    """When the exhausted limit refills, from the ``x-ratelimit-reset-*`` headers."""
    found: list[tuple[bool, float, str]] = []
    for kind in ("requests", "tokens"):
        reset = _lookup(headers, f"x-ratelimit-reset-{kind}")
        seconds = parse_duration(reset[0]) if reset else None
        if reset is None or seconds is None:
            continue
        remaining = _lookup(headers, f"x-ratelimit-remaining-{kind}")
        exhausted = remaining is not None and parse_seconds(remaining[0]) == 0
        found.append((exhausted, seconds, reset[1]))
    if not found:
        return None
    # Exhausted limits first, then the later reset.
    _, seconds, header = max(found)
    return RetryAfter(seconds, header)


def server_wait(headers: Mapping[str, str], status: int) -> RetryAfter | None:
    """How long the server asked us to wait before retrying, if it said; ``headers`` as httpx's (any case)."""
    ms = _lookup(headers, "retry-after-ms")
    if ms is not None and (seconds := parse_seconds(ms[0])) is not None:
        return RetryAfter(seconds / 1000, ms[1])
    after = _lookup(headers, "retry-after")
    if after is not None and (seconds := parse_retry_after(after[0])) is not None:
        return RetryAfter(seconds, after[1])
    return _reset_wait(headers) if status == 429 else None
