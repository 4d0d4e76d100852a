"""Request parameters: every one the target API documents, typed, and the rule for building a body.

A parameter that is unset (or ``null`` in a config) is absent from the request body, never sent as null.
Server-specific keys go under ``extra_body`` and are merged into the body as written.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class RequestParams(BaseModel):
    """The chat-completions parameters a config may set in ``defaults``, a grid axis or a case."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    top_k: int | None = Field(None, ge=0)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    top_a: float | None = Field(None, ge=0.0, le=1.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    repetition_penalty: float | None = Field(None, ge=0.0, le=2.0)
    seed: int | None = None
    max_tokens: int | None = Field(None, ge=1)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    structured_outputs: bool | None = None
    stop: list[str] | str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    extra_body: dict[str, Any] | None = None


PARAM_NAMES: frozenset[str] = frozenset(RequestParams.model_fields)


def merge_params(*layers: dict[str, Any]) -> dict[str, Any]:
    """Merge parameter layers, later ones winning; a ``None`` value removes the parameter.

    This is how ``defaults``, a case's ``params`` and a grid cell combine: a grid value of ``null``
    means "not sent", even if a default sets it.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
    return merged


def build_body(model: str, messages: list[dict[str, Any]], params: dict[str, Any], *,
               stream: bool) -> dict[str, Any]:
    """The JSON body of one chat-completions request, exactly as the params say."""
    body: dict[str, Any] = {"model": model, "messages": messages}
    extra = params.get("extra_body") or {}
    body.update({k: v for k, v in params.items() if k != "extra_body"})
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(extra)
    return body
