"""The probe through the backend protocol the runner uses, and its token ids from ``tokens.TokenCounter``."""

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
from evalharness.probe import probe
from evalharness.tokens import TokenCounter
from tests.unit.test_probe import HONOURED, FakeServer

# The config's target is a closed port: anything sent to it over HTTP would fail the probe's plain request.
CLOSED = ("name: p\ntarget: {base_url: 'http://127.0.0.1:9/v1', model: m}\nsuites: [suite.yaml]\n"
          "run: {timeout_s: 5, max_retries: 0}\n")


class Recording:
    """A backend that hands every body to ``inner`` and remembers it, and whether it was closed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.bodies: list[dict[str, Any]] = []
        self.closed = False

    async def complete(self, body: dict[str, Any]) -> Outcome:
        self.bodies.append(body)
        outcome: Outcome = await self.inner.complete(body)
        return outcome

    async def aclose(self) -> None:
        self.closed = True
        await self.inner.aclose()


def test_probe_sends_every_request_to_the_given_backend(write_config: Callable[..., Path]) -> None:
    backend = Recording(ChatClient("http://fake/v1", transport=httpx.MockTransport(FakeServer())))
    assert probe(str(write_config(CLOSED)), out="out", backend=backend) == 0
    doc = json.loads(Path("out/probe.json").read_text())
    found = {r["parameter"]: r["verdict"] for r in doc["results"]}
    # The same verdicts as over HTTP, except logit_bias: a backend has no tokenizer endpoint to read ids from.
    assert found == {**HONOURED, "logit_bias": "inconclusive"}
    assert doc["requests"] == len(backend.bodies) and backend.closed
    assert doc["target"]["kind"] == "python" and doc["usage_check"] is None


def test_token_ids_come_from_whichever_tokenize_endpoint_answers() -> None:
    seen: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/tokenize":  # vLLM/SGLang: no llama-cpp-python endpoint
            assert json.loads(request.content)["add_special_tokens"] is False
            return httpx.Response(200, json={"tokens": [7, 8, 9]})
        return httpx.Response(404)

    async def go() -> list[int] | None:
        counter = TokenCounter("http://fake/v1", "m", transport=httpx.MockTransport(server))
        try:
            return await counter.ids("The sea")
        finally:
            await counter.aclose()

    assert asyncio.run(go()) == [7, 8, 9]
    assert seen == ["/extras/tokenize", "/tokenize"]


def test_no_token_ids_when_no_endpoint_answers() -> None:
    async def go() -> tuple[list[int] | None, list[str]]:
        counter = TokenCounter("http://fake/v1", "m", transport=httpx.MockTransport(lambda r: httpx.Response(404)))
        try:
            return await counter.ids("The sea"), counter.tried
        finally:
            await counter.aclose()

    assert asyncio.run(go()) == (None, ["/extras/tokenize", "/tokenize"])


def test_a_probe_of_two_targets_writes_them_side_by_side(write_config: Callable[..., Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    two = CLOSED.replace("target: {base_url: 'http://127.0.0.1:9/v1', model: m}",
                         "targets:\n  - {name: a, base_url: 'http://127.0.0.1:9/v1', model: m}\n"
                         "  - {name: b, base_url: 'http://127.0.0.1:9/v1', model: m}")
    backend = Recording(ChatClient("http://fake/v1", transport=httpx.MockTransport(FakeServer())))
    assert probe(str(write_config(two)), out="out", backend=backend) == 0
    doc = json.loads(Path("out/probe.json").read_text())
    assert [t["name"] for t in doc["targets"]] == ["a", "b"] and backend.closed
    assert doc["targets"][0]["results"] == doc["targets"][1]["results"]  # the same server behind both
    table = capsys.readouterr().out
    header = next(line for line in table.splitlines() if line.strip().startswith("parameter"))
    assert header.split() == ["parameter", "a", "b"] and "* the targets' verdicts differ" not in table
    assert 'id="probe-side-by-side"' in Path("out/probe.html").read_text()
    # --target probes one, written as a probe of one target always was.
    assert probe(str(write_config(two)), out="one", target="b",
                 backend=Recording(ChatClient("http://fake/v1", transport=httpx.MockTransport(FakeServer())))) == 0
    assert "results" in json.loads(Path("one/probe.json").read_text())
