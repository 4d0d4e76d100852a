"""results.csv: one row per record, timings and usage flattened, for spreadsheets and dataframes.

``usage_source`` says where a row's token counts came from: ``server`` (its usage), ``counted`` (the
server's tokenizer, the server having sent none) or empty (no counts).

Model output is untrusted: a cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return)
would run as a formula when the file is opened in a spreadsheet, so such free-text cells get a leading
``'`` (OWASP's advice). The exact text is in results.jsonl.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from evalharness.records import attempt_count
from evalharness.report.outcomes import Outcomes
from evalharness.types import CellSummary, PlannedCell, Record, Summary, Usage
from evalharness.usage import cached_tokens, usage_source

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
TIMINGS = ("queue_s", "ttft_s", "ttfc_s", "e2e_s")
USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")


def safe_text(text: str | None) -> str:
    """Free text that a spreadsheet will show rather than evaluate."""
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _json(value: Any) -> str:
    return "" if value is None else _encode(value)


def axes(cells: Iterable[PlannedCell | CellSummary]) -> list[str]:
    """The grid's axes, each once, in the order the cells first name them: results.csv's ``param.*`` columns."""
    return list(dict.fromkeys(a for c in cells for a in c["params"]))


def columns(axes: list[str]) -> list[str]:
    return ["item_id", "cell_id", "setting", *(f"param.{a}" for a in axes), "suite", "case_id", "repeat",
            "started_at", "ok", "http_status", "error_kind", "error", "passed", "failures", "finish_reason",
            *TIMINGS, "chunks", *USAGE, "reasoning_tokens", "cached_tokens", "usage_source", "cost", "attempts",
            "response_id", "params", "content", "reasoning", "tool_calls"]


def write_csv(run_dir: Path, summary: Summary, records: list[Record], outcomes: Outcomes) -> Path:
    """Write results.csv; ``passed``/``failures`` are the case's expect checks on that record (empty when the
    case has none; a failed request fails). None is written as an empty field."""
    names = axes(summary["cells"])
    path = run_dir / "results.csv"
    with path.open("w", encoding="utf-8", errors="replace", newline="") as fh:
        csv.writer(fh).writerow(columns(names))
        batch: list[str] = []
        for line in _lines(summary, records, outcomes, names):
            batch.append(line)
            if len(batch) >= 2000:
                fh.writelines(batch)
                batch.clear()
        fh.writelines(batch)
    return path


# What makes the csv module (QUOTE_MINIMAL, the excel dialect) quote a field.
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')


def csv_field(value: Any) -> str:
    """One field as ``csv.writer`` (excel dialect) writes it; None is empty.

    results.csv is written line by line with this instead of ``csv.writer``: the writer's per-field cost was
    most of a 100,000-record report's CSV time, while here the columns a cell and case share, and the texts
    repeats share, are encoded once. ``test_csv_lines_are_what_csv_writer_writes`` holds it to the writer.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"' if _NEEDS_QUOTES.search(value) else value
    return str(value)


def _lines(summary: Summary, records: list[Record], outcomes: Outcomes, axes: list[str]
           ) -> Iterator[str]:
    """The data lines of results.csv, each ending in CRLF like the csv module's."""
    # The columns every record of a cell shares, encoded once per cell.
    by_cell = {c["cell_id"]: [c["cell_id"], c["label"],
                              *(_json(v) if isinstance(v, (dict, list)) else v
                                for v in (c["params"].get(a) for a in axes))] for c in summary["cells"]}
    # Per (cell, case): the encoded leading columns and whether the case has checks; records of one case in
    # one cell were sent the same params, so their JSON is encoded once (checked by identity, then equality).
    shared: dict[tuple[str, str, str], tuple[str, bool, list[Any]]] = {}
    texts: dict[str, str] = {}  # free text, made spreadsheet-safe and encoded once per distinct text

    def text(value: str | None) -> str:
        if not value:
            return ""
        found = texts.get(value)
        if found is None:
            found = texts[value] = csv_field(safe_text(value))
        return found

    failures_of = outcomes.by_item
    no_failures: list[str] = []
    empty: dict[str, Any] = {}
    no_usage: Usage = {}
    field = csv_field
    for r in records:
        ok = r["ok"]
        suite, case_id, cell_id = r["suite"], r["case_id"], r["cell_id"]
        key = (cell_id, suite, case_id)
        entry = shared.get(key)
        if entry is None:
            lead = [*by_cell.get(cell_id, [cell_id, ""]), suite, case_id]
            entry = shared[key] = (",".join(map(field, lead)), outcomes.has_expect(f"{suite}/{case_id}"), [None, ""])
        lead_text, has_expect, params_json = entry
        params = r.get("params")
        if params is not params_json[0] and params != params_json[0]:
            params_json[0], params_json[1] = params, field(_json(params))
        timings = r.get("timings") or empty
        usage = r.get("usage") or no_usage
        failures = failures_of.get(r["item_id"], no_failures)
        chunks = timings.get("chunk_times")
        tool_calls = r.get("tool_calls")
        yield ",".join((
            field(r["item_id"]), lead_text, field(r["repeat"]), field(r.get("started_at")),
            "true" if ok else "false", field(r.get("http_status")), field(r.get("error_kind")), text(r.get("error")),
            ("false" if failures else "true") if not ok or has_expect else "",
            text("; ".join(failures)) if failures else "",
            field(r.get("finish_reason")), field(timings.get("queue_s")), field(timings.get("ttft_s")),
            field(timings.get("ttfc_s")), field(timings.get("e2e_s")), str(len(chunks)) if chunks else "0",
            field(usage.get("prompt_tokens")), field(usage.get("completion_tokens")),
            field(usage.get("total_tokens")),
            field((usage.get("completion_tokens_details") or empty).get("reasoning_tokens")),
            field(cached_tokens(usage)), field(usage_source(r)), field(r.get("cost")), str(attempt_count(r)),
            field(r.get("response_id")), params_json[1],
            text(r.get("content")), text(r.get("reasoning")),
            "" if tool_calls is None else field(_json(tool_calls)),
        )) + "\r\n"
