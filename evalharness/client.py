"""The HTTP backend: one OpenAI-compatible chat-completions call, streamed or not, sent and timed.

``ChatClient`` is the ``Backend`` (see backend.py) for an OpenAI-compatible endpoint. It does the transport
and the clock; what the bytes mean is ``openai_decode.py``'s. A failed call is returned as an ``Outcome``
with an error kind, never raised: bad responses are data. Times come from ``time.perf_counter_ns`` and are
measured from the moment the request is handed to the transport (after any wait for a concurrency slot or
rate limit, which the runner records as queue time); each read of a stream is stamped with when its bytes
left the socket (where the transport says; ours does), not when this coroutine next ran.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import orjson

from evalharness.backend import CONNECT, STREAM_BROKEN, TIMEOUT, Outcome
from evalharness.openai_decode import StreamDecoder, body_outcome, error_outcome, short
from evalharness.proxy import DIRECT, Route
from evalharness.retry_after import server_wait
from evalharness.transport import default_transport, is_timeout, iter_body, never_connected, read_body, received_ns


def _encode(body: dict[str, Any]) -> bytes:
    """The request body as UTF-8 JSON (orjson: the request is built on the runner's per-request path)."""
    try:
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # e.g. a lone surrogate in a prompt: json escapes it
        return json.dumps(body).encode("ascii")


def _scrub(outcome: Outcome, secret: str) -> None:
    """Replace ``secret`` wherever a server put it into text that will be stored."""
    for name in ("error", "content", "reasoning"):
        text = getattr(outcome, name)
        if text and secret in text:
            setattr(outcome, name, text.replace(secret, "<redacted>"))


class ChatClient:
    """Sends chat-completions requests to one OpenAI-compatible endpoint: a ``Backend``."""

    def __init__(self, base_url: str, *, api_key: str | None = None, headers: dict[str, str] | None = None,
                 timeout_s: float = 60.0, max_connections: int = 64,
                 transport: httpx.AsyncBaseTransport | None = None, route: Route = DIRECT) -> None:
        self._headers = {"Accept": "application/json, text/event-stream", "Accept-Encoding": "identity",
                         "Content-Type": "application/json", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.url = httpx.URL(base_url.rstrip("/") + "/chat/completions")
        # Built once and copied per request: httpx normalises a dict's headers on every request.
        self._prepared = httpx.Headers({"Host": self.url.netloc.decode("ascii"), **self._headers})
        # Some servers echo a rejected key in their error message; it must not reach the records. A very
        # short key is not scrubbed: it would garble ordinary text and is no real secret.
        # A proxy that echoes its credentials must not put them in the records either.
        secrets = [api_key, *(route.proxy.auth[1:] if route.proxy is not None and route.proxy.auth else ())]
        self._secrets = [s for s in secrets if s and len(s) >= 8]
        self._extensions = {"timeout": httpx.Timeout(timeout_s).as_dict()}
        self._transport = transport or default_transport(max_connections, route)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def complete(self, body: dict[str, Any]) -> Outcome:
        """One attempt. Never raises for network or protocol failures: they come back as an error Outcome."""
        outcome = await self._attempt(body)
        for secret in self._secrets:
            _scrub(outcome, secret)
        return outcome

    async def _attempt(self, body: dict[str, Any]) -> Outcome:
        stream = bool(body.get("stream"))
        # Encoded before the clock starts; sent straight to the transport (see transport.py for why).
        content = _encode(body)
        headers = httpx.Headers(self._prepared)
        headers["Content-Length"] = str(len(content))
        # stream= rather than content=: the headers are complete already, and httpx then skips re-deriving
        # them (13 µs a request, as much as the rest of the request path against a fast server).
        request = httpx.Request("POST", self.url, headers=headers, stream=httpx.ByteStream(content),
                                extensions=self._extensions)
        t0 = time.perf_counter_ns()
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.TransportError as exc:
            if is_timeout(exc):
                return Outcome(ok=False, error_kind=TIMEOUT,
                               error=f"timed out before the response: {type(exc).__name__}")
            if never_connected(exc):
                return Outcome(ok=False, error_kind=CONNECT, error=f"cannot connect: {short(str(exc))}")
            # The exception's class says little here (a reset arrives as ConnectTimeout); its text says what.
            return Outcome(ok=False, error_kind=STREAM_BROKEN,
                           error=f"connection lost before the response: {short(str(exc))}")
        try:
            if response.status_code >= 400:
                body_bytes = await response.aread()
                return error_outcome(response.status_code, body_bytes,
                                     server_wait(response.headers, response.status_code))
            is_sse = "text/event-stream" in response.headers.get("content-type", "")
            if stream and is_sse:
                return await self._read_stream(response, t0)
            raw = await read_body(response)
            end = received_ns(response)
            outcome = body_outcome(raw, response.status_code)
            outcome.e2e_s = (end - t0) / 1e9
            return outcome
        except httpx.TransportError as exc:
            if is_timeout(exc):
                return Outcome(ok=False, status=response.status_code, error_kind=TIMEOUT,
                               error=f"timed out while reading the response: {type(exc).__name__}")
            return Outcome(ok=False, status=response.status_code, error_kind=STREAM_BROKEN,
                           error=f"connection lost while reading: {type(exc).__name__}: {short(str(exc))}")
        finally:
            await response.aclose()

    async def _read_stream(self, response: httpx.Response, t0: int) -> Outcome:
        """Feed the raw bytes to the decoder, each read with when it left the socket."""
        decoder = StreamDecoder(t0, response.status_code)
        async for data in iter_body(response):
            finished = decoder.feed(data, received_ns(response))
            if finished is not None:
                return finished
        return decoder.end(received_ns(response))
