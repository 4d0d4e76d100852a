"""Per-sample checks: JSON validity (strict and lenient), JSON Schema, the built-in expectations (registered by
name, as a user's checks are) and answer extraction."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

from evalharness.scoring.registry import CheckContext, CheckResult, check, lookup
from evalharness.scoring.usercheck import CheckOutcome, run_check
from evalharness.suites import Expect, Extractor, ToolCallExpect

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)
_MISSING = object()


def parse_json_strict(text: str | None) -> Any:
    """The parsed value if ``text`` is exactly one JSON document (whitespace allowed), else ``_MISSING``."""
    if text is None:
        return _MISSING
    try:
        return json.loads(text)
    except ValueError:
        return _MISSING


def parse_json_lenient(text: str | None) -> Any:
    """Like strict, but also accepts JSON inside a code fence or surrounded by prose."""
    value = parse_json_strict(text)
    if value is not _MISSING or not text:
        return value
    fence = _FENCE.search(text)
    if fence:
        value = parse_json_strict(fence.group(1))
        if value is not _MISSING:
            return value
    decoder = json.JSONDecoder()
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
            return value
        except ValueError:
            continue
    return _MISSING


def is_json(text: str | None) -> bool:
    return parse_json_strict(text) is not _MISSING


def is_json_lenient(text: str | None) -> bool:
    return parse_json_lenient(text) is not _MISSING


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text))


def schema_errors(value: Any, schema: dict[str, Any]) -> list[str]:
    """Draft 2020-12 validation errors of ``value`` (empty when valid)."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(value)]


def is_schema_valid(text: str | None, schema: dict[str, Any]) -> bool:
    """Whether ``text`` is strict JSON that validates against ``schema``."""
    value = parse_json_strict(text)
    return value is not _MISSING and not schema_errors(value, schema)


def extract_answer(text: str | None, extractor: Extractor) -> str | None:
    """The answer pulled from ``text``: regex group 1 (or the whole match), or a JSON pointer's value."""
    if text is None:
        return None
    if extractor.regex is not None:
        match = re.search(extractor.regex, text, re.DOTALL | re.MULTILINE)
        if not match:
            return None
        return (match.group(1) if match.groups() else match.group(0)).strip()
    value = parse_json_lenient(text)
    if value is _MISSING:
        return None
    assert extractor.json_pointer is not None
    found = resolve_pointer(value, extractor.json_pointer)
    if found is _MISSING:
        return None
    return found if isinstance(found, str) else json.dumps(found, sort_keys=True, ensure_ascii=False)


def resolve_pointer(doc: Any, pointer: str) -> Any:
    """RFC 6901 JSON pointer lookup; ``_MISSING`` when the path does not exist."""
    if pointer in ("", "/"):
        return doc
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return _MISSING
    return doc


def _as_list(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else value


def _same_answer(got: str | None, want: str | int | float) -> bool:
    if got is None:
        return False
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            return abs(float(got.replace(",", "")) - float(want)) < 1e-9
        except ValueError:
            return False
    return got.strip().lower() == str(want).strip().lower()


def check_tool_call(tool_calls: list[dict[str, Any]] | None, want: ToolCallExpect,
                    tools: list[dict[str, Any]] | None) -> list[str]:
    """Failures of an ``expect.tool_call``: the named function was called, its arguments are a JSON object
    valid against that tool's ``parameters`` schema (from the request's ``tools``) with the expected values.

    Passes when any one call meets everything; otherwise reports the first call of the right name.
    """
    calls = [c.get("function") or {} for c in tool_calls or () if isinstance(c, dict)]
    if not calls:
        return [f"no tool call (expected {want.name})"]
    named = [c for c in calls if c.get("name") == want.name]
    if not named:
        return [f"called {', '.join(repr(c.get('name')) for c in calls)}, not {want.name!r}"]
    schema = next((t["function"].get("parameters") for t in tools or ()
                   if isinstance(t.get("function"), dict) and t["function"].get("name") == want.name), None)
    first: list[str] | None = None
    for call in named:
        raw = call.get("arguments")
        failures: list[str] = []
        # Servers send arguments as a JSON string (OpenAI); a few send the object itself.
        args = raw if isinstance(raw, dict) else parse_json_strict(raw if isinstance(raw, str) else None)
        if args is _MISSING or not isinstance(args, dict):
            failures.append(f"{want.name} arguments are not a JSON object: {str(raw)[:80]!r}")
        else:
            if schema is not None:
                failures += [f"{want.name} arguments: {e}" for e in schema_errors(args, schema)[:3]]
            for key, expected in (want.arguments or {}).items():
                got = args.get(key, _MISSING)
                same = (got.strip().lower() == expected.strip().lower()
                        if isinstance(got, str) and isinstance(expected, str) else got == expected)
                if not same:
                    failures.append(f"{want.name} argument {key} is "
                                    f"{'missing' if got is _MISSING else repr(got)}, not {expected!r}")
        if not failures:
            return []
        first = first if first is not None else failures
    return first or []


# The built-in checks, registered like a user's (``expect: {check: {name: contains, args: {value: x}}}`` works
# too); ``expect``'s own keys compile to calls of them in ``builtin_calls``. Their reasons are the messages.

def _result(failures: list[str]) -> CheckResult:
    return CheckResult(not failures, "; ".join(failures))


@check("equals")
def _equals(answer: str, case: CheckContext) -> CheckResult:
    want = str(case.args["value"])
    return _result([] if answer.strip() == want.strip() else [f"expected exactly {want!r}"])


@check("contains")
def _contains(answer: str, case: CheckContext) -> CheckResult:
    return _result([f"does not contain {n!r}" for n in _as_list(case.args["value"]) if n.lower() not in answer.lower()])


@check("not_contains")
def _not_contains(answer: str, case: CheckContext) -> CheckResult:
    return _result([f"contains {n!r}" for n in _as_list(case.args["value"]) if n.lower() in answer.lower()])


@check("regex")
def _regex(answer: str, case: CheckContext) -> CheckResult:
    pattern = case.args["pattern"]
    return _result([] if re.search(pattern, answer, re.DOTALL | re.MULTILINE) else [f"does not match /{pattern}/"])


@check("json_valid")
def _json_valid(answer: str, case: CheckContext) -> CheckResult:
    return _result([] if is_json(case.content) else ["not valid JSON"])


@check("json_schema")
def _json_schema(answer: str, case: CheckContext) -> CheckResult:
    value = parse_json_strict(case.content)
    if value is _MISSING:
        return _result(["not valid JSON (schema check)"])
    errors = schema_errors(value, case.args["schema"])
    return _result(["schema: " + "; ".join(errors[:3])] if errors else [])


@check("answer")
def _answer(answer: str, case: CheckContext) -> CheckResult:
    extract = case.args.get("extract")
    if isinstance(extract, dict):
        extract = Extractor.model_validate(extract)
    got = extract_answer(case.content, extract) if extract else answer.strip()
    want = case.args["value"]
    return _result([] if _same_answer(got, want) else [f"answer {got!r} is not {want!r}"])


@check("tool_call")
def _tool_call(answer: str, case: CheckContext) -> CheckResult:
    want = ToolCallExpect.model_validate({"name": case.args["name"], "arguments": case.args.get("arguments")})
    return _result(check_tool_call(case.tool_calls, want, case.params.get("tools")))


def builtin_calls(expect: Expect, schema: dict[str, Any] | None, extractor: Extractor | None
                  ) -> list[tuple[str, dict[str, Any]]]:
    """The built-in checks ``expect`` asks for, in order, each with its arguments (one per needle, so each
    missing needle is its own failure)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    if expect.equals is not None:
        calls.append(("equals", {"value": expect.equals}))
    calls += [("contains", {"value": needle}) for needle in _as_list(expect.contains)]
    calls += [("not_contains", {"value": needle}) for needle in _as_list(expect.not_contains)]
    if expect.regex is not None:
        calls.append(("regex", {"pattern": expect.regex}))
    if expect.json_valid:
        calls.append(("json_valid", {}))
    if schema is not None:
        calls.append(("json_schema", {"schema": schema}))
    if expect.answer is not None:
        calls.append(("answer", {"value": expect.answer, "extract": extractor}))
    if expect.tool_call is not None:
        calls.append(("tool_call", {"name": expect.tool_call.name, "arguments": expect.tool_call.arguments}))
    return calls


def run_builtins(context: CheckContext, calls: list[tuple[str, dict[str, Any]]]) -> list[CheckOutcome]:
    """Every built-in check of ``calls`` on one sample."""
    answer = context.content or ""
    return [run_check(lookup(name).fn, answer, replace(context, args=args), label=name, builtin=True)
            for name, args in calls]


def check_expect(content: str | None, expect: Expect, schema: dict[str, Any] | None,
                 extractor: Extractor | None, *, tool_calls: list[dict[str, Any]] | None = None,
                 tools: list[dict[str, Any]] | None = None) -> list[str]:
    """Every failed built-in check as a message; an empty list means the sample passes them.

    ``tool_calls`` (the record's) and ``tools`` (the request's params) matter only to ``expect.tool_call``.
    """
    context = CheckContext(case_id="", suite="", vars={}, messages=[], expect={}, params={"tools": tools},
                           content=content, reasoning=None, tool_calls=tool_calls)
    return [o.message for o in run_builtins(context, builtin_calls(expect, schema, extractor)) if not o.passed]
