"""Prompt suites: lists of cases with messages (or a jinja2 prompt), per-case params and expectations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import jinja2
from pydantic import BaseModel, ConfigDict, Field, model_validator

from evalharness.errors import ConfigError
from evalharness.params import RequestParams
from evalharness.scoring.registry import DEFAULT_MIN, lookup
from evalharness.scoring.usercheck import CheckRef, load_file_check
from evalharness.yamlsrc import YamlDoc, load_yaml, parse_model

_PROMPTS = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Message(_Strict):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str


class Extractor(_Strict):
    """How to pull the answer out of an output: a regex (group 1, else the whole match) or a JSON pointer."""

    regex: str | None = None
    json_pointer: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Extractor:
        if (self.regex is None) == (self.json_pointer is None):
            raise ValueError("an extractor needs exactly one of regex or json_pointer")
        return self


class ToolCallExpect(_Strict):
    """The function the model must call; its arguments must validate against that tool's ``parameters``.

    ``arguments`` lists expected values of some arguments (strings compare case-insensitively, ignoring
    surrounding spaces); arguments not listed may hold anything the schema allows.
    """

    name: str
    arguments: dict[str, Any] | None = None


class PythonCheck(_Strict):
    """``python: {fn: "checks.py:is_polite", min: 0.7, args: {...}}``: a function in a file beside the suite."""

    fn: str
    min: float = Field(default=DEFAULT_MIN, ge=0.0, le=1.0)
    args: dict[str, Any] = Field(default_factory=dict)


class NamedCheck(_Strict):
    """``check: {name: polite, args: {...}, min: 0.7}``: a check registered by name (decorator or entry point)."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    min: float = Field(default=DEFAULT_MIN, ge=0.0, le=1.0)


class JudgeCheck(_Strict):
    """``judge: {rubric: ..., judge: NAME}``: a model grades the answer against the rubric (pass or fail)."""

    rubric: str = Field(min_length=1)
    judge: str = "default"


class JudgeScore(_Strict):
    """``judge_score: {rubric, min}``: a model scores the answer in [0, 1]; it passes at ``min`` or more."""

    rubric: str = Field(min_length=1)
    min: float = Field(default=DEFAULT_MIN, ge=0.0, le=1.0)
    judge: str = "default"


class Expect(_Strict):
    """Checks a sample must meet to pass; all given checks must hold.

    ``python`` and ``check`` name checks of the user's own (one, or a list); see ``scoring/registry.py``.
    ``judge`` and ``judge_score`` are graded by a model the config names under ``judges`` (``judging.py``).
    """

    equals: str | None = None
    contains: list[str] | str | None = None
    not_contains: list[str] | str | None = None
    regex: str | None = None
    json_valid: bool | None = None
    json_schema: dict[str, Any] | str | None = None
    answer: str | int | float | None = None
    tool_call: ToolCallExpect | None = None
    python: str | PythonCheck | list[str | PythonCheck] | None = None
    check: str | NamedCheck | list[str | NamedCheck] | None = None
    judge: str | JudgeCheck | list[str | JudgeCheck] | None = None
    judge_score: JudgeScore | list[JudgeScore] | None = None

    def judge_checks(self) -> list[JudgeCheck | JudgeScore]:
        """Every model-graded check, in order: the ``judge`` rubrics, then the ``judge_score`` ones."""
        found: list[JudgeCheck | JudgeScore] = []
        for entry in self.judge if isinstance(self.judge, list) else [self.judge] if self.judge else []:
            found.append(JudgeCheck(rubric=entry) if isinstance(entry, str) else entry)
        scored = self.judge_score
        found.extend(scored if isinstance(scored, list) else [scored] if scored else [])
        return found


class Case(_Strict):
    """One prompt to send; ``messages`` or ``prompt`` (+ optional ``system`` and jinja2 ``vars``)."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    messages: list[Message] | None = None
    prompt: str | None = None
    system: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict)
    params: RequestParams = Field(default_factory=RequestParams)
    expect: Expect | None = None
    extract: Extractor | None = None
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_prompt(self) -> Case:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a case needs exactly one of messages or prompt")
        return self

    def render_messages(self) -> list[dict[str, Any]]:
        """The messages to send, with ``vars`` rendered into ``prompt`` or each message."""
        if self.messages is not None:
            return [{"role": m.role, "content": _PROMPTS.from_string(m.content).render(self.vars)}
                    for m in self.messages]
        assert self.prompt is not None
        out: list[dict[str, Any]] = []
        if self.system:
            out.append({"role": "system", "content": _PROMPTS.from_string(self.system).render(self.vars)})
        out.append({"role": "user", "content": _PROMPTS.from_string(self.prompt).render(self.vars)})
        return out

    def sent_params(self) -> dict[str, Any]:
        """The params this case sets explicitly."""
        return self.params.model_dump(exclude_unset=True)


class DatasetRef(_Strict):
    """``dataset: {path}``: a .jsonl, .csv, .parquet file or a ``datasets.save_to_disk`` folder, relative to
    the suite; ``split`` picks one split of a saved ``DatasetDict``."""

    path: str = Field(min_length=1)
    split: str | None = None


class Sample(_Strict):
    """``sample: {n, seed}``: a seeded subset of ``n`` rows of the dataset (the same rows every time)."""

    n: int = Field(ge=1)
    seed: int = 0


class SuiteFile(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    cases: list[Case] = Field(default_factory=list)
    dataset: DatasetRef | None = None
    # A case as jinja2 over each ``row`` of the dataset; validated per row once rendered.
    case: dict[str, Any] | None = None
    sample: Sample | None = None

    @model_validator(mode="after")
    def _cases_or_dataset(self) -> SuiteFile:
        if self.dataset is None:
            if self.case is not None or self.sample is not None:
                raise ValueError("case and sample make cases from a dataset: add dataset: {path: FILE}")
            if not self.cases:
                raise ValueError("a suite needs cases, or a dataset and a case template")
        elif self.cases:
            raise ValueError("a suite takes its cases from cases or from a dataset, not both")
        elif self.case is None:
            raise ValueError("a dataset needs a case: template (jinja2 over each row), e.g. "
                             "case: {id: '{{ row.id }}', prompt: '{{ row.question }}'}")
        return self


class Suite(BaseModel):
    """A loaded suite: cases with rendered messages and resolved JSON Schemas."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str
    description: str
    path: Path
    cases: list[Case]
    messages: dict[str, list[dict[str, Any]]]
    schemas: dict[str, dict[str, Any]]
    # The case's own checks (``expect.python`` / ``expect.check``), resolved and hashed at load time.
    checks: dict[str, list[CheckRef]] = Field(default_factory=dict)

    def only(self, case_ids: set[str]) -> Suite:
        """This suite with only the given cases, in file order."""
        return self.model_copy(update={
            "cases": [c for c in self.cases if c.id in case_ids],
            "messages": {k: v for k, v in self.messages.items() if k in case_ids},
            "schemas": {k: v for k, v in self.schemas.items() if k in case_ids},
            "checks": {k: v for k, v in self.checks.items() if k in case_ids}})


def load_suite(path: Path) -> Suite:
    """Load and validate a suite file; schemas given as paths are read relative to the suite."""
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise ConfigError("a suite must be a YAML mapping with name and cases", file=str(path), line=1)
    suite: SuiteFile = parse_model(doc, SuiteFile, doc.data)
    if suite.dataset is not None:
        from evalharness.datasuite import load_dataset_suite  # it builds on this module

        return load_dataset_suite(doc, suite)
    messages: dict[str, list[dict[str, Any]]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    checks: dict[str, list[CheckRef]] = {}
    for i, case in enumerate(suite.cases):
        if case.id in messages:
            raise doc.error(("cases", i, "id"), f"duplicate case id {case.id!r}")
        try:
            messages[case.id] = case.render_messages()
        except jinja2.TemplateError as exc:
            raise doc.error(("cases", i, "prompt" if case.prompt else "messages"),
                            f"template error: {exc}") from exc
        case_extras(doc, case, ("cases", i), schemas, checks)
    return Suite(name=suite.name, description=suite.description, path=path, cases=suite.cases,
                 messages=messages, schemas=schemas, checks=checks)


def case_extras(doc: YamlDoc, case: Case, loc: tuple[str | int, ...], schemas: dict[str, dict[str, Any]],
                checks: dict[str, list[CheckRef]]) -> None:
    """Resolve a case's JSON Schema and checks of its own into ``schemas`` and ``checks``; check its tool_call."""
    if case.expect is None:
        return
    if case.expect.json_schema is not None:
        schemas[case.id] = _resolve_schema(doc, case.expect.json_schema, (*loc, "expect", "json_schema"))
    if case.expect.tool_call is not None and case.params.tools is not None:
        names = [t["function"]["name"] for t in case.params.tools]
        if case.expect.tool_call.name not in names:
            raise doc.error((*loc, "expect", "tool_call", "name"),
                            f"{case.expect.tool_call.name!r} is not one of this case's tools ({', '.join(names)})")
    if case.expect.python is not None or case.expect.check is not None:
        checks[case.id] = _resolve_checks(doc, case.expect, (*loc, "expect"))


def _entries(value: Any, loc: tuple[str | int, ...]) -> list[tuple[Any, tuple[str | int, ...]]]:
    """A single entry or a list of them, each with its key path."""
    if isinstance(value, list):
        return [(entry, (*loc, j)) for j, entry in enumerate(value)]
    return [(value, loc)]


def _resolve_checks(doc: YamlDoc, expect: Expect, loc: tuple[str | int, ...]) -> list[CheckRef]:
    """Import every ``python`` check and look up every ``check`` name now, so a typo is a config error."""
    refs: list[CheckRef] = []
    for entry, at in _entries(expect.python, (*loc, "python")) if expect.python is not None else []:
        spec = PythonCheck(fn=entry) if isinstance(entry, str) else entry
        where = at if isinstance(entry, str) else (*at, "fn")
        try:
            _, file, digest = load_file_check(doc.path.parent, spec.fn)
        except ConfigError as exc:
            raise doc.error(where, exc.message, hint=exc.hint) from exc
        refs.append(CheckRef("python", spec.fn, min=spec.min, args=spec.args, path=str(file), sha256=digest))
    for entry, at in _entries(expect.check, (*loc, "check")) if expect.check is not None else []:
        named = NamedCheck(name=entry) if isinstance(entry, str) else entry
        try:
            found = lookup(named.name)
        except ConfigError as exc:
            raise doc.error(at if isinstance(entry, str) else (*at, "name"), exc.message, hint=exc.hint) from exc
        refs.append(CheckRef("check", named.name, min=named.min, args=named.args, source=found.source))
    return refs


def _resolve_schema(doc: YamlDoc, schema: dict[str, Any] | str, loc: tuple[str | int, ...]) -> dict[str, Any]:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if isinstance(schema, str):
        schema_path = (doc.path.parent / schema).resolve()
        try:
            schema = json.loads(schema_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise doc.error(loc, f"schema file not found: {schema} (looked in {schema_path})") from exc
        except (OSError, ValueError) as exc:
            raise doc.error(loc, f"cannot read JSON schema {schema}: {exc}") from exc
    if not isinstance(schema, dict):
        raise doc.error(loc, "a JSON Schema must be an object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise doc.error(loc, f"invalid JSON Schema: {exc.message}") from exc
    return schema


