"""What the runner talks to: a ``Backend`` takes one chat-completions request body and gives back an ``Outcome``.

    class Backend(Protocol):
        async def complete(self, body: dict[str, Any]) -> Outcome: ...
        async def aclose(self) -> None: ...

``body`` is the request as an OpenAI-compatible server would get it: ``model``, ``messages``, ``stream`` and
the cell's sampling parameters (``params.build_body``). ``complete`` is one attempt; the runner decides about
retries, budget, rate limits and concurrency (it may call ``complete`` from several tasks at once). It never
raises for a failed request: a failure is an ``Outcome`` with ``ok`` false and one of the error kinds below,
which the runner retries (``runner.RETRY_KINDS``, HTTP 429 and 5xx), records and reports by name. Timings
(``ttft_s``, ``e2e_s``, ``chunk_times``) are from when the backend started the attempt; the wait before it
is the runner's ``queue_s``. A run calls ``aclose`` once, when it is over.

``client.ChatClient`` is the implementation for OpenAI-compatible HTTP endpoints (``openai_decode.py`` reads
their responses). Any object with these two methods can stand in for it: ``evalharness.run(config,
backend=...)`` sends every request of the run to it, with no HTTP at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from evalharness.hints import ServerError
from evalharness.types import Usage

# Error kinds (the report counts errors by these names).
HTTP = "http_error"
TIMEOUT = "timeout"
CONNECT = "connect_error"
STREAM_BROKEN = "stream_broken"
STREAM_INCOMPLETE = "stream_incomplete"
INVALID_JSON = "invalid_json"
INVALID_RESPONSE = "invalid_response"
PROTOCOL = "protocol_error"


@dataclass
class Outcome:
    """What one attempt produced: the normalised answer and timings, or an error kind and message."""

    ok: bool
    status: int | None = None
    error_kind: str | None = None
    error: str | None = None
    # The wait the server asked for (see retry_after.py) and the header that said so.
    retry_after_s: float | None = None
    retry_after_header: str | None = None
    # The server's own account of an HTTP error (message, type, code, param), for hints.
    server_error: ServerError | None = None
    content: str | None = None
    reasoning: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    finish_reason: str | None = None
    # OpenAI's usage object; its token counts, where given, are numbers (the budget sums them).
    usage: Usage | None = None
    logprobs: list[dict[str, Any]] | None = None
    ttft_s: float | None = None
    ttfc_s: float | None = None
    e2e_s: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    response_id: str | None = None


class Backend(Protocol):
    """Answers chat-completions request bodies (see the module docstring for the contract)."""

    async def complete(self, body: dict[str, Any]) -> Outcome:
        """One attempt at ``body``; a failure comes back as an error ``Outcome``, never as an exception."""
        ...

    async def aclose(self) -> None:
        """Release what the backend holds (connections, processes); called once when the run is over."""
        ...
