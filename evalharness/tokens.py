"""Counting tokens with the server's own tokenizer when a response carries no ``usage``.

llama-cpp-python's server (the bundled target) sends no ``usage`` in streams; without counts a run has no
token or cost figures at all. Many servers expose their tokenizer, though, and the run detects which one
once (the first time a response lacks usage) and keeps the answer:

- vLLM: ``POST /tokenize`` at the server root (not under ``/v1``) takes the chat's ``messages`` and applies
  the model's chat template, so the prompt count is exact; ``{"prompt": ...}`` counts plain text.
  Both answer ``{"count", "tokens", "max_model_len"}``.
- SGLang (and vLLM without chat support): the same ``/tokenize`` with ``{"prompt": ...}`` only.
- llama.cpp's own server: ``POST /tokenize`` with ``{"content": ...}`` → ``{"tokens"}``, and
  ``POST /apply-template`` renders the chat with the model's template.
- llama-cpp-python: ``POST /extras/tokenize`` with ``{"input", "model"}`` → ``{"tokens"}``, and
  ``/extras/tokenize/count`` → ``{"count"}``, which is used.

Completion tokens are counted on the generated text (content, reasoning and tool-call arguments). Prompt
tokens are counted on the chat as the server's template renders it where the endpoint can do that;
elsewhere on a plain rendering of the roles and contents, which misses the template's markers and any
default system prompt: such counts are recorded as estimates (``prompt_estimated``).

Counting runs after a response is timed and before its record is written, never inside a measured
interval, and at most ``concurrency`` counts at a time, so the extra requests load the server little.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from evalharness.backend import Outcome
from evalharness.types import Usage, UsageCount

#: What detection sends: any tokenizer gives this at least one token.
PROBE_TEXT = "Hello"
#: Counts in flight at once (each is one or two small requests to the server).
DEFAULT_CONCURRENCY = 2

Post = Callable[[str, dict[str, Any]], Awaitable[Any]]


@dataclass(frozen=True)
class Counted:
    """Token counts for one response, as a ``usage`` object, and how they were obtained."""

    usage: Usage
    endpoint: str
    prompt_estimated: bool

    def describe(self) -> UsageCount:
        """What a record stores as ``usage_count``."""
        return {"endpoint": self.endpoint, "prompt_estimated": self.prompt_estimated}


def server_root(base_url: str) -> str:
    """The server's root URL: tokenize endpoints sit beside ``/v1``, not under it."""
    return base_url.rstrip("/").removesuffix("/v1")


def _text(content: Any) -> str:
    """A message's content as text (the text parts of a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "" if content is None else json.dumps(content)


def render_plain(body: dict[str, Any]) -> str:
    """An approximation of the rendered chat for tokenizers that cannot apply the chat template: each
    message's role and content, the tools offered, and the assistant turn the model answers in."""
    parts = [f"{m.get('role', 'user')}\n{_text(m.get('content'))}\n" for m in body.get("messages") or ()]
    if body.get("tools"):
        parts.insert(0, "tools\n" + json.dumps(body["tools"], ensure_ascii=False) + "\n")
    return "".join(parts) + "assistant\n"


def generated_text(outcome: Outcome) -> tuple[str, str]:
    """The generated text of a response: (the answer and its tool calls, the reasoning). Counted apart, as
    the model generated them apart (a reasoning parser takes the markers between them away)."""
    calls = "".join(str(c.get("function", {}).get("name") or "") + str(c.get("function", {}).get("arguments") or "")
                    for c in outcome.tool_calls or () if isinstance(c, dict))
    return (outcome.content or "") + calls, outcome.reasoning or ""


def _ids(data: Any) -> list[int] | None:
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if isinstance(tokens, list) and all(isinstance(t, int) for t in tokens):
        return tokens
    return None


def _number(data: Any) -> int | None:
    count = data.get("count") if isinstance(data, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


class Dialect:
    """One server's tokenize endpoint: how to count text and a chat with it."""

    endpoint = ""
    templated = False  # whether ``prompt`` applies the model's chat template

    def __init__(self, post: Post, model: str) -> None:
        self.post = post
        self.model = model
        self.bos = 0  # tokens the endpoint adds to any text (a BOS), not part of generated text

    async def text(self, text: str, *, special: bool) -> int | None:
        """Tokens in ``text``; with ``special`` as a prompt starts (a BOS where the model has one)."""
        raise NotImplementedError

    async def prompt(self, body: dict[str, Any]) -> int | None:
        """Tokens in the prompt of the chat request ``body``."""
        return await self.text(render_plain(body), special=True)

    async def detect(self) -> bool:
        """Whether this server has this endpoint (it counts ``PROBE_TEXT``)."""
        return bool(await self.text(PROBE_TEXT, special=False))


class LlamaCppPython(Dialect):
    """``/extras/tokenize/count``: the count of what ``/extras/tokenize`` would return."""

    endpoint = "/extras/tokenize/count"

    async def _count(self, text: str) -> int | None:
        return _number(await self.post(self.endpoint, {"input": text, "model": self.model}))

    async def text(self, text: str, *, special: bool) -> int | None:
        count = await self._count(text)
        if count is None:
            return None
        # The endpoint always tokenizes as a prompt starts; generated text has no BOS of its own.
        return count if special else max(0, count - self.bos)

    async def detect(self) -> bool:
        empty, probe = await self._count(""), await self._count(PROBE_TEXT)
        if empty is None or not probe:
            return False
        self.bos = empty  # what an empty text counts: the tokens added to every text
        return True


class LlamaCpp(Dialect):
    endpoint = "/tokenize"

    async def text(self, text: str, *, special: bool) -> int | None:
        ids = _ids(await self.post(self.endpoint, {"content": text, "add_special": special}))
        return None if ids is None else len(ids)

    async def prompt(self, body: dict[str, Any]) -> int | None:
        rendered = await self.post("/apply-template", {"messages": body.get("messages") or []})
        prompt = rendered.get("prompt") if isinstance(rendered, dict) else None
        if not isinstance(prompt, str):
            return None
        return await self.text(prompt, special=True)

    async def detect(self) -> bool:
        ids = _ids(await self.post(self.endpoint, {"content": PROBE_TEXT}))
        if not ids:
            return False
        rendered = await self.post("/apply-template", {"messages": [{"role": "user", "content": PROBE_TEXT}]})
        # Without the template endpoint (older servers) prompts are rendered plainly: estimates.
        self.templated = isinstance(rendered, dict) and isinstance(rendered.get("prompt"), str)
        return True


class PromptTokenize(Dialect):
    """SGLang's ``/tokenize`` (and vLLM's, for plain text)."""

    endpoint = "/tokenize"

    async def text(self, text: str, *, special: bool) -> int | None:
        return _number(await self.post(self.endpoint, {"model": self.model, "prompt": text,
                                                       "add_special_tokens": special}))


class VllmChat(PromptTokenize):
    """vLLM's ``/tokenize`` with ``messages``: the chat template applied by the server."""

    templated = True

    async def prompt(self, body: dict[str, Any]) -> int | None:
        payload: dict[str, Any] = {"model": self.model, "messages": body.get("messages") or [],
                                   "add_generation_prompt": True}
        for key in ("tools", "chat_template_kwargs"):  # both change what the template renders
            if body.get(key) is not None:
                payload[key] = body[key]
        return _number(await self.post(self.endpoint, payload))

    async def detect(self) -> bool:
        return bool(await self.prompt({"messages": [{"role": "user", "content": PROBE_TEXT}]}))


#: Tried in this order; the first the server answers is used for the whole run. llama-cpp-python first:
#: it is the bundled target, and its path is its own.
DIALECTS: tuple[type[Dialect], ...] = (LlamaCppPython, VllmChat, PromptTokenize, LlamaCpp)


class TokenCounter:
    """Counts a response's tokens with the server's tokenizer; finds which endpoint it has once per run."""

    def __init__(self, base_url: str, model: str, headers: dict[str, str] | None = None, *,
                 timeout_s: float = 30.0, concurrency: int = DEFAULT_CONCURRENCY,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.root = server_root(base_url)
        self.model = model
        self._http = httpx.AsyncClient(headers=headers, timeout=timeout_s, transport=transport)
        self._slots = asyncio.Semaphore(concurrency)
        self._dialect: asyncio.Future[Dialect | None] | None = None
        #: The endpoints ``ids`` has tried, in order (the probe names them when none answered).
        self.tried: list[str] = []

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _post(self, path: str, payload: dict[str, Any]) -> Any:
        """The JSON answer of a 200 response, else None (a missing endpoint or a failure is no count)."""
        try:
            response = await self._http.post(self.root + path, json=payload)
            return response.json() if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    async def ids(self, text: str) -> list[int] | None:
        """The token ids of ``text`` (no special tokens where the endpoint lets us say so), from
        llama-cpp-python's ``/extras/tokenize`` or vLLM/SGLang's ``/tokenize``; None when neither answers."""
        for path, payload in (("/extras/tokenize", {"input": text}),
                              ("/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False})):
            if path not in self.tried:
                self.tried.append(path)
            tokens = _ids(await self._post(path, payload))
            if tokens:
                return tokens
        return None

    async def dialect(self) -> Dialect | None:
        """The server's tokenize endpoint (None when it has none), probed at the first call only."""
        if self._dialect is None:
            self._dialect = asyncio.ensure_future(self._detect())
        return await asyncio.shield(self._dialect)

    async def _detect(self) -> Dialect | None:
        for kind in DIALECTS:
            dialect = kind(self._post, self.model)
            if await dialect.detect():
                return dialect
        return None

    async def count(self, body: dict[str, Any], outcome: Outcome) -> Counted | None:
        """Counts for the response ``outcome`` to the chat request ``body``; None when they cannot be had."""
        async with self._slots:
            dialect = await self.dialect()
            if dialect is None:
                return None
            answer, reasoning = generated_text(outcome)
            prompt = await dialect.prompt(body)
            answer_n = await dialect.text(answer, special=False) if answer else 0
            reasoning_n = await dialect.text(reasoning, special=False) if reasoning else 0
        if prompt is None or answer_n is None or reasoning_n is None:
            return None
        usage: Usage = {"prompt_tokens": prompt, "completion_tokens": answer_n + reasoning_n,
                                 "total_tokens": prompt + answer_n + reasoning_n}
        if reasoning:
            usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_n}
        return Counted(usage, dialect.endpoint, prompt_estimated=not dialect.templated)
