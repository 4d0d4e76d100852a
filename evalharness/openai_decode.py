"""Reading OpenAI chat-completions responses into ``Outcome``s: a JSON body, an SSE stream, an error body.

No I/O and no clock: the HTTP client (``client.py``) hands over the bytes it read, with the moment it read
them from the socket, and sets the end-to-end time. A stream is fed one socket read at a time
(``StreamDecoder.feed``), not one line or event at a time, so decoding adds one call per read to the
client's hot path. A malformed response is an error ``Outcome`` (``invalid_json``, ``invalid_response``,
``http_error`` for an error event), never an exception.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import orjson

from evalharness.backend import HTTP, INVALID_JSON, INVALID_RESPONSE, STREAM_INCOMPLETE, Outcome
from evalharness.hints import parse_error_body
from evalharness.retry_after import RetryAfter
from evalharness.types import Usage

_THINK = re.compile(r"^\s*<think>(.*?)(?:</think>\s*|\Z)", re.DOTALL)


def parse_json(data: bytes | str) -> Any:
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


def short(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut to ``limit`` characters: what an error message quotes of a body."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def checked_usage(usage: Any) -> Usage | None:
    """``usage`` if its token counts, where given, are numbers; else None. Malformed usage is no usage
    (charged as unknown), not a crash in the budget's sums."""
    if not isinstance(usage, dict):
        return None
    counts = [usage.get(key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")]
    if all(n is None or (isinstance(n, (int, float)) and not isinstance(n, bool)) for n in counts):
        return cast(Usage, usage)  # the JSON edge: the server's usage object, its counts checked
    return None


def error_outcome(status: int, body: bytes, wait: RetryAfter | None) -> Outcome:
    """An HTTP error response: the server's own account of it (``hints.ServerError``) and the wait it asked for."""
    text = body.decode("utf-8", "replace")
    error = parse_error_body(text)
    detail = error.describe() or text
    if detail == text.strip() and "<html" in text[:500].lower():  # not JSON: a gateway's or proxy's page
        detail = "HTML page: " + text
    return Outcome(ok=False, status=status, error_kind=HTTP, error=f"HTTP {status}: {short(detail)}",
                   server_error=error, retry_after_s=wait.seconds if wait else None,
                   retry_after_header=wait.header if wait else None)


def body_outcome(raw: bytes, status: int) -> Outcome:
    """A non-streamed response body: the chat.completion it holds, or why it holds none."""
    try:
        data = parse_json(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace")
        kind = "HTML page" if "<html" in text[:500].lower() else "not JSON"
        return Outcome(ok=False, status=status, error_kind=INVALID_JSON,
                       error=f"response body is {kind}: {short(text)}")
    return message_outcome(data, status)


def message_outcome(data: Any, status: int) -> Outcome:
    """Normalise a non-streamed chat.completion body."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        if not isinstance(message, dict):
            raise TypeError("message is not an object")
    except (KeyError, IndexError, TypeError):
        return Outcome(ok=False, status=status, error_kind=INVALID_RESPONSE,
                       error=f"response has no choices[0].message: {short(json.dumps(data)[:500])}")
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    content, reasoning = split_reasoning(message.get("content"), reasoning)
    logprobs = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
    return Outcome(ok=True, status=status, content=content, reasoning=reasoning,
                   tool_calls=message.get("tool_calls") or None, finish_reason=choice.get("finish_reason"),
                   usage=checked_usage(data.get("usage")), logprobs=logprobs or None, response_id=data.get("id"))


class StreamDecoder:
    """Decodes an SSE stream of chat.completion.chunk events, socket read by socket read.

    ``t0`` is when the request was sent (``perf_counter_ns``); each read comes with when its bytes left the
    socket, and the text it carries is stamped with that time.
    """

    def __init__(self, t0: int, status: int) -> None:
        self.t0 = t0
        self.status = status
        self.tail = b""  # a line whose newline has not arrived yet
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

    def feed(self, data: bytes, now: int) -> Outcome | None:
        """Take one read, received at ``now``: the outcome once the stream is done or broken, else None."""
        if b"\r" in data:  # SSE lines may end in CRLF or a lone CR as well as LF
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = (self.tail + data if self.tail else data).split(b"\n")
        self.tail = lines.pop()
        return self._lines(lines, now)

    def end(self, now: int) -> Outcome:
        """The body ended at ``now``: the outcome, an incomplete one if ``[DONE]`` never came."""
        if self.tail:  # a last line without its newline
            finished = self._lines([self.tail], now)
            if finished is not None:
                return finished
        partial = self.outcome(now)
        partial.ok = False
        partial.error_kind = STREAM_INCOMPLETE
        partial.error = "the stream ended without [DONE]"
        return partial

    def _lines(self, lines: list[bytes], now: int) -> Outcome | None:
        for line in lines:
            failure = self._line(line, now)
            if failure is not None:
                return failure
            if self.done:
                return self.outcome(now)
        return None

    def _line(self, line: bytes, now: int) -> Outcome | None:
        """One SSE line (``done`` at ``[DONE]``); an error Outcome for a bad event."""
        if not line.startswith(b"data:"):
            return None  # comments, event names, keep-alives, blank separators
        payload = line[5:].strip()
        if payload == b"[DONE]":
            self.done = True
            return None
        status = self.status
        try:
            chunk = parse_json(payload)
        except ValueError:
            return Outcome(ok=False, status=status, error_kind=INVALID_JSON,
                           error=f"stream chunk is not JSON: {short(payload.decode('utf-8', 'replace'))}")
        if not isinstance(chunk, dict):
            return Outcome(ok=False, status=status, error_kind=INVALID_RESPONSE,
                           error=f"stream chunk is not an object: {short(payload.decode('utf-8', 'replace'))}")
        if "error" in chunk:
            error = parse_error_body(payload.decode("utf-8", "replace"))
            return Outcome(ok=False, status=status, error_kind=HTTP, server_error=error,
                           error=f"error in stream: {short(error.describe() or str(chunk['error']))}")
        self._chunk(chunk, now)
        return None

    def _chunk(self, chunk: dict[str, Any], now: int) -> None:
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

    def outcome(self, end: int) -> Outcome:
        """What the stream said so far, timed against ``t0``, ending at ``end``."""
        content, reasoning = split_reasoning("".join(self.content) if self.content else None,
                                             "".join(self.reasoning) if self.reasoning else None)
        if content is None and not self.tools:
            content = ""
        # ttfc is the first *answer* text: when <think> tags sit in content, the answer starts later.
        skipped = sum(map(len, self.content)) - len(content or "")
        ttfc = self._content_time_at(skipped)
        return Outcome(
            ok=True, status=self.status, content=content, reasoning=reasoning,
            tool_calls=[self.tools[i] for i in sorted(self.tools)] or None,
            finish_reason=self.finish_reason, usage=checked_usage(self.usage), logprobs=self.logprobs or None,
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
