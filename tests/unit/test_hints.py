"""Hints built from what the server said: the key when it speaks of keys, a parameter only when it names one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from evalharness.config import RunOptions
from evalharness.errors import SystematicFailure
from evalharness.hints import ServerError, failure_hint, parse_error_body
from tests.unit.test_runner import KEY_ENV, Server, make_items, ok_response, run, stored

PARAMETER = "a parameter may be unsupported"
MAY_BE_UNSUPPORTED = "may be unsupported by this server"


@pytest.mark.parametrize(("body", "expected"), [
    ('{"error": {"message": "bad min_p", "type": "invalid_request_error", "code": null, "param": "min_p"}}',
     ServerError("bad min_p", "invalid_request_error", None, "min_p")),
    ('{"message": "No connected db.", "type": "no_db_connection", "param": null, "code": "400"}',
     ServerError("No connected db.", "no_db_connection", "400")),
    ('{"error": {"message": "Authentication Error, Invalid proxy server token passed.", "type": "auth_error",'
     ' "param": "None", "code": "400"}}',
     ServerError("Authentication Error, Invalid proxy server token passed.", "auth_error", "400")),
    ('{"object": "error", "message": "top_k must be -1", "type": "BadRequestError", "param": null, "code": 400}',
     ServerError("top_k must be -1", "BadRequestError", "400")),
    ('{"error": "model not loaded"}', ServerError("model not loaded")),
    ('{"detail": [{"loc": ["body", "temperature"], "msg": "Input should be <= 2", "type": "less_than_equal"}]}',
     ServerError("Input should be <= 2", "less_than_equal", None, "temperature")),
    ("upstream says no\n", ServerError("upstream says no")),
    ("", ServerError()),
])
def test_every_usual_error_body_shape_is_read(body: str, expected: ServerError) -> None:
    assert parse_error_body(body) == expected


def hint(status: int, body: str, params: dict[str, Any] | None = None, key_env: str | None = KEY_ENV) -> str | None:
    return failure_hint(status, parse_error_body(body), key_env, key_is_set=True, params=params or {})


@pytest.mark.parametrize("body", [
    '{"message": "No connected db.", "type": "no_db_connection", "param": null, "code": "400"}',
    '{"error": {"message": "Authentication Error, Invalid proxy server token passed."}}',
    '{"error": {"message": "Invalid API key for this deployment"}}',
    '{"error": {"message": "key not allowed to access model. This key can only access models=[a]"}}',
    "You do not have permission to call this model",
])
def test_a_400_about_keys_or_permissions_says_auth_and_names_the_variable(body: str) -> None:
    text = hint(400, body, {"temperature": 0.7, "max_tokens": 8})
    assert text is not None and "API key" in text and KEY_ENV in text
    assert MAY_BE_UNSUPPORTED not in text


def test_a_missing_key_database_is_said_as_such() -> None:
    text = hint(400, '{"message": "No connected db.", "type": "no_db_connection"}')
    assert text is not None and "key database" in text


@pytest.mark.parametrize(("body", "param"), [
    ('{"error": {"message": "Unsupported value", "param": "response_format"}}', "response_format"),
    ('{"error": {"message": "min_p must be between 0 and 1"}}', "min_p"),
    ('{"error": {"message": "logit_bias key must be an integer token id"}}', "logit_bias"),
    ('{"error": {"message": "top_logprobs requires logprobs"}}', "top_logprobs"),
    ('{"detail": [{"loc": ["body", "repeat_penalty"], "msg": "Input should be a number"}]}', "repeat_penalty"),
])
def test_a_parameter_is_blamed_only_when_the_server_names_one(body: str, param: str) -> None:
    sent = {"min_p": 2, "logit_bias": {"x": 1}, "top_logprobs": 3, "logprobs": True,
            "extra_body": {"repeat_penalty": "high"}}
    text = hint(422, body, sent)
    assert text is not None and f"parameter {param}:" in text and MAY_BE_UNSUPPORTED in text


@pytest.mark.parametrize("body", [
    '{"error": {"message": "Prompt is too long for this model"}}',
    "the model is warming up",
    '{"error": {"message": "messages must alternate between user and assistant", "param": "messages"}}',
])
def test_otherwise_no_guess_is_added_to_the_servers_own_message(body: str) -> None:
    assert hint(400, body, {"temperature": 0.7, "stop": ["\n"]}) is None


def test_401_403_404_keep_their_advice() -> None:
    assert "set WCODE_API_KEY to a valid key" in (hint(401, "nope") or "")
    assert "name the variable that holds it with target.api_key_env" in (hint(401, "nope", key_env=None) or "")
    assert "not allowed to use this model" in (hint(403, "forbidden") or "")
    assert "check target.base_url and target.model" in (hint(404, "") or "")


# --- in a run: what lands in the record and in the message that stops the run --------------------------

def test_litellms_no_db_answer_is_recorded_as_a_key_problem_not_a_parameter(tmp_path: Path) -> None:
    server = Server(lambda prompt, n: httpx.Response(
        400, json={"message": "No connected db.", "type": "no_db_connection", "param": None, "code": "400"}))
    with pytest.raises(SystematicFailure) as info:  # every request fails the same way: the run stops early
        run(server, make_items(6, temperature=0.7), tmp_path, options=RunOptions(concurrency=1, stream=False))
    record = stored(tmp_path)[0]
    assert record["error"].startswith("HTTP 400: No connected db. [no_db_connection]")
    assert "key database" in record["error"] and KEY_ENV in record["error"]
    assert PARAMETER not in str(info.value) and "key database" in str(info.value)


def test_a_named_parameter_is_in_the_record_and_an_unnamed_refusal_is_quoted(tmp_path: Path) -> None:
    def respond(prompt: str, n: int) -> httpx.Response:
        if prompt == "q0":
            return httpx.Response(400, json={"error": {"message": "Unsupported parameter", "param": "min_p"}})
        if prompt == "q1":
            return httpx.Response(400, text="context window exceeded")
        return ok_response()

    run(Server(respond), make_items(3, min_p=0.1), tmp_path, options=RunOptions(concurrency=1, stream=False))
    by_case = {r["case_id"]: r for r in stored(tmp_path)}
    assert "the server names the parameter min_p" in by_case["case0"]["error"]
    assert by_case["case1"]["error"] == "HTTP 400: context window exceeded"
    assert by_case["case2"]["ok"] is True
