"""Cases from a data file: a suite's ``dataset: {path}`` read row by row, and its ``case:`` template rendered
over each ``row``.

JSON Lines and CSV are read with the standard library; Parquet with pyarrow and a ``datasets.save_to_disk``
folder with Hugging Face ``datasets`` (optional extras, imported only when such a file is used). Rows come
with their place in the file (a line for JSONL and CSV, a row number otherwise), so an error names it.
With ``sample: {n, seed}`` the rows to use are drawn first and only they are parsed and rendered.
"""

from __future__ import annotations

import csv
import importlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import jinja2
import orjson

from evalharness.errors import ConfigError

#: Every template string of ``case:`` renders with this environment: an undefined name is an error.
TEMPLATES = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass(frozen=True)
class Row:
    """One row of a data file and where it is: ``line`` in a text file, else ``index`` (0-based)."""

    data: dict[str, Any]
    index: int
    line: int | None

    def where(self, file: str) -> str:
        return f"{file} line {self.line}" if self.line is not None else f"{file} row {self.index + 1}"


def _extra(module: str, extra: str, path: Path) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"reading {path.name} needs {module}, which is not installed",
                          file=str(path), hint=f"pip install 'evalharness[{extra}]'") from exc


def data_format(path: Path) -> str:
    """``jsonl``, ``csv``, ``parquet`` or ``hf`` (a ``datasets.save_to_disk`` folder), from the path."""
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            return "hf"
        raise ConfigError("a dataset folder must be one written by datasets.save_to_disk "
                          "(dataset_info.json or dataset_dict.json in it)", file=str(path))
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ConfigError(f"unknown data file type {suffix or '(none)'!r}; use .jsonl, .csv, .parquet or a "
                      f"datasets.save_to_disk folder", file=str(path))


def _picked(total: int, n: int | None, seed: int) -> list[int] | None:
    """The row indices a ``sample`` draws, in file order; None for every row."""
    if n is None or n >= total:
        return None
    return sorted(random.Random(seed).sample(range(total), n))


def read_rows(path: Path, *, n: int | None = None, seed: int = 0, split: str | None = None) -> Iterator[Row]:
    """The rows of a data file (a seeded sample of ``n`` of them when ``n`` is given), in file order."""
    kind = data_format(path)
    if kind == "jsonl":
        yield from _jsonl(path, n, seed)
    elif kind == "csv":
        yield from _csv(path, n, seed)
    elif kind == "parquet":
        pq = _extra("pyarrow.parquet", "parquet", path)
        try:
            table = pq.read_table(path)
        except Exception as exc:  # pyarrow's errors (ArrowInvalid, OSError) all mean "not a readable file"
            raise ConfigError(f"cannot read Parquet: {exc}", file=str(path)) from exc
        yield from _table_rows(table, n, seed)
    else:
        yield from _hf(path, n, seed, split)


def _jsonl(path: Path, n: int | None, seed: int) -> Iterator[Row]:
    with path.open("rb") as f:
        lines = f.read().splitlines()
    # Blank lines are skipped but counted, so a row's line is its line in the file.
    numbered = [(i + 1, raw) for i, raw in enumerate(lines) if raw.strip()]
    picked = _picked(len(numbered), n, seed)
    for index in picked if picked is not None else range(len(numbered)):
        line, raw = numbered[index]
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"not valid JSON: {exc}", file=str(path), line=line) from exc
        if not isinstance(data, dict):
            raise ConfigError(f"a row must be a JSON object, not {type(data).__name__}", file=str(path), line=line)
        yield Row(data, index, line)


def _csv(path: Path, n: int | None, seed: int) -> Iterator[Row]:
    dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, dialect=dialect)
            rows: list[tuple[int, dict[str, Any]]] = []
            line = 1
            for record in reader:
                if None in record:
                    raise ConfigError(f"this row has more fields than the header ({len(reader.fieldnames or [])})",
                                      file=str(path), line=line + 1)
                rows.append((line + 1, record))
                line = reader.line_num
    except csv.Error as exc:
        raise ConfigError(f"cannot read CSV: {exc}", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"a CSV file must be UTF-8: {exc}", file=str(path)) from exc
    picked = _picked(len(rows), n, seed)
    for index in picked if picked is not None else range(len(rows)):
        yield Row(rows[index][1], index, rows[index][0])


def _table_rows(table: Any, n: int | None, seed: int) -> Iterator[Row]:
    """Rows of a pyarrow Table; only the picked ones are converted to Python."""
    picked = _picked(table.num_rows, n, seed)
    indices = picked if picked is not None else range(table.num_rows)
    if picked is not None:
        table = table.take(picked)
    for batch_start, data in enumerate(table.to_pylist()):
        yield Row(data, indices[batch_start], None)


def _hf(path: Path, n: int | None, seed: int, split: str | None) -> Iterator[Row]:
    datasets = _extra("datasets", "datasets", path)
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # the library raises several kinds for a folder it cannot read
        raise ConfigError(f"cannot load the dataset: {exc}", file=str(path)) from exc
    if isinstance(loaded, datasets.DatasetDict):
        if split is None:
            if len(loaded) != 1:
                raise ConfigError(f"this dataset has the splits {', '.join(loaded)}; pick one with "
                                  f"dataset: {{path: ..., split: NAME}}", file=str(path))
            split = next(iter(loaded))
        if split not in loaded:
            raise ConfigError(f"no split {split!r}; the dataset has {', '.join(loaded)}", file=str(path))
        loaded = loaded[split]
    yield from _table_rows(loaded.data.table, n, seed)


def render(template: Any, row: Row) -> Any:
    """``template`` (a structure of mappings, lists and strings) with every string rendered over ``row``.

    The strings of one template render together, as one jinja2 template (its context is built once per row,
    not once per string: most of the cost of a 100,000-row file); strings without jinja2 syntax are kept as
    they are. A rendering error is raised as a ``TemplateProblem`` naming the key path of the string that
    failed.
    """
    plan = _plan(template)
    if plan.combined is None:
        return template
    try:
        texts = plan.combined.render(row=row.data).split(_SEPARATOR)
    except Exception:  # find which string failed, and say why
        for at, text in plan.leaves:
            _render_one(text, row, at)
        raise  # every string rendered on its own: the combination is at fault, which cannot happen
    if len(texts) != len(plan.leaves):  # a row whose values contain the separator: render one by one
        texts = [_render_one(text, row, at) for at, text in plan.leaves]
    return _fill(template, iter(texts))


def _render_one(text: str, row: Row, at: tuple[str | int, ...]) -> str:
    try:
        return _compiled(text).render(row=row.data)
    except jinja2.TemplateError as exc:
        raise TemplateProblem(at, str(exc)) from exc
    except Exception as exc:  # a filter or test on a row's value may raise anything
        raise TemplateProblem(at, f"{type(exc).__name__}: {exc}") from exc


def _fill(template: Any, texts: Iterator[str]) -> Any:
    """``template`` with each string that has jinja2 syntax replaced by the next rendered text."""
    if isinstance(template, str):
        return next(texts) if _has_syntax(template) else template
    if isinstance(template, dict):
        return {key: _fill(value, texts) for key, value in template.items()}
    if isinstance(template, list):
        return [_fill(value, texts) for value in template]
    return template


def _has_syntax(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


@dataclass(frozen=True)
class _Plan:
    leaves: list[tuple[tuple[str | int, ...], str]]
    combined: jinja2.Template | None


# Between two rendered strings: a control character no template or row is expected to hold (if one does,
# the split comes out wrong and the strings are rendered one by one instead).
_SEPARATOR = "\x1e\x00\x1e"
_PLANS: dict[str, _Plan] = {}


def _plan(template: Any) -> _Plan:
    key = orjson.dumps(template, option=orjson.OPT_SORT_KEYS).decode()
    found = _PLANS.get(key)
    if found is None:
        leaves: list[tuple[tuple[str | int, ...], str]] = []

        def walk(value: Any, at: tuple[str | int, ...]) -> None:
            if isinstance(value, str):
                if _has_syntax(value):
                    leaves.append((at, value))
            elif isinstance(value, dict):
                for k, v in value.items():
                    walk(v, (*at, k))
            elif isinstance(value, list):
                for i, v in enumerate(value):
                    walk(v, (*at, i))

        walk(template, ())
        combined = None
        if leaves:
            try:
                combined = _compiled(_SEPARATOR.join(text for _, text in leaves))
            except jinja2.TemplateSyntaxError:  # say which string is wrong, on the first row
                combined = None
        found = _PLANS[key] = _Plan(leaves, combined)
    if found.combined is None and found.leaves:
        for at, text in found.leaves:  # the string that does not compile
            try:
                _compiled(text)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateProblem(at, str(exc)) from exc
    return found


class TemplateProblem(Exception):
    """A ``case:`` string that failed to render for one row: its key path and why."""

    def __init__(self, at: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message


_CACHE: dict[str, jinja2.Template] = {}


def _compiled(text: str) -> jinja2.Template:
    """Each template string compiled once: a 100,000-row file renders the same few strings over and over."""
    found = _CACHE.get(text)
    if found is None:
        found = _CACHE[text] = TEMPLATES.from_string(text)
        # Its globals as a plain dict, not the ChainMap over the environment's: every render copies them, and
        # copying a ChainMap costs more than rendering a short string.
        found.globals = dict(found.globals)
    return found
