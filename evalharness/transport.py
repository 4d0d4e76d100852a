"""The HTTP transport under the client, how its failures are classified, and the event loop.

httpx stays the client API (requests, responses, injectable transports such as ``httpx.MockTransport``),
but ``httpx.AsyncClient.send`` and httpcore's pool cost several times more per request than the request
itself takes on a fast server, and a harness that measures latency must not add its own. So the client
calls a transport directly, and the default transport is our own lean HTTP/1.1 one (``http1.py``), which
also goes through an ``http://`` proxy. Through any other proxy (``https://``, ``socks5://``) requests go
over httpx's own transport, at httpx's cost per request; a run's manifest says which transport it used.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import httpx

from evalharness.errors import UsageError
from evalharness.http1 import Http1Transport, ReceiptStream
from evalharness.proxy import DIRECT, Route

T = TypeVar("T")


#: The names ``transport_name`` gives, as a run's manifest records them.
OURS, HTTPX = "http1", "httpx"


def transport_name(route: Route) -> str:
    """Which transport ``default_transport`` uses for ``route``: ours, unless the proxy is not plain http."""
    return OURS if route.proxy is None or route.proxy.url.scheme == "http" else HTTPX


def default_transport(max_connections: int, route: Route = DIRECT) -> httpx.AsyncBaseTransport:
    """The default transport, with a connection per concurrent request (``run.concurrency``), along ``route``."""
    if transport_name(route) == OURS:
        return Http1Transport(max_connections=max_connections, proxy=route.proxy)
    try:
        return httpx.AsyncHTTPTransport(proxy=route.proxy, limits=httpx.Limits(max_connections=max_connections))
    except ImportError as exc:  # a socks proxy without httpx's optional socksio
        raise UsageError(f"the proxy {route.shown} needs an extra package: pip install 'httpx[socks]'") from exc


def side_transport(route: Route) -> httpx.AsyncBaseTransport:
    """httpx's transport along ``route``, for the few requests besides the chat calls (tokenizer endpoints):
    the same proxy, or none, as the chat calls, whatever the environment says."""
    return httpx.AsyncHTTPTransport(proxy=route.proxy)


def _direct(response: httpx.Response) -> ReceiptStream | None:
    """Our stream, where its bytes are the body as sent (no content-encoding for httpx to decode)."""
    stream = response.stream
    if isinstance(stream, ReceiptStream) and "content-encoding" not in response.headers:
        return stream
    return None


async def read_body(response: httpx.Response) -> bytes:
    """The whole body: straight from our transport's stream, else through ``response.aread()``.

    httpx's ``aread`` passes every chunk through four layers of async generators (decoders, a chunker):
    some 17 µs a response, the time the rest of a request takes against a fast server.
    """
    stream = _direct(response)
    return await stream.read_all() if stream is not None else await response.aread()


def iter_body(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body as it arrives: straight from our transport's stream, else ``response.aiter_bytes()``."""
    stream = _direct(response)
    return stream.__aiter__() if stream is not None else response.aiter_bytes()


def received_ns(response: httpx.Response) -> int:
    """When the body chunk last read from ``response`` arrived (``time.perf_counter_ns``): as our transport
    stamped it at the socket, else now, when the chunk reaches the reader."""
    stream = response.stream
    return stream.received_ns if isinstance(stream, ReceiptStream) else time.perf_counter_ns()


def is_timeout(exc: httpx.TransportError) -> bool:
    """A timer ran out (connect, read, write or waiting for a pooled connection)."""
    return isinstance(exc, httpx.TimeoutException)


def never_connected(exc: httpx.TransportError) -> bool:
    """Whether the connection failed (or the proxy refused a tunnel), so the request never reached the server."""
    return isinstance(exc, (httpx.ConnectError, httpx.ProxyError))


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop where it is installed (a faster event loop), else on asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - e.g. Windows
        return asyncio.run(main)
    return uvloop.run(main)
