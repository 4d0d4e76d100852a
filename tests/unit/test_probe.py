"""The probe's verdicts against simulated servers: one that honours everything, one that ignores or rejects."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from evalharness.cli import main
from evalharness.client import ChatClient
from evalharness.config import ThinkingOptions
from evalharness.errors import TargetUnavailable
from evalharness.probe import Finding, Prober, Tokenizer, format_table, render_html, run_experiments
from evalharness.probe.experiments import FAILED_HINT, settle
from evalharness.probe.prober import SEPARATOR

GREEDY = ["The", " sea", " is", " vast", " and", " deep", " under", " the", " grey", " morning", " sky", " today",
          " and", " again", " and", " calm", "."]
VOCAB = [" sun", " moon", " wave", " salt", " wind", " blue", " ship", " gull", " reef", " tide", " foam", " sand"]
HONOURED = {
    "temperature": "honored", "seed": "honored", "top_k": "honored", "top_p": "honored", "min_p": "honored",
    "top_a": "honored", "max_tokens": "honored", "max_completion_tokens": "honored", "stop": "honored",
    "logit_bias": "honored", "logprobs": "honored", "top_logprobs": "honored", "frequency_penalty": "honored",
    "presence_penalty": "honored", "repetition_penalty": "honored",
    "response_format.json_object": "honored", "response_format.json_schema": "honored",
    "structured_outputs": "inconclusive", "structured_outputs.choice": "honored", "tools": "inconclusive",
    "tool_choice": "honored",
    "parallel_tool_calls": "inconclusive", "verbosity": "honored", "thinking": "honored"}


class FakeServer:
    """A chat-completions server simulated token by token; it ignores or rejects the parameters it is told to.

    With ``prefix_cache`` it behaves like llama.cpp's prefix cache on a CPU: a prompt sent right after the same
    prompt has only its last token evaluated again, which changes the arithmetic, and so the output.
    """

    def __init__(self, ignore: frozenset[str] = frozenset(), reject: frozenset[str] = frozenset(),
                 tokenize: bool = True, prefix_cache: bool = False) -> None:
        self.ignore = ignore
        self.reject = reject
        self.tokenize = tokenize
        self.prefix_cache = prefix_cache
        self.last_prompt: str | None = None
        self.unseeded = random.Random(1)
        self.ids: dict[str, int] = {}
        self.requests: list[dict[str, Any]] = []

    def token_id(self, token: str) -> int:
        return self.ids.setdefault(token, 100 + len(self.ids))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/extras/tokenize" and self.tokenize:
            text = json.loads(request.content)["input"]
            first = next((t for t in [*GREEDY, *VOCAB, "A"] if text.startswith(t)), text)
            return httpx.Response(200, json={"tokens": [self.token_id(first), 1]})
        if request.url.path != "/v1/chat/completions":
            return httpx.Response(404, json={"detail": "Not Found"})
        body = json.loads(request.content)
        self.requests.append(body)
        prompt = body["messages"][-1]["content"]
        body["_cache_hit"], self.last_prompt = self.prefix_cache and prompt == self.last_prompt, prompt
        fmt = (body.get("response_format") or {}).get("type")
        for name in self.reject:
            if name in body or name == fmt:
                return httpx.Response(400, json={"error": {"message": f"unsupported: {name}"}})
        return httpx.Response(200, json=self.answer(body, fmt))

    def given(self, body: dict[str, Any], name: str) -> Any:
        return None if name in self.ignore else body.get(name)

    def answer(self, body: dict[str, Any], fmt: str | None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant"}
        kwargs = self.given(body, "chat_template_kwargs") or {}
        if kwargs.get("enable_thinking") and "thinking" not in self.ignore:
            message["reasoning"] = "17 plus 25: 42."
        choice = self.given(body, "tool_choice")
        if isinstance(choice, dict):
            message["tool_calls"] = [{"id": "c", "type": "function", "function": {
                "name": choice["function"]["name"], "arguments": '{"city": "Paris"}'}}]
            return self.response(message, "tool_calls", 5)
        constraint = self.given(body, "structured_outputs")
        if isinstance(constraint, dict) and "choice" in constraint:
            message["content"] = constraint["choice"][-1]
            return self.response(message, "stop", 3)
        if fmt in ("json_object", "json_schema") and fmt not in self.ignore:
            message["content"] = '{"fruit": "apple"}'
            return self.response(message, "stop", 6)
        tokens = self.tokens(body)
        cap = min(c for c in (self.given(body, "max_tokens"), self.given(body, "max_completion_tokens"), 99) if c)
        finish = "length" if len(tokens) > cap else "stop"
        tokens = tokens[:cap]
        text = "".join(tokens)
        for word in self.given(body, "stop") or ():
            if word in text:
                text, finish = text[:text.index(word)], "stop"
        message["content"] = text
        out = self.response(message, finish, len(tokens))
        if self.given(body, "logprobs"):
            n = self.given(body, "top_logprobs") or 0
            out["choices"][0]["logprobs"] = {"content": [
                {"token": t, "logprob": -0.5, "top_logprobs": [{"token": t, "logprob": -0.5}] * n} for t in tokens]}
        return out

    def tokens(self, body: dict[str, Any]) -> list[str]:
        temperature = self.given(body, "temperature")
        greedy = (temperature == 0 or self.given(body, "top_k") == 1 or (self.given(body, "top_p") or 1) <= 0.01
                  or (self.given(body, "min_p") or 0) >= 1)
        if greedy:
            tokens = list(GREEDY)
        else:
            seed = self.given(body, "seed")
            rng = random.Random(seed) if seed is not None else self.unseeded
            tokens = [rng.choice(VOCAB) for _ in GREEDY]
        if body["_cache_hit"]:
            tokens[5] = " cached"
        for name in ("frequency_penalty", "presence_penalty", "repetition_penalty", "repeat_penalty",
                     "verbosity", "top_a"):
            if self.given(body, name):
                tokens[3] = " " + name
        banned = {int(k) for k, v in (self.given(body, "logit_bias") or {}).items() if v <= -100}
        if self.token_id(tokens[0]) in banned:
            tokens[0] = "A"
        return tokens

    @staticmethod
    def response(message: dict[str, Any], finish: str, completion_tokens: int) -> dict[str, Any]:
        return {"id": "r", "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 9, "completion_tokens": completion_tokens,
                          "total_tokens": 9 + completion_tokens}}


def probe_fake(server: FakeServer, thinking: ThinkingOptions | None = None) -> dict[str, Finding]:
    async def go() -> list[Finding]:
        transport = httpx.MockTransport(server)
        async with ChatClient("http://fake/v1", transport=transport) as chat:
            prober = Prober(chat, "m", {}, thinking or ThinkingOptions(),
                            tokenizer=Tokenizer("http://fake/v1", "m", {}, transport=transport))
            return await run_experiments(prober)

    findings = asyncio.run(go())
    assert len({f.parameter for f in findings}) == len(findings), "one finding per parameter"
    return {f.parameter: f for f in findings}


def verdicts(findings: dict[str, Finding]) -> dict[str, str]:
    return {name: f.verdict for name, f in findings.items()}


def test_a_server_that_honours_everything_gets_honored() -> None:
    found = probe_fake(FakeServer())
    assert verdicts(found) == HONOURED
    assert "5 completion tokens, finish_reason length" in found["max_tokens"].evidence
    assert "stop ['vast'] ended the output at “The sea is”" in found["stop"].evidence


def test_ignored_parameters_are_caught_and_rejections_quoted() -> None:
    server = FakeServer(ignore=frozenset({"seed", "top_k", "stop", "max_tokens", "logit_bias", "repetition_penalty",
                                          "top_logprobs", "chat_template_kwargs", "tool_choice"}),
                        reject=frozenset({"json_schema", "verbosity"}))
    found = probe_fake(server)
    expected = {"seed": "ignored", "top_k": "ignored", "stop": "ignored", "max_tokens": "ignored",
                "logit_bias": "ignored", "repetition_penalty": "ignored", "top_logprobs": "ignored",
                "thinking": "ignored", "tool_choice": "ignored", "response_format.json_schema": "rejected",
                "verbosity": "rejected", "logprobs": "honored", "top_p": "honored",
                "structured_outputs": "inconclusive"}
    assert {k: found[k].verdict for k in expected} == expected
    assert found["response_format.json_schema"].evidence == "HTTP 400: unsupported: json_schema"
    assert "nothing for it to switch" in found["structured_outputs"].evidence
    # The server's own name for it does work: the evidence says so.
    assert "repeat_penalty (via extra_body) does change it" in found["repetition_penalty"].evidence


def test_a_prefix_cache_does_not_change_the_verdicts() -> None:
    server = FakeServer(prefix_cache=True)
    assert verdicts(probe_fake(server)) == HONOURED
    # Each request came right after the same separator, so none found its own prompt in the cache.
    prompts = [b["messages"][-1]["content"] for b in server.requests]
    assert prompts[0::2] == [SEPARATOR] * (len(prompts) // 2)
    assert SEPARATOR not in prompts[1::2] and len(prompts) % 2 == 0
    assert not any(b["_cache_hit"] for b in server.requests)


def test_without_a_tokenize_endpoint_logit_bias_is_inconclusive() -> None:
    found = probe_fake(FakeServer(tokenize=False))
    assert found["logit_bias"].verdict == "inconclusive"
    assert "/extras/tokenize, /tokenize" in found["logit_bias"].evidence


def test_thinking_via_soft_switch_puts_the_switch_in_the_prompt() -> None:
    server = FakeServer()
    found = probe_fake(server, ThinkingOptions(via="soft_switch"))
    prompts = [b["messages"][-1]["content"] for b in server.requests if "17 plus 25" in b["messages"][-1]["content"]]
    assert sorted(prompts) == ["What is 17 plus 25? /no_think", "What is 17 plus 25? /think"]
    # This fake thinks only through chat_template_kwargs: the soft switch changes nothing.
    assert found["thinking"].verdict == "ignored" and "via soft_switch" in found["thinking"].evidence


def test_a_server_that_fails_a_plain_request_stops_the_probe() -> None:
    with pytest.raises(TargetUnavailable, match="plain request"):
        probe_fake(FakeServer(reject=frozenset({"temperature"})))


def test_cli_probe_exit_codes(write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    closed = write_config("name: p\ntarget: {base_url: 'http://127.0.0.1:9/v1', model: m}\nsuites: [suite.yaml]\n"
                          "run: {timeout_s: 5, max_retries: 0}\n")
    assert main(["probe", str(closed), "--out", "out"]) == 3
    assert "did not answer a plain request" in capsys.readouterr().err
    assert not Path("out").exists(), "a probe that never ran leaves no empty folder behind"
    bad = write_config("name: p\ntarget: {kind: local, thinking: {via: telepathy}}\nsuites: [suite.yaml]\n")
    assert main(["probe", str(bad)]) == 2
    assert "target.thinking.via" in capsys.readouterr().err


def test_html_and_console_show_every_verdict_and_escape_model_output() -> None:
    results = [{"parameter": "seed", "verdict": "honored", "evidence": "same output"},
               {"parameter": "stop", "verdict": "ignored", "evidence": "went on: <script>alert(1)</script> " * 9}]
    doc = {"target": {"model": "m", "base_url": "http://x/v1"}, "started_at": "t", "requests": 2,
           "harness_version": "0", "results": results}
    page = render_html(doc)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "1 honored" in page and "1 ignored" in page
    table = format_table(results, width=60).splitlines()
    assert table[0].split() == ["parameter", "verdict", "evidence"]
    assert table[2].startswith("seed") and "honored" in table[2]
    assert len(table[3]) < 100 and table[3].endswith("…")


def test_an_inconclusive_verdict_says_what_would_settle_it() -> None:
    failed = settle(Finding("top_k", "inconclusive", "the request failed: timed out before the response"))
    assert failed.evidence.endswith(f"— to settle it: {FAILED_HINT}")
    thinking = settle(Finding("thinking", "inconclusive", "via chat_template_kwargs: reasoning on 0 chars"))
    assert "target.thinking.via" in thinking.evidence
    honored = Finding("seed", "honored", "identical")
    assert settle(honored) == honored
