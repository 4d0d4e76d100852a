"""The HTTP transport under the client: aiohttp through httpx's transport interface where available.

httpx stays the client API (requests, responses, injectable transports such as ``httpx.MockTransport``),
but ``httpx.AsyncClient.send`` and httpcore's pool cost several times more per request than aiohttp, and a
harness that measures latency must not add its own. So the client calls a transport directly, and the
default transport is ``httpx_aiohttp.AiohttpTransport`` (falling back to httpx's own if aiohttp is missing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def default_transport(max_connections: int) -> httpx.AsyncBaseTransport:
    """The fastest transport available, with a connection pool sized to the run's concurrency."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    try:
        from httpx_aiohttp import AiohttpTransport
    except ImportError:  # pragma: no cover - aiohttp is a dependency; keep working without it
        return httpx.AsyncHTTPTransport(limits=limits)
    return AiohttpTransport(limits=limits, trust_env=False)


def is_timeout(exc: httpx.TransportError) -> bool:
    """A real timeout, as opposed to a refused or dropped connection.

    httpx-aiohttp maps every aiohttp connection error to ``ConnectTimeout``; the aiohttp error it came from
    tells whether a timer actually ran out.
    """
    if not isinstance(exc, httpx.TimeoutException):
        return False
    cause = exc.__cause__
    # httpx's own transport raises its timeouts from httpcore's: only aiohttp's causes need telling apart.
    from_aiohttp = cause is not None and type(cause).__module__.startswith("aiohttp")
    return not from_aiohttp or isinstance(cause, TimeoutError)

def never_connected(exc: httpx.TransportError) -> bool:
    """Whether the connection failed, so the request never reached the server.

    httpx-aiohttp maps every aiohttp connection error to ``ConnectTimeout``, including a reset or a
    disconnect after the request was sent; only aiohttp's ``ClientConnectorError`` means "could not
    connect". Told apart by class name, so nothing imports aiohttp for it.
    """
    if isinstance(exc, httpx.ConnectError):
        return True
    if not isinstance(exc, httpx.ConnectTimeout):
        return False
    cause = exc.__cause__
    return cause is None or any(c.__name__ == "ClientConnectorError" for c in type(cause).__mro__)


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop where it is installed (a faster event loop), else on asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - e.g. Windows
        return asyncio.run(main)
    return uvloop.run(main)
