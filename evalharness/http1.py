"""A lean HTTP/1.1 transport for httpx: asyncio protocols, llhttp's C parser (httptools), one connection a worker.

Why our own: a harness that measures latency must not add its own. ``httpx.AsyncClient`` on httpcore costs
a few hundred microseconds of pool bookkeeping per request, and aiohttp under httpx (httpx-aiohttp) still
builds aiohttp's request and response objects, tracing hooks and stream readers on top of httpx's. This
transport does the least a keep-alive HTTP/1.1 client must: write the request in one call, feed what the
socket gives to llhttp, and hand the body to httpx as it arrives. httpx stays the client API (requests,
responses, ``httpx.MockTransport`` in tests); this is only what sits under it.

Timing: every body chunk carries the ``time.perf_counter_ns()`` of the moment the event loop read it from
the socket (``ReceiptStream.received_ns``), so a chunk's time does not include the wait until the reading
coroutine next runs.

Proxies: given an ``http://`` proxy (``httpx.Proxy``), an http target's requests go to the proxy with an
absolute-form request target, and an https target's connections are tunnelled with ``CONNECT`` (TLS to the
target inside the tunnel, kept alive like any other connection). The proxy URL's credentials are sent as
``Proxy-Authorization: Basic`` and never appear in an error message.

Errors are httpx's: ``ConnectError``/``ConnectTimeout`` (never connected), ``WriteError``/``WriteTimeout``,
``ReadError`` (the connection dropped), ``ReadTimeout``, ``RemoteProtocolError`` (not valid HTTP),
``PoolTimeout``, ``ProxyError`` (the proxy refused a tunnel). No retries here: whether a POST is worth sending
again is the runner's decision.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import httptools
import httpx

from evalharness.proxy import show_proxy

# Above this much unread body, stop reading the socket until the consumer catches up.
_HIGH_WATER = 1 << 20
# An SSE reader stops at [DONE], often just before the chunked body's last bytes arrive. Rather than close
# a connection that is about to be reusable (a new TLS handshake to a hosted API costs tens of ms), read
# the rest in the background for up to this long and this much.
_DRAIN_S = 5.0
_DRAIN_MAX = 1 << 16
_Origin = tuple[bytes, bytes, int]
_NO_HEADERS: list[tuple[bytes, bytes]] = []


class _Connection(asyncio.Protocol):
    """One keep-alive connection: at most one request in flight, its response fed through llhttp."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.error: httpx.TransportError | None = None
        # The response in progress.
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done: asyncio.Future[int] | None = None
        self.chunks: deque[tuple[bytes, int]] = deque()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.received_ns = 0
        self._waiter: asyncio.Future[None] | None = None
        # Draining: the reader stopped before the end (at an SSE [DONE]); the rest is read and dropped.
        self._on_drained: Callable[[], None] | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._writable: asyncio.Future[None] | None = None
        self._paused_reading = False

    # --- asyncio.Protocol ---
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def data_received(self, data: bytes) -> None:
        self.received_ns = time.perf_counter_ns()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # pragma: no cover - we never ask for an upgrade
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._drain_done()
        if not self.complete and exc is None and self._body_until_close():
            self.complete = True
            self._wake()
        if not self.complete:
            detail = f": {exc}" if exc else ""
            what = "while reading the response" if self._headers_in() else "before the response"
            self._fail(httpx.ReadError(f"the server closed the connection {what}{detail}"))
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(httpx.WriteError("the connection closed while sending the request"))

    def pause_writing(self) -> None:
        self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def _headers_in(self) -> bool:
        """Whether the response's headers arrived and were handed over (not failed, not cancelled)."""
        done = self.headers_done
        return done is not None and done.done() and not done.cancelled() and done.exception() is None

    def _body_until_close(self) -> bool:
        """A response with neither Content-Length nor chunked encoding ends when the connection does."""
        if not self._headers_in():
            return False
        names = {name.lower() for name, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    # --- httptools callbacks ---
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # an interim response: the real one follows
            self.headers = []
            return
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_result(status)

    def on_body(self, body: bytes) -> None:
        if self._on_drained is not None:
            self.buffered += len(body)
            if self.buffered > _DRAIN_MAX:
                self.close()
            return
        self.chunks.append((body, self.received_ns))
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER and self.transport is not None and not self._paused_reading:
            self._paused_reading = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers_done is None or not self.headers_done.done():
            return  # the end of an interim (1xx) response
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # llhttp forgets it once the next message begins
        self._wake()
        self._drain_done()

    # --- used by the transport and the stream ---
    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: httpx.TransportError) -> None:
        if self.error is None:
            self.error = error
        if self.headers_done is not None and not self.headers_done.done():
            self.headers_done.set_exception(error)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._drain_done()

    def drainable(self) -> bool:
        """Whether the rest of an abandoned response can be read so the connection is kept."""
        return not self.complete and not self.closed and self.error is None and self._headers_in()

    def drain(self, on_drained: Callable[[], None], timeout: float) -> None:
        """Read the rest of the response in the background, then call ``on_drained`` (closed if it takes
        longer than ``timeout`` or sends more than _DRAIN_MAX bytes)."""
        self.chunks.clear()
        self.buffered = 0
        self._on_drained = on_drained
        self._drain_timer = self.loop.call_later(timeout, self.close)
        if self._paused_reading and self.transport is not None:
            self._paused_reading = False
            self.transport.resume_reading()

    def _drain_done(self) -> None:
        callback, self._on_drained = self._on_drained, None
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        if callback is not None:
            self.loop.call_soon(callback)

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    async def send(self, head: bytes, body: bytes, timeouts: dict[str, float | None]) -> int:
        """Write the request; the response's status code once its headers are in."""
        assert self.transport is not None
        if self.closed or self.transport.is_closing():  # closed by the server since it was opened or last used
            raise httpx.WriteError("the server closed the connection before the request was written")
        self.headers = []
        self.chunks.clear()
        self.buffered = 0
        self.complete = False
        self.keep_alive = False
        self.headers_done = self.loop.create_future()
        self.transport.write(head + body if len(body) < 65536 else head)
        if len(body) >= 65536:
            self.transport.write(body)
        if self._writable is not None:
            await _within(self._writable, timeouts.get("write"), httpx.WriteTimeout, self.loop)
        status: int = await _within(self.headers_done, timeouts.get("read"), httpx.ReadTimeout, self.loop)
        return status

    async def next_chunk(self, timeout: float | None) -> tuple[bytes, int] | None:
        """The next piece of body and when it arrived; None at the end of the response."""
        while not self.chunks:
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            self._waiter = self.loop.create_future()
            try:
                await _within(self._waiter, timeout, httpx.ReadTimeout, self.loop)
            finally:
                self._waiter = None
        body, when = self.chunks.popleft()
        self.buffered -= len(body)
        if self._paused_reading and self.buffered < _HIGH_WATER // 2 and self.transport is not None:
            self._paused_reading = False
            self.transport.resume_reading()
        return body, when


class _Tunnel(asyncio.Protocol):
    """A connection to a proxy until it answers our CONNECT: the answer's head, then the connection is handed on.

    Not parsed by llhttp: a 2xx answer to CONNECT has no body however its headers read, which a response
    parser cannot know without the request.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.transport: asyncio.Transport | None = None
        self.answer: asyncio.Future[tuple[int, str]] = loop.create_future()
        self._buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return  # the body of a refusal: not read
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self._buffer) > 1 << 16:
                self.answer.set_exception(httpx.ProxyError("the proxy's answer to CONNECT has no end"))
            return
        status_line = self._buffer[:end].split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            self.answer.set_exception(httpx.ProxyError(f"the proxy's answer to CONNECT is not HTTP: {status_line!r}"))
            return
        self.answer.set_result((int(parts[1]), parts[2] if len(parts) > 2 else ""))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answer.done():
            self.answer.set_exception(httpx.ProxyError("the proxy closed the connection before answering CONNECT"))


async def _within(fut: asyncio.Future[Any], timeout: float | None, error: type[httpx.TimeoutException],
                  loop: asyncio.AbstractEventLoop) -> Any:
    """Await ``fut``, raising ``error`` if it is not done within ``timeout`` seconds.

    A timer handle rather than ``asyncio.wait_for``: no extra task per wait on the per-request path.
    """
    if fut.done() or timeout is None:
        return await fut
    timer = loop.call_later(timeout, _expire, fut, error, timeout)
    try:
        return await fut
    finally:
        timer.cancel()


def _expire(fut: asyncio.Future[Any], error: type[httpx.TimeoutException], timeout: float) -> None:
    if not fut.done():
        fut.set_exception(error(f"no data from the server for {timeout:g} s"))


class ReceiptStream(httpx.AsyncByteStream):
    """A response body as it arrives; ``received_ns`` is when the chunk last handed out left the socket."""

    def __init__(self, pool: Http1Transport, origin: _Origin, conn: _Connection, timeout: float | None) -> None:
        self._pool = pool
        self._origin = origin
        self._conn: _Connection | None = conn
        self._timeout = timeout
        self.received_ns = conn.received_ns

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            raise httpx.StreamClosed()
        while True:
            piece = await conn.next_chunk(self._timeout)
            if piece is None:
                break
            self.received_ns = piece[1]
            yield piece[0]
        await self.aclose()

    async def read_all(self) -> bytes:
        """The whole body at once (what ``httpx.Response.aread`` gives, without its layers of generators)."""
        conn = self._conn
        if conn is None:
            raise httpx.StreamClosed()
        pieces = []
        while (piece := await conn.next_chunk(self._timeout)) is not None:
            self.received_ns = piece[1]
            pieces.append(piece[0])
        await self.aclose()
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(self._origin, conn)


class Http1Transport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 over asyncio, up to ``max_connections`` per origin (one per concurrent request)."""

    def __init__(self, max_connections: int = 64, ssl_context: ssl.SSLContext | None = None,
                 proxy: httpx.Proxy | None = None) -> None:
        if proxy is not None and proxy.url.scheme != "http":
            raise ValueError(f"this transport speaks to http:// proxies, not {show_proxy(proxy)}")
        self.max_connections = max_connections
        self._ssl = ssl_context
        self._proxy = proxy
        # Sent to the proxy: on each request to an http target, on each CONNECT for an https one.
        self._proxy_headers: list[tuple[bytes, bytes]] = list(proxy.headers.raw) if proxy is not None else []
        if proxy is not None and proxy.raw_auth is not None:
            token = base64.b64encode(b":".join(proxy.raw_auth))
            self._proxy_headers.append((b"Proxy-Authorization", b"Basic " + token))
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._open: dict[_Origin, int] = {}
        self._waiters: dict[_Origin, deque[asyncio.Future[None]]] = {}
        self._draining: dict[_Origin, set[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the transport is closed")
        url = request.url
        origin = (url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        body = b"".join(request.stream) if isinstance(request.stream, httpx.ByteStream) else await request.aread()
        target, extra = url.raw_path, _NO_HEADERS
        if self._proxy is not None and url.raw_scheme == b"http":  # to the proxy, which forwards it
            target, extra = url.raw_scheme + b"://" + url.netloc + url.raw_path, self._proxy_headers
        head = b"".join([request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n",
                         *[k + b": " + v + b"\r\n" for k, v in (*request.headers.raw, *extra)], b"\r\n"])
        conn = await self._acquire(origin, timeouts)
        try:
            status = await conn.send(head, body, timeouts)
        except BaseException:
            self._discard(origin, conn)
            raise
        stream = ReceiptStream(self, origin, conn, timeouts.get("read"))
        return httpx.Response(status, headers=conn.headers, stream=stream,
                              extensions={"http_version": b"HTTP/1.1"})

    def _idle_connection(self, origin: _Origin) -> _Connection | None:
        """The most recently used idle connection that is still open (LIFO: the warmest one)."""
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
            self._open[origin] -= 1  # the server closed it while it was idle
        return None

    async def _acquire(self, origin: _Origin, timeouts: dict[str, float | None]) -> _Connection:
        if (conn := self._idle_connection(origin)) is not None:
            return conn
        while self._open.get(origin, 0) >= self.max_connections:
            draining = self._draining.get(origin)
            if draining:  # a request waiting beats the chance of keeping a connection
                draining.pop().close()
                await asyncio.sleep(0)  # the closed connection's release runs
                continue
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(origin, deque()).append(waiter)
            try:
                await _within(waiter, timeouts.get("pool"), httpx.PoolTimeout, asyncio.get_running_loop())
            finally:
                if not waiter.done():
                    waiter.cancel()
            if (conn := self._idle_connection(origin)) is not None:
                return conn
        self._open[origin] = self._open.get(origin, 0) + 1
        try:
            return await self._connect(origin, timeouts.get("connect"))
        except BaseException:
            self._open[origin] -= 1
            self._wake_one(origin)
            raise

    async def _connect(self, origin: _Origin, timeout: float | None) -> _Connection:
        """A new connection to ``origin``, through the proxy if there is one, within ``timeout`` in all."""
        scheme, host, port = origin
        tls: ssl.SSLContext | None = None
        if scheme == b"https":
            if self._ssl is None:  # httpx's: SSL_CERT_FILE or SSL_CERT_DIR when set, else certifi's bundle
                self._ssl = httpx.create_ssl_context()
            tls = self._ssl
        hostname = host.decode("ascii")
        via = f" through the proxy {show_proxy(self._proxy)}" if self._proxy is not None else ""
        try:
            return await asyncio.wait_for(self._dial(hostname, port, tls), timeout)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"could not connect to {hostname}:{port}{via} within {timeout:g} s") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"could not connect to {hostname}:{port}{via}: {exc}") from exc

    async def _dial(self, hostname: str, port: int, tls: ssl.SSLContext | None) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._proxy is None:
            _, conn = await loop.create_connection(lambda: _Connection(loop), hostname, port, ssl=tls,
                                                   server_hostname=hostname if tls else None)
            return conn
        proxy_host, proxy_port = self._proxy.url.host, self._proxy.url.port or 80
        if tls is None:  # plain http: the proxy is the peer, requests name the target in absolute form
            _, conn = await loop.create_connection(lambda: _Connection(loop), proxy_host, proxy_port)
            return conn
        raw, tunnel = await loop.create_connection(lambda: _Tunnel(loop), proxy_host, proxy_port)
        try:
            await self._tunnel(raw, tunnel, hostname, port)
            conn = _Connection(loop)
            secure = await loop.start_tls(raw, conn, tls, server_hostname=hostname)
        except BaseException:
            raw.close()
            raise
        if secure is None:  # pragma: no cover - only when the loop is closing
            raise httpx.ConnectError("the connection closed while starting TLS")
        conn.connection_made(secure)
        return conn

    async def _tunnel(self, raw: asyncio.Transport, tunnel: _Tunnel, hostname: str, port: int) -> None:
        """Ask the proxy for a tunnel to ``hostname:port``; raises ``httpx.ProxyError`` unless it opens one."""
        authority = f"{hostname}:{port}".encode("ascii")
        raw.write(b"".join([b"CONNECT ", authority, b" HTTP/1.1\r\nHost: ", authority, b"\r\n",
                            *[k + b": " + v + b"\r\n" for k, v in self._proxy_headers], b"\r\n"]))
        status, reason = await tunnel.answer
        if 200 <= status < 300:
            return
        assert self._proxy is not None
        detail = f"the proxy {show_proxy(self._proxy)} refused a tunnel to {hostname}:{port}: {status} {reason}"
        detail = detail.rstrip()
        if status == 407:
            detail += ("; it wants credentials: put them in the proxy URL (http://USER:PASSWORD@HOST:PORT)"
                       if self._proxy.raw_auth is None else "; it did not accept the credentials in the proxy URL")
        raise httpx.ProxyError(detail)

    def release(self, origin: _Origin, conn: _Connection) -> None:
        """Back to the pool if the response was read to its end and the server keeps the connection."""
        if conn.reusable() and not self._closed:
            self._idle.setdefault(origin, []).append(conn)
            self._wake_one(origin)
        elif conn.drainable() and not self._closed:
            self._draining.setdefault(origin, set()).add(conn)
            conn.drain(lambda: self._drained(origin, conn), _DRAIN_S)
        else:
            self._discard(origin, conn)

    def _drained(self, origin: _Origin, conn: _Connection) -> None:
        self._draining.get(origin, set()).discard(conn)
        self.release(origin, conn)

    def _discard(self, origin: _Origin, conn: _Connection) -> None:
        conn.close()
        self._open[origin] -= 1
        self._wake_one(origin)

    def _wake_one(self, origin: _Origin) -> None:
        waiters = self._waiters.get(origin)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        """Close the idle connections and those still draining (a response in use closes as it is released)."""
        self._closed = True
        for conns in [*self._idle.values(), *self._draining.values()]:
            for conn in list(conns):
                conn.close()
        self._idle.clear()
