"""The probe's plumbing: findings, and the request sender with shared baselines (the server's tokenizer is
``tokens.TokenCounter``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from evalharness import backend as kinds
from evalharness.backend import Backend, Outcome
from evalharness.config import ThinkingOptions
from evalharness.params import build_body
from evalharness.thinking import apply_thinking
from evalharness.tokens import TokenCounter

Verdict = Literal["honored", "ignored", "rejected", "inconclusive"]
VERDICTS: tuple[Verdict, ...] = ("honored", "ignored", "rejected", "inconclusive")

OPEN = "Write one sentence about the sea."      # long greedy answer; sampling visibly changes it
# Sent before every probe request (see Prober): shares nothing with the probe's prompts but the chat template.
SEPARATOR = "Say OK."

# Transient failures worth one more try; an HTTP 500 is not among them: llama-cpp-python answers a body it
# cannot parse with 500, which is a rejection, not bad luck.
RETRY_STATUS = frozenset({408, 429, 502, 503, 504})
# Answers whose reported usage is checked against the model server's tokenizer (see usage.usage_check).
USAGE_SAMPLE = 8


@dataclass(frozen=True)
class Finding:
    """The verdict on one parameter and the evidence for it."""

    parameter: str
    verdict: Verdict
    evidence: str


def text_of(outcome: Outcome) -> str:
    """Everything the model generated: reasoning, answer and tool-call arguments."""
    calls = "".join(json.dumps(c.get("function"), sort_keys=True) for c in outcome.tool_calls or ())
    return (outcome.reasoning or "") + (outcome.content or "") + calls


def quote(text: str | None, limit: int = 48) -> str:
    """A short quotation of model output for evidence text."""
    if text is None:
        return "(nothing)"
    flat = " ".join(text.split())
    # Typographic quotes: model output is often JSON, whose own quotes would need escaping.
    return f"“{flat if len(flat) <= limit else flat[:limit] + '…'}”"


def contrast(changed: str, before: str, limit: int = 40) -> str:
    """Two outputs quoted from just before where they first differ: ``“…X” instead of “…Y”``."""
    a, b = " ".join(changed.split()), " ".join(before.split())
    start = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, start - 12)
    lead = "…" if start else ""
    return f"{quote(lead + a[start:], limit)} instead of {quote(lead + b[start:], limit)}"


def failure(parameter: str, outcome: Outcome, what: str = "") -> Finding | None:
    """A finding for a failed request: an HTTP error is a rejection, anything else leaves it open.

    A 5xx is a rejection too (the plain baseline request was answered, so it is this parameter the server
    fails on: vLLM answers a ``structured_outputs`` it cannot read with HTTP 500), said as a server error."""
    if outcome.ok:
        return None
    if outcome.error_kind == kinds.HTTP and outcome.status is not None and outcome.status not in RETRY_STATUS:
        server = "server error: " if outcome.status >= 500 else ""
        return Finding(parameter, "rejected", f"{what}{server}{outcome.error}")
    return Finding(parameter, "inconclusive", f"{what}the request failed: {outcome.error}")


class Prober:
    """Sends the experiments' requests one at a time, each right after the same separator request.

    Experiments compare outputs for identity (temperature 0 twice, a seed twice, top_k=1 against greedy, a
    penalty against none), so two requests that differ only in the parameter must meet the server in the same
    state. Servers cache prompt prefixes (llama.cpp, vLLM, SGLang, hosted APIs), and what is cached changes
    the arithmetic: llama-cpp-python keeps the KV cache of the previous request's prompt, so a prompt sent
    twice in a row has only its last token evaluated again, alone, whose logits differ slightly from those of
    the same token evaluated in a batch, enough to change a greedy output after a few tokens. So every request
    is preceded by ``SEPARATOR`` (temperature 0, one token), and nothing else runs between the two: each
    request finds the separator's prompt in the cache and evaluates its own prompt after the chat template's
    common prefix, whatever ran before. Sending one at a time also keeps batch composition, which changes
    the arithmetic on batching servers, out of the comparison. The separators count in ``requests``.
    """

    def __init__(self, chat: Backend, model: str, base: dict[str, Any], thinking: ThinkingOptions, *,
                 max_retries: int = 2, tokenizer: TokenCounter | None = None,
                 check_target: Callable[[], Awaitable[None]] | None = None) -> None:
        self.chat = chat
        # For a server the harness started: raises TargetCrashed once it has died, which ends the probe.
        self.check_target = check_target
        self.model = model
        self.base = base
        self.thinking = thinking
        self.tokenizer = tokenizer
        self.max_retries = max_retries
        self.requests = 0
        # The first answers that carried usage, with their requests: the usage check counts their tokens.
        self.answered: list[tuple[dict[str, Any], Outcome]] = []
        self._turn = asyncio.Lock()
        self._shared: dict[str, asyncio.Future[Outcome]] = {}
        self._separator = self._body({"temperature": 0, "max_tokens": 1}, SEPARATOR, None)

    def _body(self, params: dict[str, Any], prompt: str, thinking: str | None) -> dict[str, Any]:
        merged = {**self.base, **params}
        extra = {**(self.base.get("extra_body") or {}), **(params.get("extra_body") or {})}
        if extra:
            merged["extra_body"] = extra
        if thinking is not None:
            merged["thinking"] = thinking
        messages, merged = apply_thinking([{"role": "user", "content": prompt}], merged,
                                          via=self.thinking.via, message=self.thinking.message)
        return build_body(self.model, messages, merged, stream=False)

    async def ask(self, params: dict[str, Any], prompt: str = OPEN, *, thinking: str | None = None) -> Outcome:
        """One request: ``prompt`` as the user message, ``params`` over the config's extra_body/thinking."""
        body = self._body(params, prompt, thinking)
        attempt = 0
        async with self._turn:
            while True:
                # Only the server's state matters: the separator's own answer is not looked at.
                await self.chat.complete(self._separator)
                self.requests += 2
                outcome = await self.chat.complete(body)
                on_the_way = outcome.error_kind in (kinds.TIMEOUT, kinds.CONNECT, kinds.STREAM_BROKEN)
                if on_the_way and self.check_target is not None:
                    await self.check_target()
                transient = on_the_way or (outcome.error_kind == kinds.HTTP and outcome.status in RETRY_STATUS)
                if outcome.ok and outcome.usage and len(self.answered) < USAGE_SAMPLE:
                    self.answered.append((body, outcome))
                if outcome.ok or not transient or attempt >= self.max_retries:
                    return outcome
                await asyncio.sleep(min(outcome.retry_after_s or 0.5 * 2 ** attempt, 30.0))
                attempt += 1

    def shared(self, key: str, params: dict[str, Any], prompt: str = OPEN) -> Awaitable[Outcome]:
        """A request several experiments compare with: sent once, its answer shared."""
        if key not in self._shared:
            self._shared[key] = asyncio.ensure_future(self.ask(params, prompt))
        return self._shared[key]


#: The probe reads token ids with the counter the runner counts usage with (``TokenCounter.ids``).
Tokenizer = TokenCounter
