"""Request parameters: every one settable, sent exactly as written, thinking and presets mapped per target."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from evalharness.config import load_config
from evalharness.errors import ConfigError
from evalharness.params import RequestParams, build_body, merge_params
from evalharness.plan import WorkItem, make_plan
from evalharness.thinking import apply_thinking

USER = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]

CONFIG = """\
name: p
target:
  base_url: http://127.0.0.1:9/v1
  model: m
{target_extra}
suites: [suite.yaml]
defaults: {{max_tokens: 10}}
grid:
{grid}
"""


def plan_items(write_config: Callable[..., Path], grid: str, target_extra: str = "") -> list[WorkItem]:
    loaded = load_config(write_config(CONFIG.format(grid=grid, target_extra=target_extra)))
    return make_plan(loaded).items


def body_of(item: WorkItem) -> dict[str, Any]:
    return build_body("m", item.messages, item.params, stream=False)


def test_every_reference_parameter_is_settable_and_sent_as_written() -> None:
    params = {
        "temperature": 0.6, "top_p": 0.95, "top_k": 20, "min_p": 0.0, "top_a": 0.1, "frequency_penalty": -0.5,
        "presence_penalty": 1.5, "repetition_penalty": 1.1, "seed": 7, "max_tokens": 100,
        "max_completion_tokens": 90, "logit_bias": {"42": -100.0}, "logprobs": True, "top_logprobs": 5,
        "response_format": {"type": "json_object"}, "structured_outputs": False, "stop": ["\n\n"],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required", "parallel_tool_calls": False, "verbosity": "low"}
    sent = RequestParams.model_validate(params).model_dump(exclude_unset=True)
    body = build_body("m", USER, sent, stream=False)
    assert body == {"model": "m", "messages": USER, **params}


def test_unset_parameters_are_absent_not_null() -> None:
    body = build_body("m", USER, merge_params({"seed": 1, "top_k": 20}, {"seed": None}), stream=True)
    assert "seed" not in body
    assert body["top_k"] == 20 and "null" not in json.dumps(body)
    assert body["stream_options"] == {"include_usage": True}


def test_n_is_not_a_parameter() -> None:
    with pytest.raises(ValidationError, match="n"):
        RequestParams.model_validate({"n": 2})


@pytest.mark.parametrize(("params", "words"), [
    ({"logit_bias": {"hello": 5}}, "token ids"),
    ({"logit_bias": {"5": 101}}, "outside"),
    ({"top_logprobs": 21}, "less than or equal to 20"),
    ({"max_completion_tokens": 0}, "greater than or equal to 1"),
    ({"response_format": {"json_schema": {}}}, "needs a type"),
    ({"tools": [{"type": "function", "function": {"parameters": {}}}]}, "tools[0]"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "objekt"}}}]},
     "not a valid JSON Schema"),
    ({"tool_choice": {"function": {"name": "f"}}}, "tool_choice"),
    ({"thinking": "maybe"}, "'on' or 'off'"),
    ({"structured_outputs": {"choice": ["a"], "regex": "b"}}, "exactly one of json, regex"),
    ({"structured_outputs": {"schema": {}}}, "got none of them"),
    ({"structured_outputs": {"choice": "yes"}}, "non-empty list of strings"),
    ({"preset": "qwen3-fast"}, "qwen3-thinking"),
])
def test_bad_values_are_refused_with_a_reason(params: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words.replace("[", r"\[").replace("]", r"\]")):
        RequestParams.model_validate(params)


@pytest.mark.parametrize("value", [True, {"json": {"type": "object"}}, {"choice": ["yes", "no"]},
                                   {"regex": "[0-9]+", "disable_any_whitespace": True}])
def test_structured_outputs_in_both_shapes_is_sent_as_written(value: Any) -> None:
    # A bool for the gateways that take a switch; vLLM's object form, with its options beside the constraint.
    sent = RequestParams.model_validate({"structured_outputs": value}).model_dump(exclude_unset=True)
    assert build_body("m", USER, sent, stream=False)["structured_outputs"] == value


def test_a_bad_structured_outputs_object_is_a_config_error_with_its_line(write_config: Callable[..., Path]) -> None:
    path = write_config(CONFIG.format(grid="  structured_outputs: [{choice: [a, b]}, {choise: [a]}]",
                                      target_extra=""))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert (info.value.file, info.value.key, info.value.line) == (str(path), "grid.structured_outputs[1]", 9)
    assert "exactly one of json, regex, choice" in str(info.value)


def test_yaml_integer_token_ids_and_on_off_booleans_are_understood() -> None:
    # What `logit_bias: {19556: -100}` and `thinking: on` become when YAML reads them.
    parsed = RequestParams.model_validate({"logit_bias": {19556: -100}, "thinking": True})
    assert parsed.logit_bias == {"19556": -100.0}
    assert parsed.thinking == "on"


def test_preset_expands_and_explicit_values_win() -> None:
    merged = merge_params({"max_tokens": 64, "temperature": 0}, {"preset": "qwen3-thinking", "top_k": 40})
    assert merged == {"max_tokens": 64, "temperature": 0.6, "top_p": 0.95, "top_k": 40, "min_p": 0.0,
                      "thinking": "on", "preset": "qwen3-thinking"}
    # A later layer still overrides what a preset set.
    assert merge_params({"preset": "qwen3-non-thinking"}, {"temperature": 0})["temperature"] == 0


def test_preset_null_removes_what_the_preset_set_but_not_explicit_values() -> None:
    merged = merge_params({"preset": "qwen3-thinking", "top_k": 5, "max_tokens": 9}, {"preset": None})
    assert merged == {"top_k": 5, "max_tokens": 9}


def test_harness_settings_are_never_sent_by_name() -> None:
    body = build_body("m", USER, {"thinking": "off", "preset": "qwen3-non-thinking", "temperature": 0.7},
                      stream=False)
    assert "thinking" not in body and "preset" not in body and body["temperature"] == 0.7


def test_thinking_via_chat_template_kwargs_merges_with_existing_extra_body() -> None:
    params = {"thinking": "off", "extra_body": {"chat_template_kwargs": {"foo": 1}, "repeat_penalty": 1.1}}
    messages, sent = apply_thinking(USER, params)
    assert messages == USER
    assert sent["extra_body"] == {"chat_template_kwargs": {"foo": 1, "enable_thinking": False},
                                  "repeat_penalty": 1.1}
    assert params["extra_body"]["chat_template_kwargs"] == {"foo": 1}, "the input must not change"
    assert sent["thinking"] == "off"


def test_thinking_soft_switch_goes_on_the_last_user_message() -> None:
    convo = [*USER, {"role": "assistant", "content": "4"}, {"role": "user", "content": "And 3+3?"}]
    messages, sent = apply_thinking(convo, {"thinking": "on"}, via="soft_switch")
    assert [m["content"] for m in messages] == ["Be brief.", "What is 2+2?", "4", "And 3+3? /think"]
    assert "extra_body" not in sent
    assert convo[-1]["content"] == "And 3+3?"


def test_thinking_both_and_system_placement() -> None:
    messages, sent = apply_thinking(USER, {"thinking": "off"}, via="both", message="system")
    assert messages[0]["content"] == "Be brief. /no_think" and messages[1]["content"] == "What is 2+2?"
    assert sent["extra_body"]["chat_template_kwargs"]["enable_thinking"] is False
    only_user = [{"role": "user", "content": "Hi"}]
    messages, _ = apply_thinking(only_user, {"thinking": "off"}, via="soft_switch", message="system")
    assert messages == [{"role": "system", "content": "/no_think"}, {"role": "user", "content": "Hi"}]


def test_grid_thinking_on_off_becomes_enable_thinking_and_the_record_keeps_the_label(
        write_config: Callable[..., Path]) -> None:
    items = plan_items(write_config, "  thinking: [on, off]")
    by_mode = {i.params["thinking"]: i for i in items if i.case_id == "capital"}
    assert set(by_mode) == {"on", "off"}
    assert body_of(by_mode["on"])["chat_template_kwargs"] == {"enable_thinking": True}
    assert body_of(by_mode["off"])["chat_template_kwargs"] == {"enable_thinking": False}
    assert "thinking" not in body_of(by_mode["on"])
    assert body_of(by_mode["off"])["messages"][-1]["content"].endswith("One word.")


def test_target_soft_switch_changes_the_prompt_not_the_params(write_config: Callable[..., Path]) -> None:
    items = plan_items(write_config, "  thinking: [off]", target_extra="  thinking: {via: soft_switch}")
    body = body_of(next(i for i in items if i.case_id == "capital"))
    assert body["messages"][-1]["content"] == "What is the capital of France? One word. /no_think"
    assert "chat_template_kwargs" not in body


def test_preset_axis_expands_per_cell(write_config: Callable[..., Path]) -> None:
    items = plan_items(write_config, "  preset: [qwen3-thinking, qwen3-non-thinking]")
    bodies = {i.params["preset"]: body_of(i) for i in items if i.case_id == "capital"}
    assert {k: bodies["qwen3-non-thinking"][k] for k in ("temperature", "top_p", "top_k", "min_p", "max_tokens")} \
        == {"temperature": 0.7, "top_p": 0.8, "top_k": 20, "min_p": 0.0, "max_tokens": 10}
    assert bodies["qwen3-thinking"]["chat_template_kwargs"] == {"enable_thinking": True}


def test_extra_body_works_as_a_grid_axis(write_config: Callable[..., Path]) -> None:
    items = plan_items(write_config, "  extra_body: [null, {repeat_penalty: 1.3}]")
    bodies = [body_of(i) for i in items if i.case_id == "capital"]
    assert sorted(b.get("repeat_penalty", 0) for b in bodies) == [0, 1.3]
    assert all("extra_body" not in b for b in bodies)


def test_gate_where_thinking_on_matches_the_cell_words(write_config: Callable[..., Path]) -> None:
    text = CONFIG.format(grid="  thinking: [on, off]", target_extra="") + \
        "gates:\n  - {metric: pass_rate, where: {thinking: on}, min: 0.5}\n"
    loaded = load_config(write_config(text))
    assert loaded.config.gates[0].where == {"thinking": "on"}
    assert loaded.config.grid["thinking"] == ["on", "off"]


def test_soft_switch_without_a_user_message_is_a_config_error(write_config: Callable[..., Path]) -> None:
    suite = """\
    name: s
    cases:
      - id: sys-only
        messages: [{role: system, content: Say hi.}]
    """
    config = CONFIG.format(grid="  thinking: [on]", target_extra="  thinking: {via: soft_switch}")
    with pytest.raises(ConfigError, match="sys-only"):
        make_plan(load_config(write_config(config, suite)))


def test_estimate_counts_max_completion_tokens(write_config: Callable[..., Path]) -> None:
    text = CONFIG.format(grid="  max_completion_tokens: [5]", target_extra="").replace(
        "defaults: {max_tokens: 10}", "defaults: {}")
    plan = make_plan(load_config(write_config(text)))
    assert plan.estimate(0, 0).completion_tokens_max == 5 * len(plan.items)
