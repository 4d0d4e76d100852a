"""Request parameters: every one the target API documents, typed, and the rule for building a body.

A parameter that is unset (or ``null`` in a config) is absent from the request body, never sent as null.
Server-specific keys go under ``extra_body`` and are merged into the body as written. ``thinking`` and
``preset`` are harness settings (see ``evalharness.thinking``): set like parameters, never sent by name.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from evalharness.thinking import HARNESS_KEYS, PRESETS, normalize_thinking

PresetName = Literal["qwen3-thinking", "qwen3-non-thinking"]


#: The constraints of vLLM's ``structured_outputs`` object; one per request.
STRUCTURED_OUTPUT_KINDS = ("json", "regex", "choice", "grammar", "json_object", "structural_tag")


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
    # The newer OpenAI name of the cap; some servers take only one of the two, so both are settable.
    max_completion_tokens: int | None = Field(None, ge=1)
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: dict[str, Any] | None = None
    # A switch on some gateways; vLLM's own form is an object of one constraint: {json: SCHEMA},
    # {choice: [...]}, {regex: ...}, {grammar: ...} (a bool there is answered with HTTP 500).
    structured_outputs: bool | dict[str, Any] | None = None
    stop: list[str] | str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    extra_body: dict[str, Any] | None = None
    thinking: Literal["on", "off"] | None = None
    preset: PresetName | None = None

    @field_validator("thinking", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        return normalize_thinking(value)

    @field_validator("logit_bias", mode="before")
    @classmethod
    def _token_ids(cls, value: Any) -> Any:
        # YAML reads `{19556: -100}` with an integer key; JSON bodies carry token ids as strings anyway.
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, bias in value.items():
            token = str(key).strip()
            if not token.isdigit():
                raise ValueError(f"logit_bias keys are token ids (integers), not {key!r}")
            if isinstance(bias, (int, float)) and not -100 <= bias <= 100:
                raise ValueError(f"logit_bias[{token}] = {bias} is outside -100 … 100")
            out[token] = bias
        return out

    @field_validator("response_format")
    @classmethod
    def _format_type(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and not isinstance(value.get("type"), str):
            raise ValueError("response_format needs a type, e.g. {type: json_object} or "
                             "{type: json_schema, json_schema: {name: …, schema: {…}}}")
        return value

    @field_validator("tools")
    @classmethod
    def _function_tools(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is None:
            return value
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        for i, tool in enumerate(value):
            fn = tool.get("function")
            if tool.get("type") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise ValueError(f"tools[{i}] must be {{type: function, function: {{name: …, parameters: {{…}}}}}}")
            schema = fn.get("parameters")
            if schema is not None:
                # The schema is also what a tool_call expectation validates arguments against.
                try:
                    Draft202012Validator.check_schema(schema)
                except SchemaError as exc:
                    raise ValueError(f"tools[{i}] ({fn['name']}): parameters is not a valid JSON Schema: "
                                     f"{exc.message}") from exc
        return value

    @field_validator("structured_outputs")
    @classmethod
    def _one_constraint(cls, value: Any) -> Any:
        if isinstance(value, dict):
            given = [k for k in STRUCTURED_OUTPUT_KINDS if value.get(k) is not None]
            if len(given) != 1:
                raise ValueError(f"structured_outputs is true/false or an object with exactly one of "
                                 f"{', '.join(STRUCTURED_OUTPUT_KINDS)} (vLLM's form, e.g. {{choice: [yes, no]}}); "
                                 f"got {', '.join(given) or 'none of them'}")
            if given == ["choice"] and not (isinstance(value["choice"], list) and value["choice"]
                                            and all(isinstance(c, str) for c in value["choice"])):
                raise ValueError("structured_outputs.choice is a non-empty list of strings")
        return value

    @field_validator("tool_choice")
    @classmethod
    def _named_function(cls, value: Any) -> Any:
        if isinstance(value, dict):
            fn = value.get("function")
            if value.get("type") != "function" or not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise ValueError("tool_choice is none, auto, required or {type: function, function: {name: …}}")
        return value


PARAM_NAMES: frozenset[str] = frozenset(RequestParams.model_fields)


def expand_preset(layer: dict[str, Any]) -> dict[str, Any]:
    """A layer with its ``preset`` expanded; keys the layer sets itself win over the preset's."""
    name = layer.get("preset")
    if name is None:
        return layer
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} ({', '.join(PRESETS)})")
    return {**PRESETS[name], **layer}


def merge_params(*layers: dict[str, Any]) -> dict[str, Any]:
    """Merge parameter layers, later ones winning; a ``None`` value removes the parameter.

    This is how ``defaults``, a case's ``params`` and a grid cell combine: a grid value of ``null``
    means "not sent", even if a default sets it. A ``preset`` expands within its layer; ``preset: null``
    removes the preset and the values it set (values set explicitly are kept).
    """
    merged: dict[str, Any] = {}
    from_preset: set[str] = set()
    for layer in layers:
        if "preset" in layer and layer["preset"] is None:
            for key in from_preset:
                merged.pop(key, None)
            from_preset.clear()
        expanded = expand_preset(layer)
        for key, value in expanded.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
            if key in layer:
                from_preset.discard(key)
            else:
                from_preset.add(key)
    return merged


def build_body(model: str, messages: list[dict[str, Any]], params: dict[str, Any], *,
               stream: bool) -> dict[str, Any]:
    """The JSON body of one chat-completions request, exactly as the params say.

    ``thinking`` and ``preset`` are left out: the plan has already turned them into sampling parameters,
    ``chat_template_kwargs`` or a soft switch in the messages (``evalharness.thinking.apply_thinking``).
    """
    body: dict[str, Any] = {"model": model, "messages": messages}
    extra = params.get("extra_body") or {}
    body.update({k: v for k, v in params.items() if k != "extra_body" and k not in HARNESS_KEYS})
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(extra)
    return body
