"""results.csv: one row per record, timings and usage flattened, for spreadsheets and dataframes.

Model output is untrusted: a cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return)
would run as a formula when the file is opened in a spreadsheet, so such free-text cells get a leading
``'`` (OWASP's advice). The exact text is in results.jsonl.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from evalharness.report.outcomes import Outcomes
from evalharness.store import attempt_count

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


def columns(axes: list[str]) -> list[str]:
    return ["item_id", "cell_id", "setting", *(f"param.{a}" for a in axes), "suite", "case_id", "repeat",
            "started_at", "ok", "http_status", "error_kind", "error", "passed", "failures", "finish_reason",
            *TIMINGS, "chunks", *USAGE, "reasoning_tokens", "cost", "attempts", "response_id", "params",
            "content", "reasoning", "tool_calls"]


def write_csv(run_dir: Path, summary: dict[str, Any], records: list[dict[str, Any]], outcomes: Outcomes) -> Path:
    """Write results.csv; ``passed``/``failures`` are the case's expect checks on that record (empty when the
    case has none; a failed request fails). None is written as an empty field."""
    axes = list(dict.fromkeys(a for c in summary["cells"] for a in c["params"]))
    # The columns every record of a cell shares, built once per cell.
    by_cell = {c["cell_id"]: [c["cell_id"], c["label"],
                              *(_json(v) if isinstance(v, (dict, list)) else v
                                for v in (c["params"].get(a) for a in axes))] for c in summary["cells"]}
    # Records of one case in one cell were sent the same params; encode them once (checked by equality).
    params_json: dict[tuple[str, str, str], tuple[Any, str]] = {}
    path = run_dir / "results.csv"
    with path.open("w", encoding="utf-8", errors="replace", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns(axes))
        for r in records:
            timings = r.get("timings") or {}
            usage = r.get("usage") or {}
            failures = outcomes.by_item.get(r["item_id"], [])
            ok = r["ok"]
            checked = not ok or outcomes.has_expect(f"{r['suite']}/{r['case_id']}")
            params = r.get("params")
            key = (r["cell_id"], r["suite"], r["case_id"])
            cached = params_json.get(key)
            if cached is None or cached[0] != params:
                cached = params_json[key] = (params, _json(params))
            writer.writerow([
                r["item_id"], *by_cell.get(r["cell_id"], [r["cell_id"], ""]), r["suite"], r["case_id"],
                r["repeat"], r.get("started_at"), "true" if ok else "false", r.get("http_status"),
                r.get("error_kind"), safe_text(r.get("error")),
                ("false" if failures else "true") if checked else "", safe_text("; ".join(failures)),
                r.get("finish_reason"), timings.get("queue_s"), timings.get("ttft_s"), timings.get("ttfc_s"),
                timings.get("e2e_s"), len(timings.get("chunk_times") or ()),
                usage.get("prompt_tokens"), usage.get("completion_tokens"), usage.get("total_tokens"),
                (usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
                r.get("cost"), attempt_count(r), r.get("response_id"), cached[1],
                safe_text(r.get("content")), safe_text(r.get("reasoning")), _json(r.get("tool_calls")),
            ])
    return path
