"""The HTTP client: one OpenAI-compatible chat-completions call, streamed or not, timed and normalised.

A failed call is returned as an ``Outcome`` with an error kind, never raised: bad responses are data.
Times come from ``time.perf_counter_ns`` and are measured from the moment the request is handed to
the transport (after any wait for a concurrency slot or rate limit, which the runner records as queue time).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from evalharness.hints import ServerError, parse_error_body
from evalharness.proxy import DIRECT, Route
from evalharness.retry_after import server_wait
from evalharness.transport import default_transport, is_timeout, iter_body, never_connected, read_body, received_ns

_THINK = re.compile(r"^\s*<think>(.*?)(?:</think>\s*|\Z)", re.DOTALL)

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
    usage: dict[str, Any] | None = None
    logprobs: list[dict[str, Any]] | None = None
    ttft_s: float | None = None
    ttfc_s: float | None = None
    e2e_s: float | None = None
    chunk_times: list[float] = field(default_factory=list)
    response_id: str | None = None


def _encode(body: dict[str, Any]) -> bytes:
    """The request body as UTF-8 JSON (orjson: the request is built on the runner's per-request path)."""
    try:
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # e.g. a lone surrogate in a prompt: json escapes it
        return json.dumps(body).encode("ascii")


def _decode(data: bytes | str) -> Any:
    """Parse JSON with orjson, falling back to json for what only it accepts (escaped lone surrogates).
    Raises ValueError when neither can."""
    try:
        return orjson.loads(data)
    except ValueError:
        return json.loads(data)


def split_reasoning(content: str | None, reasoning: str | None) -> tuple[str | None, str | None]:
    """Separate reasoning from the answer: a ``reasoning``/``reasoning_content`` field, or ``<think>`` tags."""
    if content and "<think>" in content[:64]:
        match = _THINK.match(content)
        if match:
            think = match.group(1).strip("\n")
            content = content[match.end():]
            reasoning = (reasoning + "\n" + think) if reasoning else think
    return content, reasoning


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _http_failure(response: httpx.Response, body: bytes) -> Outcome:
    text = body.decode("utf-8", "replace")
    error = parse_error_body(text)
    detail = error.describe() or text
    if detail == text.strip() and "<html" in text[:500].lower():  # not JSON: a gateway's or proxy's page
        detail = "HTML page: " + text
    wait = server_wait(response.headers, response.status_code)
    return Outcome(ok=False, status=response.status_code, error_kind=HTTP,
                   error=f"HTTP {response.status_code}: {_short(detail)}", server_error=error,
                   retry_after_s=wait.seconds if wait else None, retry_after_header=wait.header if wait else None)


def _message_outcome(data: Any, status: int) -> Outcome:
    """Normalise a non-streamed chat.completion body."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        if not isinstance(message, dict):
            raise TypeError("message is not an object")
    except (KeyError, IndexError, TypeError):
        return Outcome(ok=False, status=status, error_kind=INVALID_RESPONSE,
                       error=f"response has no choices[0].message: {_short(json.dumps(data)[:500])}")
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    content, reasoning = split_reasoning(message.get("content"), reasoning)
    logprobs = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
    return Outcome(ok=True, status=status, content=content, reasoning=reasoning,
                   tool_calls=message.get("tool_calls") or None, finish_reason=choice.get("finish_reason"),
                   usage=data.get("usage"), logprobs=logprobs or None, response_id=data.get("id"))


class _StreamState:
    """Accumulates a streamed response chunk by chunk."""

    def __init__(self, t0: int) -> None:
        self.t0 = t0
        self.content: list[str] = []
        self.content_ns: list[int] = []
        self.reasoning: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.logprobs: list[dict[str, Any]] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.ttft_ns: int | None = None
        self.chunk_ns: list[int] = []
        self.response_id: str | None = None
        self.done = False  # [DONE] seen

    def feed(self, chunk: dict[str, Any], now: int) -> None:
        if self.response_id is None:
            self.response_id = chunk.get("id")
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                delta = {}
            text = False
            piece = delta.get("content")
            if piece:
                self.content.append(piece)
                self.content_ns.append(now)
                text = True
            piece = delta.get("reasoning") or delta.get("reasoning_content")
            if piece:
                self.reasoning.append(piece)
                text = True
            for call in delta.get("tool_calls") or ():
                slot = self.tools.setdefault(call.get("index", 0), {"id": None, "type": "function",
                                                                     "function": {"name": "", "arguments": ""}})
                if call.get("id"):
                    slot["id"] = call["id"]
                fn = call.get("function") or {}
                if fn.get("name"):
                    slot["function"]["name"] += fn["name"]
                if fn.get("arguments"):
                    slot["function"]["arguments"] += fn["arguments"]
                    text = True
            if text:
                self.chunk_ns.append(now)
                if self.ttft_ns is None:
                    self.ttft_ns = now
            lp = choice.get("logprobs")
            if isinstance(lp, dict) and lp.get("content"):
                self.logprobs.extend(lp["content"])
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def outcome(self, status: int, end: int) -> Outcome:
        content, reasoning = split_reasoning("".join(self.content) if self.content else None,
                                             "".join(self.reasoning) if self.reasoning else None)
        if content is None and not self.tools:
            content = ""
        # ttfc is the first *answer* text: when <think> tags sit in content, the answer starts later.
        skipped = sum(map(len, self.content)) - len(content or "")
        ttfc = self._content_time_at(skipped)
        return Outcome(
            ok=True, status=status, content=content, reasoning=reasoning,
            tool_calls=[self.tools[i] for i in sorted(self.tools)] or None,
            finish_reason=self.finish_reason, usage=self.usage, logprobs=self.logprobs or None,
            ttft_s=_sec(self.ttft_ns, self.t0), ttfc_s=_sec(ttfc, self.t0), e2e_s=(end - self.t0) / 1e9,
            chunk_times=[(t - self.t0) // 1000 / 1e6 for t in self.chunk_ns], response_id=self.response_id)

    def _content_time_at(self, offset: int) -> int | None:
        """When the content character at ``offset`` arrived (None if there is none)."""
        seen = 0
        for piece, t in zip(self.content, self.content_ns, strict=True):
            seen += len(piece)
            if seen > offset:
                return t
        return None


def _sec(t: int | None, t0: int) -> float | None:
    return None if t is None else (t - t0) / 1e9


def _valid_usage(usage: Any) -> bool:
    """A usage object whose token counts, where given, are numbers."""
    if not isinstance(usage, dict):
        return False
    counts = [usage.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")]
    return all(n is None or (isinstance(n, (int, float)) and not isinstance(n, bool)) for n in counts)


def _scrub(outcome: Outcome, secret: str) -> None:
    """Replace ``secret`` wherever a server put it into text that will be stored."""
    for name in ("error", "content", "reasoning"):
        text = getattr(outcome, name)
        if text and secret in text:
            setattr(outcome, name, text.replace(secret, "<redacted>"))



class ChatClient:
    """Sends chat-completions requests to one OpenAI-compatible endpoint."""

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
        if outcome.usage is not None and not _valid_usage(outcome.usage):
            outcome.usage = None  # malformed usage is no usage (charged as unknown), not a crash in the sums
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
                return Outcome(ok=False, error_kind=CONNECT, error=f"cannot connect: {_short(str(exc))}")
            # The exception's class says little here (a reset arrives as ConnectTimeout); its text says what.
            return Outcome(ok=False, error_kind=STREAM_BROKEN,
                           error=f"connection lost before the response: {_short(str(exc))}")
        try:
            if response.status_code >= 400:
                body_bytes = await response.aread()
                return _http_failure(response, body_bytes)
            is_sse = "text/event-stream" in response.headers.get("content-type", "")
            if stream and is_sse:
                return await self._read_stream(response, t0)
            raw = await read_body(response)
            end = received_ns(response)
            try:
                data = _decode(raw)
            except ValueError:
                text = raw.decode("utf-8", "replace")
                kind = "HTML page" if "<html" in text[:500].lower() else "not JSON"
                return Outcome(ok=False, status=response.status_code, error_kind=INVALID_JSON,
                               error=f"response body is {kind}: {_short(text)}", e2e_s=(end - t0) / 1e9)
            outcome = _message_outcome(data, response.status_code)
            outcome.e2e_s = (end - t0) / 1e9
            return outcome
        except httpx.TransportError as exc:
            if is_timeout(exc):
                return Outcome(ok=False, status=response.status_code, error_kind=TIMEOUT,
                               error=f"timed out while reading the response: {type(exc).__name__}")
            return Outcome(ok=False, status=response.status_code, error_kind=STREAM_BROKEN,
                           error=f"connection lost while reading: {type(exc).__name__}: {_short(str(exc))}")
        finally:
            await response.aclose()

    async def _read_stream(self, response: httpx.Response, t0: int) -> Outcome:
        """Parse SSE from the raw bytes. Each event is stamped with when its bytes were read from the socket
        (where the transport says; ours does), not when this coroutine next ran."""
        state = _StreamState(t0)
        status = response.status_code
        tail = b""
        async for data in iter_body(response):
            if b"\r" in data:  # SSE lines may end in CRLF or a lone CR as well as LF
                data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            lines = (tail + data if tail else data).split(b"\n")
            tail = lines.pop()
            finished = _stream_lines(lines, state, received_ns(response), status)
            if finished is not None:
                return finished
        # A last line without its newline.
        finished = _stream_lines([tail] if tail else [], state, received_ns(response), status)
        if finished is not None:
            return finished
        partial = state.outcome(status, received_ns(response))
        partial.ok = False
        partial.error_kind = STREAM_INCOMPLETE
        partial.error = "the stream ended without [DONE]"
        return partial


def _stream_lines(lines: list[bytes], state: _StreamState, now: int, status: int) -> Outcome | None:
    """Feed lines that arrived at ``now``: the outcome once the stream is done or broken, else None."""
    for line in lines:
        failure = _stream_line(line, state, now, status)
        if failure is not None:
            return failure
        if state.done:
            return state.outcome(status, now)
    return None

def _stream_line(line: bytes, state: _StreamState, now: int, status: int) -> Outcome | None:
    """Feed one SSE line to ``state`` (``state.done`` at ``[DONE]``); an error Outcome for a bad event."""
    if not line.startswith(b"data:"):
        return None  # comments, event names, keep-alives, blank separators
    payload = line[5:].strip()
    if payload == b"[DONE]":
        state.done = True
        return None
    try:
        chunk = _decode(payload)
    except ValueError:
        return Outcome(ok=False, status=status, error_kind=INVALID_JSON,
                       error=f"stream chunk is not JSON: {_short(payload.decode('utf-8', 'replace'))}")
    if not isinstance(chunk, dict):
        return Outcome(ok=False, status=status, error_kind=INVALID_RESPONSE,
                       error=f"stream chunk is not an object: {_short(payload.decode('utf-8', 'replace'))}")
    if "error" in chunk:
        error = parse_error_body(payload.decode("utf-8", "replace"))
        return Outcome(ok=False, status=status, error_kind=HTTP, server_error=error,
                       error=f"error in stream: {_short(error.describe() or str(chunk['error']))}")
    state.feed(chunk, now)
    return None
