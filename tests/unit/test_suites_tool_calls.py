"""Tool-call scoring: the right function, arguments that parse and fit the tool's schema, expected values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from evalharness.scoring.checks import check_expect, check_tool_call
from evalharness.suites import Expect, ToolCallExpect

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
]
WANT = ToolCallExpect(name="get_weather", arguments={"city": "Paris"})


def call(name: str, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}


def test_the_right_call_passes_and_strings_compare_loosely() -> None:
    assert check_tool_call([call("get_weather", {"city": " paris ", "days": 2})], WANT, TOOLS) == []


@pytest.mark.parametrize(("calls", "words"), [
    (None, "no tool call"),
    ([], "no tool call"),
    ([call("get_time", {})], "called 'get_time', not 'get_weather'"),
    ([call("get_weather", '{"city": "Paris"')], "not a JSON object"),
    ([call("get_weather", '["Paris"]')], "not a JSON object"),
    ([call("get_weather", {"town": "Paris"})], "'city' is a required property"),
    ([call("get_weather", {"city": "Paris", "days": 0})], "days: 0 is less than the minimum"),
    ([call("get_weather", {"city": "Lyon"})], "argument city is 'Lyon', not 'Paris'"),
])
def test_each_way_of_getting_it_wrong_is_named(calls: list[dict[str, Any]] | None, words: str) -> None:
    failures = check_tool_call(calls, WANT, TOOLS)
    assert failures and any(words in f for f in failures), failures


def test_missing_expected_argument_is_reported() -> None:
    want = ToolCallExpect(name="get_weather", arguments={"days": 3})
    assert check_tool_call([call("get_weather", {"city": "Oslo"})], want, TOOLS) == [
        "get_weather argument days is missing, not 3"]


def test_any_one_good_call_among_several_passes() -> None:
    calls = [call("get_time", {}), call("get_weather", {"city": "Rome"}), call("get_weather", {"city": "Paris"})]
    assert check_tool_call(calls, WANT, TOOLS) == []
    assert check_tool_call(calls[:2], WANT, TOOLS) == ["get_weather argument city is 'Rome', not 'Paris'"]


def test_arguments_sent_as_an_object_and_no_schema_known() -> None:
    calls = [{"function": {"name": "get_weather", "arguments": {"city": "Paris", "extra": 1}}}]
    assert check_tool_call(calls, WANT, None) == []
    assert check_tool_call(calls, WANT, TOOLS), "with the tool's schema the extra property fails"


def test_check_expect_scores_tool_calls_of_a_record() -> None:
    expect = Expect(tool_call=WANT)
    assert check_expect(None, expect, None, None, tool_calls=[call("get_weather", {"city": "Paris"})],
                        tools=TOOLS) == []
    assert check_expect("It is sunny in Paris.", expect, None, None, tools=TOOLS) == [
        "no tool call (expected get_weather)"]
