"""Qwen3's thinking mode and recommended sampling presets, as harness settings rather than API parameters.

``thinking: on | off`` and ``preset: qwen3-thinking | qwen3-non-thinking`` are set like request parameters
(in ``defaults``, a grid axis or a case) but are never sent under those names. A preset expands into the
sampling parameters Qwen recommends; ``thinking`` is turned into what the target understands —
``chat_template_kwargs.enable_thinking`` (vLLM, SGLang) and/or the ``/think`` ``/no_think`` soft switch
in the prompt — by ``apply_thinking`` when the plan is made. The recorded params keep the
``thinking``/``preset`` labels next to what was actually sent.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

ThinkingVia = Literal["chat_template_kwargs", "soft_switch", "both"]
SwitchMessage = Literal["user", "system"]

# Qwen3 model card, "best practices"; greedy decoding is discouraged in thinking mode.
PRESETS: dict[str, dict[str, Any]] = {
    "qwen3-thinking": {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0, "thinking": "on"},
    "qwen3-non-thinking": {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.0, "thinking": "off"},
}

# Keys that configure the harness and are never sent to the server under their own name.
HARNESS_KEYS: frozenset[str] = frozenset({"thinking", "preset"})

SOFT_SWITCH = {"on": "/think", "off": "/no_think"}


def normalize_thinking(value: Any) -> Any:
    """``on``/``off`` from YAML 1.1 booleans: an unquoted ``on`` in YAML is ``True``."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    return value


def apply_thinking(messages: list[dict[str, Any]], params: dict[str, Any], *,
                   via: ThinkingVia = "chat_template_kwargs", message: SwitchMessage = "user"
                   ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The messages and params to send for ``params["thinking"]``, switched the way the target understands.

    ``via`` ``chat_template_kwargs`` sets ``extra_body.chat_template_kwargs.enable_thinking`` (merged into any
    ``chat_template_kwargs`` the params already carry; the thinking setting wins on ``enable_thinking``).
    ``soft_switch`` appends `` /think`` or `` /no_think`` to the last ``message`` of that role (a system
    message is added when ``message`` is ``system`` and there is none). Inputs are not modified; without a
    ``thinking`` key both come back unchanged.
    """
    mode = params.get("thinking")
    if mode is None:
        return messages, params
    if mode not in SOFT_SWITCH:
        raise ValueError(f"thinking must be 'on' or 'off', not {mode!r}")
    params = dict(params)
    if via in ("chat_template_kwargs", "both"):
        extra = copy.deepcopy(params.get("extra_body") or {})
        kwargs = extra.get("chat_template_kwargs")
        extra["chat_template_kwargs"] = {**(kwargs if isinstance(kwargs, dict) else {}),
                                         "enable_thinking": mode == "on"}
        params["extra_body"] = extra
    if via in ("soft_switch", "both"):
        messages = _with_switch(messages, SOFT_SWITCH[mode], message)
    return messages, params


def _with_switch(messages: list[dict[str, Any]], switch: str, role: SwitchMessage) -> list[dict[str, Any]]:
    out = [dict(m) for m in messages]
    # The last switch in the conversation wins (Qwen3 model card), so it goes on the last message of the role.
    for m in reversed(out):
        if m.get("role") == role and isinstance(m.get("content"), str):
            m["content"] = f"{m['content'].rstrip()} {switch}"
            return out
    if role == "system":
        return [{"role": "system", "content": switch}, *out]
    raise ValueError("the thinking soft switch needs a user message to append to")
