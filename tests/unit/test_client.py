"""ChatClient against an in-process MockTransport: normalisation, streaming timings, errors as data."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from evalharness.backend import Outcome
from evalharness.client import ChatClient
from evalharness.params import build_body, merge_params

BASE_URL = "http://mock.test/v1"
SSE = {"content-type": "text/event-stream"}
MESSAGES = [{"role": "user", "content": "hi"}]
PLAIN_BODY: dict[str, Any] = {"model": "m", "messages": MESSAGES}
STREAM_BODY: dict[str, Any] = {"model": "m", "messages": MESSAGES, "stream": True,
                               "stream_options": {"include_usage": True}}
# A pause long enough to dominate scheduling noise, short enough to keep the suite fast.
GAP_S = 0.05

Handler = Callable[[httpx.Request], Any]


def complete(handler: Handler, body: dict[str, Any], **client_kw: Any) -> Outcome:
    async def go() -> Outcome:
        async with ChatClient(BASE_URL, transport=httpx.MockTransport(handler), **client_kw) as chat:
            return await chat.complete(body)
    return asyncio.run(go())


def chunk(delta: dict[str, Any] | None = None, *, finish: str | None = None,
          usage: dict[str, Any] | None = None, choices: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk"}
    data["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    if usage is not None:
        data["usage"] = usage
    return data


def sse_text(*chunks: dict[str, Any], done: bool = True) -> bytes:
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    if done:
        text += "data: [DONE]\n\n"
    return text.encode()


def stream_handler(*chunks: dict[str, Any], done: bool = True) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE, content=sse_text(*chunks, done=done))
    return handler


def paced_stream_handler(*steps: dict[str, Any] | float) -> Handler:
    """A stream that sleeps where a step is a number of seconds, so arrival order shows in the timings."""
    async def body() -> AsyncIterator[bytes]:
        for step in steps:
            if isinstance(step, (int, float)):
                await asyncio.sleep(step)
            else:
                yield sse_text(step, done=False)
        yield b"data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE, content=body())
    return handler


def json_handler(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=data, headers=headers)
    return handler


def completion(message: dict[str, Any], *, finish: str = "stop",
               usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "chatcmpl-9", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


# --- non-streamed -------------------------------------------------------------------------------------

def test_non_streamed_response_is_normalised() -> None:
    out = complete(json_handler(completion({"content": "Hello there"}, usage=USAGE)), PLAIN_BODY)
    assert out.ok
    assert out.status == 200
    assert out.content == "Hello there"
    assert out.finish_reason == "stop"
    assert out.usage == USAGE
    assert out.reasoning is None
    assert out.e2e_s is not None and out.e2e_s > 0
    assert out.ttft_s is None
    assert out.chunk_times == []
    assert out.response_id == "chatcmpl-9"


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_non_streamed_reasoning_field_is_kept_apart_from_content(field: str) -> None:
    out = complete(json_handler(completion({"content": "42", field: "6 times 7"})), PLAIN_BODY)
    assert out.ok
    assert out.content == "42"
    assert out.reasoning == "6 times 7"


def test_non_streamed_think_tags_are_split_from_the_answer() -> None:
    out = complete(json_handler(completion({"content": "<think>\nadd them\n</think>\n\nThe sum is 5."})),
                   PLAIN_BODY)
    assert out.content == "The sum is 5."
    assert out.reasoning == "add them"


# --- streamed -----------------------------------------------------------------------------------------

def test_stream_content_usage_and_finish_reason() -> None:
    handler = stream_handler(
        chunk({"role": "assistant"}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({"content": "!"}, finish="stop"),
        chunk(choices=False, usage=USAGE),
    )
    out = complete(handler, STREAM_BODY)
    assert out.ok
    assert out.content == "Hello!"
    assert out.finish_reason == "stop"
    assert out.usage == USAGE
    assert out.response_id == "chatcmpl-1"
    # Three text-bearing chunks: the role-only chunk and the usage chunk are not counted.
    assert len(out.chunk_times) == 3
    assert out.ttft_s == pytest.approx(out.chunk_times[0], abs=1e-6)
    assert out.chunk_times == sorted(out.chunk_times)
    assert out.e2e_s is not None and out.e2e_s >= out.chunk_times[-1]


def test_role_only_first_chunk_does_not_start_ttft() -> None:
    handler = paced_stream_handler(chunk({"role": "assistant", "content": ""}), GAP_S,
                                   chunk({"content": "A"}), chunk({"content": "B"}, finish="stop"))
    out = complete(handler, STREAM_BODY)
    assert out.ok and out.content == "AB"
    assert len(out.chunk_times) == 2
    # Had the role-only chunk counted, ttft would be ~0 rather than after the pause.
    assert out.ttft_s is not None and out.ttft_s >= GAP_S
    assert out.ttfc_s == out.ttft_s


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_stream_reasoning_field_counts_for_ttft_but_not_ttfc(field: str) -> None:
    handler = paced_stream_handler(
        chunk({"role": "assistant"}),
        chunk({field: "think "}), chunk({field: "hard"}),
        GAP_S,
        chunk({"content": "Answer"}, finish="stop"),
    )
    out = complete(handler, STREAM_BODY)
    assert out.ok
    assert out.reasoning == "think hard"
    assert out.content == "Answer"
    assert len(out.chunk_times) == 3  # two reasoning chunks + one answer chunk
    assert out.ttft_s is not None and out.ttfc_s is not None
    assert out.ttfc_s - out.ttft_s >= GAP_S * 0.9


def test_stream_think_tags_split_and_ttfc_is_first_answer_chunk() -> None:
    handler = paced_stream_handler(
        chunk({"role": "assistant"}),
        chunk({"content": "<think>"}), chunk({"content": "step one"}), chunk({"content": "</think>\n\n"}),
        GAP_S,
        chunk({"content": "Final"}), chunk({"content": " answer"}, finish="stop"),
    )
    out = complete(handler, STREAM_BODY)
    assert out.ok
    assert out.content == "Final answer"
    assert out.reasoning == "step one"
    assert len(out.chunk_times) == 5  # reasoning chunks count as text-bearing
    assert out.ttft_s is not None and out.ttfc_s is not None
    assert out.ttfc_s >= out.ttft_s + GAP_S * 0.9
    assert out.ttfc_s == pytest.approx(out.chunk_times[3], abs=1e-6)


def test_streamed_tool_call_fragments_are_assembled() -> None:
    handler = stream_handler(
        chunk({"role": "assistant", "content": None}),
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "get_weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk(finish="tool_calls"),
        chunk(choices=False, usage=USAGE),
    )
    out = complete(handler, STREAM_BODY)
    assert out.ok
    assert out.finish_reason == "tool_calls"
    assert out.tool_calls is not None and len(out.tool_calls) == 1
    call = out.tool_calls[0]
    assert call["id"] == "call_1"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


# --- errors come back as data -------------------------------------------------------------------------

def test_http_500_with_json_error_body() -> None:
    out = complete(json_handler({"error": {"message": "model overloaded", "type": "server_error"}}, 500),
                   PLAIN_BODY)
    assert not out.ok
    assert out.error_kind == "http_error"
    assert out.status == 500
    assert out.error is not None and "model overloaded" in out.error and "500" in out.error


def test_http_429_retry_after_seconds() -> None:
    out = complete(json_handler({"error": "slow down"}, 429, {"Retry-After": "3"}), PLAIN_BODY)
    assert not out.ok and out.status == 429
    assert out.retry_after_s == 3


def test_http_429_retry_after_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    out = complete(json_handler({"error": "slow down"}, 429, {"Retry-After": when}), PLAIN_BODY)
    assert out.retry_after_s is not None
    assert 50 < out.retry_after_s <= 60


def test_html_error_page_is_named_as_html() -> None:
    page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text=page, headers={"content-type": "text/html"})
    out = complete(handler, PLAIN_BODY)
    assert not out.ok
    assert out.status == 502 and out.error_kind == "http_error"
    assert out.error is not None and "HTML" in out.error


def test_200_with_non_json_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="upstream said: hello?")
    out = complete(handler, PLAIN_BODY)
    assert not out.ok
    assert out.error_kind == "invalid_json"
    assert out.error is not None and "upstream said" in out.error


def test_200_json_without_choices() -> None:
    out = complete(json_handler({"id": "x", "object": "chat.completion"}), PLAIN_BODY)
    assert not out.ok
    assert out.error_kind == "invalid_response"


def test_stream_without_done_keeps_partial_content() -> None:
    handler = stream_handler(chunk({"role": "assistant"}), chunk({"content": "Once upon"}),
                             chunk({"content": " a time"}), done=False)
    out = complete(handler, STREAM_BODY)
    assert not out.ok
    assert out.error_kind == "stream_incomplete"
    assert out.content == "Once upon a time"
    assert len(out.chunk_times) == 2


def test_error_event_inside_a_stream() -> None:
    handler = stream_handler(chunk({"content": "par"}), {"error": {"message": "context length exceeded"}})
    out = complete(handler, STREAM_BODY)
    assert not out.ok
    assert out.error is not None and "context length exceeded" in out.error


@pytest.mark.parametrize(("exc", "kind"), [
    (httpx.ConnectError("connection refused"), "connect_error"),
    (httpx.ReadTimeout("read timed out"), "timeout"),
])
def test_transport_failures_become_outcomes(exc: Exception, kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc
    out = complete(handler, PLAIN_BODY)
    assert not out.ok
    assert out.error_kind == kind
    assert out.status is None


def test_null_message_is_an_invalid_response_not_an_exception() -> None:
    data = {"id": "x", "choices": [{"index": 0, "message": None, "finish_reason": "content_filter"}]}
    out = complete(json_handler(data), PLAIN_BODY)
    assert not out.ok
    assert out.error_kind == "invalid_response"


def test_stream_cut_off_inside_think_has_no_answer() -> None:
    handler = stream_handler(chunk({"content": "<think>"}), chunk({"content": "still thinking\n"}),
                             chunk({"content": "more\n\n"}, finish="length"))
    out = complete(handler, STREAM_BODY)
    assert out.ok
    assert out.reasoning is not None and out.reasoning.startswith("still thinking")
    assert out.content == ""
    assert out.ttfc_s is None


# --- what is sent -------------------------------------------------------------------------------------

def capture(requests: list[httpx.Request], response: Handler) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        result: httpx.Response = response(request)
        return result
    return handler


def test_api_key_goes_in_the_authorization_header() -> None:
    seen: list[httpx.Request] = []
    complete(capture(seen, json_handler(completion({"content": "ok"}))), PLAIN_BODY, api_key="sk-secret-1")
    assert len(seen) == 1
    assert seen[0].headers["authorization"] == "Bearer sk-secret-1"
    assert seen[0].method == "POST"
    assert str(seen[0].url) == f"{BASE_URL}/chat/completions"


def test_no_authorization_header_without_a_key() -> None:
    seen: list[httpx.Request] = []
    complete(capture(seen, json_handler(completion({"content": "ok"}))), PLAIN_BODY)
    assert "authorization" not in seen[0].headers


def test_body_is_sent_exactly_and_unset_params_are_absent() -> None:
    params = merge_params({"seed": 1, "temperature": 0.5}, {"seed": None})
    body = build_body("qwen/qwen3-8b", MESSAGES, params, stream=False)
    seen: list[httpx.Request] = []
    complete(capture(seen, json_handler(completion({"content": "ok"}))), body)
    sent = json.loads(seen[0].content)
    assert sent == {"model": "qwen/qwen3-8b", "messages": MESSAGES, "temperature": 0.5}
    assert "seed" not in sent
    assert "stream" not in sent and "stream_options" not in sent


def test_streamed_body_asks_for_usage() -> None:
    params = merge_params({"seed": 1, "temperature": 0.5}, {"seed": None})
    body = build_body("qwen/qwen3-8b", MESSAGES, params, stream=True)
    seen: list[httpx.Request] = []
    out = complete(capture(seen, stream_handler(chunk({"content": "ok"}, finish="stop"))), body)
    assert out.ok
    sent = json.loads(seen[0].content)
    assert "seed" not in sent
    assert sent["temperature"] == 0.5
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_stream_lines_may_end_in_crlf_or_a_lone_cr(newline: bytes) -> None:
    events = [chunk({"content": "Hel"}), chunk({"content": "lo"}, finish="stop")]
    text = b"".join(b"data: " + json.dumps(e).encode() + newline + newline for e in events)
    text += b"data: [DONE]" + newline + newline

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=SSE, content=text)

    out = complete(handler, STREAM_BODY)
    assert out.ok, out.error
    assert out.content == "Hello" and out.finish_reason == "stop"
