"""A fault-injecting HTTP proxy, and a small canned chat server to stand behind it when no model is needed.

Standard library only (asyncio; httpx, a dependency of evalharness, to reach the upstream). Each server
runs its own event loop in a background thread on a loopback port, so a test can run ``evalharness`` in
the main thread (in-process, with its signal handling) or as a subprocess against it.

``FaultProxy(upstream, script)`` forwards ``/v1/...`` requests to ``upstream`` (the bundled llama.cpp server,
or a ``CannedChat``) and lets ``script`` choose a fault for each request it sees:

    429 / 429-date   429 with Retry-After in seconds (1) or as an HTTP-date (about 2 s ahead)
    429-ms           429 with OpenAI's retry-after-ms (1500)
    429-reset-requests / 429-reset-tokens
                     429 with OpenAI's x-ratelimit-reset-* durations, the named limit exhausted (1.2s /
                     800ms) and the other not (6m0s / 20s)
    429-litellm      LiteLLM's 429: only llm_provider-retry-after (1), and its error body
    429-long         429 with Retry-After: 600, past any sensible cap
    500 / 503        a JSON error body          502-html   a gateway's HTML error page
    401              rejects the key, echoing it back the way some servers do
    reset            the connection is reset (RST) as soon as the request has been read
    slow             no response headers until long after any sensible timeout
    disconnect       the upstream answer is cut off after its first two events (mid-stream)
    bad-json         the second stream event (or a plain body) is truncated JSON
    html-200         200 with an HTML page (a captive portal, a misrouted gateway)
    no-done          the stream is forwarded whole but without its final ``data: [DONE]``

When the upstream cannot be reached (it was stopped or killed), the proxy answers as a gateway does:
``HTTP 500 {"error": {"message": "Connection error."}}`` (LiteLLM's words). ``upstream`` may be changed
while it runs, to put a new server behind it.

Every request is remembered as a ``Seen``: which attempt it is at the same body (a retried item sends the
same bytes), its prompt, its Authorization header and the fault it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any, Self, TypeVar

import httpx

T = TypeVar("T")

# The headers of each 429 (an HTTP-date is made when it is sent).
RATE_LIMIT_HEADERS: dict[str, dict[str, str]] = {
    "429": {"Retry-After": "1"},
    "429-ms": {"retry-after-ms": "1500"},
    "429-reset-requests": {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "1.2s",
                           "x-ratelimit-remaining-tokens": "9000", "x-ratelimit-reset-tokens": "6m0s"},
    "429-reset-tokens": {"x-ratelimit-remaining-requests": "59", "x-ratelimit-reset-requests": "20s",
                         "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "800ms"},
    "429-litellm": {"llm_provider-retry-after": "1"},
    "429-long": {"Retry-After": "600"},
}
LITELLM_429 = json.dumps({"error": {
    "message": "litellm.RateLimitError: Model rpm limit reached for model group smollm2-135m-instruct",
    "type": "None", "param": "None", "code": "429"}}).encode()
FAULTS = frozenset({*RATE_LIMIT_HEADERS, "429-date", "500", "503", "502-html", "401", "reset", "slow", "disconnect",
                    "bad-json", "html-200", "no-done"})
HTML_PAGE = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
#: What a gateway (LiteLLM) answers when its backend is gone.
GATEWAY_CONNECTION_ERROR = (b'{"error": {"message": "litellm.InternalServerError: OpenAIException - '
                            b'Connection error.", "type": "internal_server_error", "code": "500"}}')
REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass
class Seen:
    """One request the proxy received."""

    index: int           # arrival order, from 0
    body_no: int         # which distinct body this is, in order of first arrival, from 0
    attempt: int         # how many times this exact body has arrived, from 1
    prompt: str          # content of the last message
    authorization: str | None
    fault: str | None = None


Script = Callable[[Seen], str | None]


def on_first_attempt(fault: str, bodies: int = 1) -> Script:
    """``fault`` for the first attempt at each of the first ``bodies`` distinct requests; the rest pass."""
    assert fault in FAULTS, fault
    return lambda seen: fault if seen.attempt == 1 and seen.body_no < bodies else None


def always(fault: str) -> Script:
    assert fault in FAULTS, fault
    return lambda seen: fault


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(method, path, headers, body)


def response_head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
    lines += [f"{k}: {v}" for k, v in {**headers, "Connection": "close"}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def send(writer: asyncio.StreamWriter, status: int, body: bytes, content_type: str = "application/json",
               headers: dict[str, str] | None = None) -> None:
    writer.write(response_head(status, {"Content-Type": content_type, "Content-Length": str(len(body)),
                                        **(headers or {})}) + body)
    await writer.drain()


def chunk(data: bytes) -> bytes:
    """One piece of a ``Transfer-Encoding: chunked`` body."""
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"


class _Server:
    """An asyncio server on 127.0.0.1 with its own event loop thread; one request per connection."""

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def start(self) -> Self:
        self._thread.start()
        self._server = self._call(self._listen())
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._on_connection, "127.0.0.1", 0)

    def stop(self) -> None:
        if self._server is not None:
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.aclose()

    async def aclose(self) -> None:
        """Release what a subclass holds (on the server's loop)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await read_request(reader)
            if request is not None:
                await self.handle(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away (e.g. it timed out): nothing to answer
        except asyncio.CancelledError:
            pass  # the server is stopping; re-raising would only make asyncio log a traceback
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class CannedChat(_Server):
    """An OpenAI-compatible chat server that answers ``echo: <prompt>`` a word per chunk, with usage.

    ``chunk_delay_s`` paces the stream, to keep a run busy long enough to interrupt it.
    """

    def __init__(self, chunk_delay_s: float = 0.0) -> None:
        super().__init__()
        self.chunk_delay_s = chunk_delay_s
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if request.method == "GET" and request.path.endswith("/models"):
            await send(writer, 200, b'{"object": "list", "data": [{"id": "canned", "object": "model"}]}')
            return
        if request.method != "POST" or not request.path.endswith("/chat/completions"):
            await send(writer, 404, b'{"error": {"message": "not found"}}')
            return
        body = json.loads(request.body)
        self.bodies.append(body)
        words = ("echo: " + str(body["messages"][-1]["content"])).split(" ")
        limit = body.get("max_tokens") or len(words)
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words[:limit])]
        finish = "length" if len(words) > limit else "stop"
        usage = {"prompt_tokens": 10, "completion_tokens": len(pieces), "total_tokens": 10 + len(pieces)}
        if not body.get("stream"):
            answer = {"id": "chatcmpl-canned", "object": "chat.completion", "model": body.get("model"),
                      "choices": [{"index": 0, "finish_reason": finish,
                                   "message": {"role": "assistant", "content": "".join(pieces)}}],
                      "usage": usage}
            await send(writer, 200, json.dumps(answer).encode())
            return
        writer.write(response_head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}))

        def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            data = {"id": "chatcmpl-canned", "object": "chat.completion.chunk", "choices": choices, **extra}
            return chunk(f"data: {json.dumps(data)}\n\n".encode())

        writer.write(event([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]))
        for piece in pieces:
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
            writer.write(event([{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
            await writer.drain()
        writer.write(event([{"index": 0, "delta": {}, "finish_reason": finish}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            writer.write(event([], usage=usage))
        writer.write(chunk(b"data: [DONE]\n\n") + LAST_CHUNK)
        await writer.drain()


class FaultProxy(_Server):
    """Forwards requests to ``upstream`` (a ``.../v1`` base URL), injecting the faults ``script`` picks."""

    def __init__(self, upstream: str, script: Script | None = None, *, slow_s: float = 30.0) -> None:
        super().__init__()
        self.upstream = httpx.URL(upstream)
        self.script: Script = script or (lambda seen: None)
        self.slow_s = slow_s
        self.seen: list[Seen] = []
        self._attempts: Counter[str] = Counter()
        self._bodies: dict[str, int] = {}
        self._client: httpx.AsyncClient | None = None

    def point_at(self, upstream: str) -> None:
        """Forward from now on to ``upstream`` (a new server brought up in place of a dead one)."""
        self.upstream = httpx.URL(upstream)

    def attempts_by_prompt(self) -> Counter[str]:
        """How many requests arrived for each prompt."""
        return Counter(s.prompt for s in self.seen)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def handle(self, request: Request, writer: asyncio.StreamWriter) -> None:
        if not request.path.endswith("/chat/completions"):
            await self._forward(request, writer, None)
            return
        key = hashlib.sha256(request.body).hexdigest()
        self._attempts[key] += 1
        self._bodies.setdefault(key, len(self._bodies))
        try:
            prompt = str(json.loads(request.body)["messages"][-1]["content"])
        except (ValueError, KeyError, IndexError, TypeError):
            prompt = ""
        seen = Seen(index=len(self.seen), body_no=self._bodies[key], attempt=self._attempts[key], prompt=prompt,
                    authorization=request.headers.get("authorization"))
        seen.fault = self.script(seen)
        self.seen.append(seen)
        fault = seen.fault
        if fault is None or fault in ("disconnect", "bad-json", "no-done"):
            await self._forward(request, writer, fault)
        elif fault in RATE_LIMIT_HEADERS:
            body = LITELLM_429 if fault == "429-litellm" else b'{"error": {"message": "rate limited"}}'
            await send(writer, 429, body, headers=RATE_LIMIT_HEADERS[fault])
        elif fault == "429-date":
            await send(writer, 429, b'{"error": {"message": "rate limited"}}',
                       headers={"Retry-After": formatdate(time.time() + 2, usegmt=True)})
        elif fault in ("500", "503"):
            await send(writer, int(fault), b'{"error": {"message": "the upstream had a bad moment"}}')
        elif fault == "502-html":
            await send(writer, 502, HTML_PAGE, "text/html")
        elif fault == "html-200":
            await send(writer, 200, HTML_PAGE.replace(b"502 Bad Gateway", b"Sign in to the network"), "text/html")
        elif fault == "401":
            token = (seen.authorization or "").removeprefix("Bearer ")
            await send(writer, 401, json.dumps({"error": {"message": f"Incorrect API key provided: {token}"}})
                       .encode())
        elif fault == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif fault == "slow":
            await asyncio.sleep(self.slow_s)
        else:  # pragma: no cover - a typo in a test
            raise ValueError(f"unknown fault {fault!r}")

    async def _forward(self, request: Request, writer: asyncio.StreamWriter, fault: str | None) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=120)
        url = self.upstream.copy_with(path=request.path)
        headers = {k: v for k, v in request.headers.items()
                   if k in ("authorization", "content-type", "accept")}
        upstream = self._client.build_request(request.method, url, headers=headers, content=request.body)
        try:
            response = await self._client.send(upstream, stream=True)
        except httpx.TransportError:
            await send(writer, 500, GATEWAY_CONNECTION_ERROR)
            return
        try:
            kept = {k: v for k, v in response.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "keep-alive",
                                         "content-encoding")}
            if "text/event-stream" in response.headers.get("content-type", ""):
                await self._relay_stream(response, writer, kept, fault)
            else:
                await self._relay_body(response, writer, kept, fault)
        finally:
            await response.aclose()

    @staticmethod
    async def _relay_stream(response: httpx.Response, writer: asyncio.StreamWriter, headers: dict[str, str],
                            fault: str | None) -> None:
        writer.write(response_head(response.status_code, {**headers, "Transfer-Encoding": "chunked"}))
        sent = 0
        event: list[str] = []
        async for line in response.aiter_lines():
            if line:
                event.append(line)
                continue
            if not event:
                continue
            text, event = "\n".join(event), []
            if text.startswith("data:"):
                if fault == "disconnect" and sent == 2:
                    await writer.drain()
                    writer.close()  # mid-stream: the chunked body never ends
                    return
                if fault == "no-done" and text.removeprefix("data:").strip() == "[DONE]":
                    continue
                if fault == "bad-json" and sent == 1:
                    text = 'data: {"choices": [{"index": 0, "delta": {"content": "He'
                sent += 1
            writer.write(chunk((text + "\n\n").encode()))
            await writer.drain()
        writer.write(LAST_CHUNK)
        await writer.drain()

    @staticmethod
    async def _relay_body(response: httpx.Response, writer: asyncio.StreamWriter, headers: dict[str, str],
                          fault: str | None) -> None:
        body = await response.aread()
        if fault == "bad-json":
            body = body[: len(body) // 2]
        if fault == "disconnect":
            writer.write(response_head(response.status_code, {**headers, "Content-Length": str(len(body))}))
            writer.write(body[: len(body) // 2])
            await writer.drain()
            writer.close()
            return
        await send(writer, response.status_code, body, headers.pop("content-type", "application/json"), headers)
