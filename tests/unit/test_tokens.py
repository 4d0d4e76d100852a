"""Token counts from the server's tokenizer when a response has none, and cached-prompt pricing.

Each fake server below answers its tokenize endpoint the way the real one does (request and response shape),
counting one token per word so the expected figures can be worked out by hand.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from evalharness.backend import Outcome
from evalharness.client import ChatClient
from evalharness.config import Pricing, RunOptions
from evalharness.console import format_outcome
from evalharness.plan import WorkItem
from evalharness.runner import Runner
from evalharness.scoring.metrics import cell_metrics
from evalharness.store import RESULTS, ResultWriter
from evalharness.summary import build_summary
from evalharness.tokens import TokenCounter, render_plain
from evalharness.usage import cost_of

BASE_URL = "http://mock.test/v1"
ROOT = "http://mock.test"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "name three colours"}]
ANSWER = "red green blue"
BOS = 1  # what the fake llama-cpp-python tokenizer puts before every text, as a real one with a BOS does


def words(text: str) -> int:
    return len(text.split())


def chat_response(usage: dict[str, Any] | None = None) -> httpx.Response:
    data: dict[str, Any] = {"id": "r1", "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": ANSWER}}]}
    if usage is not None:
        data["usage"] = usage
    return httpx.Response(200, json=data)


class FakeServer:
    """A chat endpoint plus the tokenize routes of one kind of server; records every request path."""

    def __init__(self, routes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]],
                 usage: dict[str, Any] | None = None) -> None:
        self.routes = routes
        self.usage = usage
        self.paths: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        if path == "/v1/chat/completions":
            return chat_response(self.usage)
        route = self.routes.get(path)
        if route is None:
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(200, json=route(json.loads(request.content)))


def llama_cpp_python() -> FakeServer:
    """``/extras/tokenize{,/count}``: {"input", "model"} → tokens of the text, BOS first."""
    def tokens(body: dict[str, Any]) -> dict[str, Any]:
        return {"tokens": list(range(BOS + words(body["input"])))}
    return FakeServer({"/extras/tokenize": tokens,
                       "/extras/tokenize/count": lambda body: {"count": len(tokens(body)["tokens"])}})


TEMPLATE_TOKENS = 4  # the fake vLLM template's markers per message, plus the assistant turn


def vllm() -> FakeServer:
    """``/tokenize``: {"model", "messages"} → the templated chat's count; {"model", "prompt"} → the text's."""
    def tokenize(body: dict[str, Any]) -> dict[str, Any]:
        if "messages" in body:
            n = sum(words(m["content"]) + TEMPLATE_TOKENS for m in body["messages"]) + TEMPLATE_TOKENS
        else:
            n = words(body["prompt"]) + (BOS if body.get("add_special_tokens", True) else 0)
        return {"count": n, "tokens": list(range(n)), "max_model_len": 32768}
    return FakeServer({"/tokenize": tokenize})


def run_one(server: FakeServer, tmp_path: Path, *, pricing: Pricing | None = None,
            count: bool = True) -> dict[str, Any]:
    """One request through the runner (with token counting, as ``evalharness run`` does); its record."""
    tmp_path.mkdir(parents=True, exist_ok=True)

    async def go() -> None:
        writer = ResultWriter(tmp_path)
        transport = httpx.MockTransport(server)
        counter = TokenCounter(BASE_URL, "m", transport=transport) if count else None
        async with ChatClient(BASE_URL, transport=transport) as chat:
            runner = Runner(chat, model="m", options=RunOptions(concurrency=1, stream=False),
                            pricing=pricing or Pricing(input_per_1k=1.0, output_per_1k=2.0), writer=writer,
                            counter=counter)
            item = WorkItem(item_id="c/s/k/0", cell_id="c", suite="s", case_id="k", repeat=0,
                            messages=MESSAGES, params={})
            await runner.run([item], total=1)
        writer.close()
        if counter:
            await counter.aclose()
    asyncio.run(go())
    [line] = (tmp_path / RESULTS).read_text().splitlines()
    record: dict[str, Any] = json.loads(line)
    return record


def test_llama_cpp_python_tokenizer_counts_a_response_without_usage(tmp_path: Path) -> None:
    record = run_one(llama_cpp_python(), tmp_path)
    assert record["usage_source"] == "counted"
    # The prompt has no template endpoint here: counted on the plain rendering (BOS included), an estimate.
    assert record["usage"]["prompt_tokens"] == BOS + words(render_plain({"messages": MESSAGES}))
    assert record["usage_count"] == {"endpoint": "/extras/tokenize/count", "prompt_estimated": True}
    # Generated text starts with no BOS: the one the endpoint adds is taken off.
    assert record["usage"]["completion_tokens"] == words(ANSWER)
    assert record["cost"] == pytest.approx(record["usage"]["prompt_tokens"] / 1000 + words(ANSWER) * 2 / 1000)


def test_vllm_tokenizer_counts_the_prompt_on_the_chat_template(tmp_path: Path) -> None:
    server = vllm()
    record = run_one(server, tmp_path)
    assert record["usage_source"] == "counted"
    assert record["usage"]["prompt_tokens"] == sum(words(m["content"]) + TEMPLATE_TOKENS for m in MESSAGES) + 4
    assert record["usage"]["completion_tokens"] == words(ANSWER)  # add_special_tokens: false for output
    assert record["usage_count"] == {"endpoint": "/tokenize", "prompt_estimated": False}
    assert "/v1/tokenize" not in server.paths  # the endpoint sits at the server's root


def llama_cpp() -> FakeServer:
    """llama.cpp's own server: ``/tokenize`` {"content", "add_special"} → tokens; ``/apply-template``."""
    def tokenize(body: dict[str, Any]) -> dict[str, Any]:
        if "content" not in body:  # as llama.cpp answers a body it does not understand: no tokens
            return {"tokens": []}
        return {"tokens": list(range(words(body["content"]) + (BOS if body.get("add_special") else 0)))}

    def apply_template(body: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": "".join(f"<s> {m['role']} {m['content']} </s> " for m in body["messages"]) + "<s> bot"}
    return FakeServer({"/tokenize": tokenize, "/apply-template": apply_template})


def test_llama_cpp_server_counts_the_prompt_on_its_template(tmp_path: Path) -> None:
    record = run_one(llama_cpp(), tmp_path)
    assert record["usage_source"] == "counted"
    # Each message renders as "<s> ROLE CONTENT </s>" (its words + 3), then "<s> bot" (2).
    assert record["usage"]["prompt_tokens"] == BOS + sum(words(m["content"]) + 3 for m in MESSAGES) + 2
    assert record["usage"]["completion_tokens"] == words(ANSWER)
    assert record["usage_count"] == {"endpoint": "/tokenize", "prompt_estimated": False}


def test_detection_happens_once_per_run(tmp_path: Path) -> None:
    server = llama_cpp_python()

    async def go() -> None:
        counter = TokenCounter(BASE_URL, "m", transport=httpx.MockTransport(server))
        outcome = Outcome(ok=True, content=ANSWER)
        results = await asyncio.gather(*(counter.count({"messages": MESSAGES}, outcome) for _ in range(6)))
        await counter.aclose()
        assert all(r is not None and r.usage["completion_tokens"] == words(ANSWER) for r in results)

    asyncio.run(go())
    probes = [p for p in server.paths if p != "/extras/tokenize/count"]
    assert probes == []
    # Detection: two counts (an empty text and a probe); then two counts per response.
    assert len(server.paths) == 2 + 6 * 2


def test_a_server_without_a_tokenizer_leaves_usage_null(tmp_path: Path) -> None:
    server = FakeServer({})
    record = run_one(server, tmp_path)
    assert record["ok"] and record["usage"] is None and record["usage_source"] is None
    assert record["cost"] is None
    # Each known endpoint was tried once, and the chat request was not repeated.
    assert server.paths.count("/v1/chat/completions") == 1


def test_server_usage_is_used_as_it_is_and_only_checked(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    server = llama_cpp_python()
    server.usage = usage
    record = run_one(server, tmp_path)
    assert record["usage"] == usage and record["usage_source"] == "server" and record["usage_count"] is None
    # Counted beside it, for the usage check: the same 3 completion tokens.
    assert record["usage_check"]["completion_tokens"] == words(ANSWER)
    assert server.paths.count("/v1/chat/completions") == 1


@pytest.mark.parametrize(("reported", "flagged"), [(3, False), (4, True)])
def test_usage_a_gateway_estimated_is_said_as_such(tmp_path: Path, reported: int, flagged: bool) -> None:
    # The model's tokenizer counts 3 completion tokens in the answer; a gateway that estimated 4 is off by 33%.
    server = llama_cpp_python()
    server.usage = {"prompt_tokens": 11, "completion_tokens": reported, "total_tokens": 11 + reported}
    record = run_one(server, tmp_path)
    summary = build_summary(_manifest(), [record, {**record, "item_id": "c/s/k/1", "repeat": 1}], complete=True)
    check = summary["totals"]["usage_check"]
    assert check["sample"] == 2 and check["completion_tokens"] == {
        "reported": 2 * reported, "counted": 2 * words(ANSWER), "difference": round(abs(reported - 3) / 3, 4)}
    assert "prompt_tokens" not in check  # the counted prompt was an estimate: not compared
    assert check["estimated_by_gateway"] is flagged
    out = format_outcome(summary, "run", [])
    assert ("usage looks estimated by a gateway: reported completion tokens differ by 33%" in out) is flagged


def test_without_a_tokenizer_reported_usage_is_not_checked_and_nothing_is_said(tmp_path: Path) -> None:
    record = run_one(FakeServer({}, usage={"prompt_tokens": 20, "completion_tokens": 5}), tmp_path)
    assert record["usage_check"] is None
    summary = build_summary(_manifest(), [record], complete=True)
    assert summary["totals"]["usage_check"] is None
    assert "gateway" not in format_outcome(summary, "run", [])


def test_reasoning_is_counted_in_completion_tokens_and_apart() -> None:
    async def go() -> dict[str, Any]:
        counter = TokenCounter(BASE_URL, "m", transport=httpx.MockTransport(vllm()))
        counted = await counter.count({"messages": MESSAGES},
                                      Outcome(ok=True, content=ANSWER, reasoning="they want colours"))
        await counter.aclose()
        assert counted is not None
        return counted.usage
    usage = asyncio.run(go())
    assert usage["completion_tokens"] == words(ANSWER) + 3
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 3}


# --- cached prompt tokens -------------------------------------------------------------------------------------

CACHED_USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "prompt_tokens_details": {"cached_tokens": 800}}


def test_cached_prompt_tokens_are_priced_at_the_cached_rate() -> None:
    pricing = Pricing(input_per_1k=1.0, output_per_1k=2.0, cached_input_per_1k=0.25)
    # 200 uncached at 1.0, 800 cached at 0.25, 100 out at 2.0.
    assert cost_of(CACHED_USAGE, pricing) == pytest.approx(0.2 + 0.2 + 0.2)
    # Without a cached price they cost what any prompt token costs.
    assert cost_of(CACHED_USAGE, Pricing(input_per_1k=1.0, output_per_1k=2.0)) == pytest.approx(1.0 + 0.2)


def test_cached_tokens_and_saving_reach_the_cell_and_the_totals(tmp_path: Path) -> None:
    pricing = Pricing(currency="CNY", input_per_1k=1.0, output_per_1k=2.0, cached_input_per_1k=0.25)
    record = run_one(FakeServer({}, usage=CACHED_USAGE), tmp_path, pricing=pricing)
    assert record["cost"] == pytest.approx(0.6) and record["cached_saving"] == pytest.approx(0.6)
    summary = build_summary(_manifest(), [record, {**record, "item_id": "c/s/k/1", "repeat": 1}], complete=True)
    [cell] = summary["cells"]
    assert cell["metrics"]["cached_tokens"] == {"value": 1600, "mean": 800, "n": 2, "saving": pytest.approx(1.2),
                                                "currency": "CNY"}
    assert summary["totals"]["cached_tokens"] == 1600
    assert summary["totals"]["cached_saving"] == pytest.approx(1.2)
    assert "1,600 cached prompt tokens, saving 1.200000 CNY" in format_outcome(summary, "run", [])


@pytest.mark.parametrize("price", [-0.1, "free"])
def test_a_bad_cached_price_is_a_config_error(price: Any) -> None:
    with pytest.raises(ValueError, match="cached_input_per_1k"):
        Pricing.model_validate({"input_per_1k": 1.0, "cached_input_per_1k": price})


# --- how counted figures are shown ---------------------------------------------------------------------------

def _manifest() -> dict[str, Any]:
    return {"run_id": "r", "started_at": "2026-01-01T00:00:00+00:00", "target": {"model": "m"},
            "config_path": "/x/c.yaml",
            "config": {"name": "n", "run": {"stream": False}, "pricing": {"currency": "CNY"}, "gates": []},
            "plan": {"requests": 2, "cells": [{"cell_id": "c", "label": "default", "params": {}}]}, "cases": {}}


def test_counted_figures_are_marked_and_a_mix_is_never_silent(tmp_path: Path) -> None:
    counted = run_one(llama_cpp_python(), tmp_path / "a")
    server = run_one(FakeServer({}, usage={"prompt_tokens": 20, "completion_tokens": 5}), tmp_path / "b")
    only_counted = cell_metrics([counted], {}, stream=False, currency="CNY")
    assert only_counted["completion_tokens"]["source"] == "counted"
    assert only_counted["prompt_tokens"]["prompt_estimated"] is True
    assert "prompt_estimated" not in only_counted["completion_tokens"]  # counted on the output itself
    assert only_counted["cost"]["prompt_estimated"] is True
    assert only_counted["cost"]["source"] == "counted"
    mixed = cell_metrics([counted, server], {}, stream=False, currency="CNY")
    assert mixed["prompt_tokens"]["source"] == "mixed"
    assert mixed["prompt_tokens"]["sources"] == {"server": 1, "counted": 1}
    assert "source" not in cell_metrics([server], {}, stream=False, currency="CNY")["prompt_tokens"]

    summary = build_summary(_manifest(), [counted, {**counted, "item_id": "c/s/k/1", "repeat": 1}], complete=True)
    totals = summary["totals"]
    assert totals["usage_source"] == "counted" and totals["prompt_tokens_estimated"] is True
    assert totals["usage_sources"] == {"counted": 2}
    out = format_outcome(summary, "run", [])
    assert "counted with the server's tokenizer" in out and "(counted)" in out
