"""What a server said when it turned a request down, and what to do about it.

Error bodies come in several shapes: OpenAI's ``{"error": {"message", "type", "code", "param"}}`` (also
llama.cpp's and LiteLLM's usual one), a flat ``{"message", "type", ...}`` (vLLM; LiteLLM's "No connected
db."), ``{"error": "text"}``, FastAPI's ``{"detail": ...}``, or plain text. ``parse_error_body`` reads them
all into one ``ServerError``; ``failure_hint`` builds advice from it that blames only what the server named:
the key when it speaks of keys, their database, authentication or permissions; a parameter only when it
names one; otherwise no guess (the error already quotes the server's own message).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Words that make a refusal about credentials rather than the request. A bare "key" is left out: it
# appears in request errors too ("logit_bias key must be an integer").
_AUTH = re.compile(
    r"api[ _-]?keys?|secret key|virtual key|master key"
    r"|\b(?:invalid|incorrect|wrong|missing|expired|revoked|unknown|no|this|your) (?:\w+ )?keys?\b"
    r"|\bkeys? (?:not|cannot|can only|is not|has no|does not)\b"
    r"|auth\w*|unauthori[sz]ed|permission|forbidden|credential|\bdb\b|database|bearer|access token",
    re.IGNORECASE)
_KEY_STORE = re.compile(r"\bdb\b|database", re.IGNORECASE)
# Request fields that are not parameters a user chose to send.
_NOT_PARAMETERS = frozenset({"model", "messages", "stream", "stream_options"})


@dataclass(frozen=True)
class ServerError:
    """The parts of an error body a server filled in (any may be None)."""

    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None

    def describe(self) -> str:
        """The message with its type or code, as the error of a record shows it."""
        # A code that only repeats the status says less than the type.
        label = self.code if self.code and not self.code.isdigit() else self.type
        text = self.message or ""
        return f"{text} [{label}]" if label and label not in text else text


def _text(value: Any) -> str | None:
    # LiteLLM writes an absent field as the string "None".
    if value is None or value in ("", "None", "null"):
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _from_fields(fields: dict[str, Any]) -> ServerError:
    return ServerError(message=_text(fields.get("message")), type=_text(fields.get("type")),
                       code=_text(fields.get("code")), param=_text(fields.get("param")))


def _from_detail(detail: Any) -> ServerError:
    """FastAPI's ``detail``: a string, or a list of ``{"loc": [...], "msg": ...}`` validation errors."""
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = first.get("loc") or []
        param = next((str(p) for p in reversed(loc) if isinstance(p, str) and p != "body"), None)
        return ServerError(message=_text(first.get("msg")), type=_text(first.get("type")), param=param)
    return ServerError(message=_text(detail))


def parse_error_body(text: str) -> ServerError:
    """The server's own account of an error, from any of the usual body shapes (see the module docstring)."""
    try:
        data = json.loads(text)
    except ValueError:
        return ServerError(message=text.strip() or None)
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            return _from_fields(err)
        if "message" in data:
            return _from_fields(data)
        if isinstance(err, str):
            return ServerError(message=err, type=_text(data.get("type")), code=_text(data.get("code")))
        if "detail" in data:
            return _from_detail(data["detail"])
    return ServerError(message=text.strip() or None)


def _sent_names(params: dict[str, Any]) -> set[str]:
    """The request fields a user chose: the params and, flattened into the body, ``extra_body``'s keys."""
    names = set(params) | set(params.get("extra_body") or {})
    return names - _NOT_PARAMETERS - {"extra_body"}


def named_parameter(error: ServerError, sent: Iterable[str]) -> str | None:
    """The parameter the server's error names: its ``param``, or a sent parameter its message mentions."""
    if error.param and error.param not in _NOT_PARAMETERS:
        return error.param
    text = " ".join(filter(None, (error.message, error.type, error.code)))
    for name in sorted(sent, key=len, reverse=True):  # "top_logprobs" before "logprobs"
        if re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text):
            return name
    return None


def _key_advice(api_key_env: str | None) -> str:
    if api_key_env:
        return f"check the key in {api_key_env}"
    return "name the variable that holds the key with target.api_key_env"


def auth_hint(status: int, error: ServerError, api_key_env: str | None, key_is_set: bool) -> str:
    """Advice for a refusal about credentials (401, 403, or a 400 that speaks of keys)."""
    if status == 401:
        if api_key_env and not key_is_set:
            return f"the API key was rejected; set {api_key_env} (it is not set in this environment)"
        if api_key_env:
            return f"the API key was rejected; set {api_key_env} to a valid key"
        return "the API key was rejected or missing; name the variable that holds it with target.api_key_env"
    if status == 403:
        return ("the API key is not allowed to use this model or endpoint (a permission of the key); "
                + _key_advice(api_key_env))
    if _KEY_STORE.search(error.message or ""):
        return (f"the server could not check the API key against its key database (a LiteLLM proxy without "
                f"one accepts only its master key); {_key_advice(api_key_env)}")
    return f"the server's message is about the API key or permissions, not the request; {_key_advice(api_key_env)}"


def failure_hint(status: int | None, error: ServerError | None, api_key_env: str | None, *,
                 key_is_set: bool, params: dict[str, Any]) -> str | None:
    """What to do about a request the server refused (a non-retryable HTTP error); None when the server's
    own message, already in the record's error, is all there is to say."""
    error = error or ServerError()
    if status in (401, 403):
        return auth_hint(status, error, api_key_env, key_is_set)
    if status == 404:
        return "the endpoint or model was not found; check target.base_url and target.model"
    if status not in (400, 422):
        return None
    parameter = named_parameter(error, _sent_names(params))
    if error.param and parameter:
        return _parameter_hint(parameter)
    if _AUTH.search(" ".join(filter(None, (error.message, error.type, error.code)))):
        return auth_hint(status, error, api_key_env, key_is_set)
    if parameter:
        return _parameter_hint(parameter)
    return None if error.message else "the server refused the request without saying why"


def _parameter_hint(name: str) -> str:
    return (f"the server names the parameter {name}: it may be unsupported by this server, or this value "
            f"out of its range (evalharness probe CONFIG tests which parameters a target honours)")
