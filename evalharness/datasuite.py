"""A suite whose cases come from a data file: ``dataset:`` rows, each rendered through the ``case:`` template.

Every error names the data file and the row's line (or row number): a row that fails its template, a
rendered case that is not valid, two rows that give the same id. The rendered texts are final: they are
sent as they are, never rendered again (a row may well contain ``{{``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from evalharness.datafile import Row, TemplateProblem, read_rows, render
from evalharness.errors import ConfigError
from evalharness.scoring.usercheck import CheckRef
from evalharness.suites import Case, Suite, SuiteFile, case_extras
from evalharness.yamlsrc import YamlDoc, describe_error, format_loc


def load_dataset_suite(doc: YamlDoc, suite: SuiteFile) -> Suite:
    """The suite's cases, one per row of its dataset (or of its ``sample``), in file order."""
    assert suite.dataset is not None and suite.case is not None
    path = (doc.path.parent / suite.dataset.path).resolve()
    if not path.exists():
        raise doc.error(("dataset", "path"), f"data file not found: {suite.dataset.path} (looked in {path})",
                        hint="the path is relative to the suite file's folder")
    shown = suite.dataset.path
    cases: list[Case] = []
    messages: dict[str, list[dict[str, Any]]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    checks: dict[str, list[CheckRef]] = {}
    first_row: dict[str, Row] = {}
    sample = suite.sample
    for row in read_rows(path, n=sample.n if sample else None, seed=sample.seed if sample else 0,
                         split=suite.dataset.split):
        case = _case(path, shown, suite.case, row)
        if case.id in first_row:
            raise ConfigError(f"duplicate case id {case.id!r}: {first_row[case.id].where(shown)} and "
                              f"{row.where(shown)} both give it", file=str(path), key="case.id", line=row.line,
                              hint="make the id template unique per row, e.g. id: '{{ row.id }}'")
        first_row[case.id] = row
        try:
            case_extras(doc, case, ("case",), schemas, checks)
        except ConfigError as exc:
            raise ConfigError(f"{row.where(shown)}: {exc.message}", file=exc.file, key=exc.key, line=exc.line,
                              hint=exc.hint) from exc
        messages[case.id] = _messages(case)
        cases.append(case)
    if not cases:
        raise doc.error(("dataset", "path"), f"{shown} has no rows")
    return Suite(name=suite.name, description=suite.description, path=doc.path, cases=cases, messages=messages,
                 schemas=schemas, checks=checks)


def _case(path: Path, shown: str, template: dict[str, Any], row: Row) -> Case:
    """One row's case: the template rendered over it, then validated as a case of a suite file is."""
    try:
        data = render(template, row)
    except TemplateProblem as exc:
        raise ConfigError(f"{row.where(shown)}: template error: {exc.message}", file=str(path),
                          key=format_loc(("case", *exc.at)), line=row.line) from exc
    try:
        return Case.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        value = data
        for part in err["loc"][:1]:
            value = value.get(part) if isinstance(value, dict) else None
        got = f" (rendered as {value!r})" if isinstance(value, str) and len(value) < 80 else ""
        raise ConfigError(f"{row.where(shown)}: {describe_error(err)}{got}", file=str(path),
                          key=format_loc(("case", *err["loc"])), line=row.line) from exc


def _messages(case: Case) -> list[dict[str, Any]]:
    """The messages to send, as rendered from the row (no second rendering)."""
    if case.messages is not None:
        return [{"role": m.role, "content": m.content} for m in case.messages]
    assert case.prompt is not None
    out: list[dict[str, Any]] = [{"role": "system", "content": case.system}] if case.system else []
    out.append({"role": "user", "content": case.prompt})
    return out
