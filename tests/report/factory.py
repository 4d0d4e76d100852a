"""Synthetic run directories for report tests: a manifest and results.jsonl shaped like a real run's,
with answers chosen by the test (including hostile ones), so reports are built without a model."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalharness.plan import make_cells
from evalharness.store import read_json, read_records
from evalharness.summary import build_summary

# Would change the page if it ever ran: sets the title and marks <body>; a test looks for both.
HOSTILE = ('<script>document.title="PWNED"</script>'
           '<img src=x onerror="document.body.setAttribute(\'data-pwned\',\'1\')">')
GRID: dict[str, list[Any]] = {"temperature": [0, 1.0], "response_format": [None, {"type": "json_object"}]}
CASES: dict[str, dict[str, Any]] = {
    "qa/capital": {"expect": {"contains": "Paris"}, "schema": None, "extract": {"regex": "(?i)(paris)"}},
    "json/person": {"expect": {"json_schema": {"type": "object", "required": ["name"]}},
                    "schema": {"type": "object", "required": ["name"]}, "extract": None},
    "free/hostile": {"expect": None, "schema": None, "extract": None},
}

Answer = Callable[[str, dict[str, Any], int], str | None]


def default_answer(case: str, params: dict[str, Any], repeat: int) -> str | None:
    """Deterministic at temperature 0; at 1 the repeats diverge part-way through. None: the request fails."""
    hot = params.get("temperature") == 1.0
    if case == "qa/capital":
        if hot and repeat == 2:
            return "The capital of France is Lyon, I think."
        return "The capital of France is Paris." if not hot or repeat == 0 else "The capital of France is Paris!"
    if case == "json/person":
        if hot and repeat == 1:
            return None
        return '{"name": "Ann", "age": 31}' if params.get("response_format") or not hot else "Ann is 31."
    # The hostile case: its answer is the payload, once as the modal output and once inside a divergence.
    return f"Answer: {HOSTILE}" if repeat != 1 or not hot else f"Answer: {HOSTILE} and more <b>bold</b>"


def make_run(root: Path, *, grid: dict[str, list[Any]] | None = None, cases: dict[str, dict[str, Any]] | None = None,
             repeats: int = 3, answer: Answer = default_answer, gates: list[dict[str, Any]] | None = None,
             usage: bool = False, seed: int = 1) -> Path:
    """Write ``root/run`` with manifest.json and results.jsonl; returns the run directory."""
    grid = GRID if grid is None else grid
    cases = CASES if cases is None else cases
    run_dir = root / "run"
    run_dir.mkdir(parents=True)
    cells = make_cells(grid)
    rng = random.Random(seed)
    manifest = {
        "run_id": "20261127-000000-test", "harness_version": "test", "started_at": "2026-11-27T00:00:00+00:00",
        "config_path": "config.yaml",
        "config": {"name": "report-test", "description": "A synthetic run <i>for</i> report tests.",
                   "run": {"stream": True}, "pricing": {"currency": "CNY", "input_per_1k": 0.5, "output_per_1k": 1.0},
                   "grid": grid, "repeats": repeats,
                   "gates": gates if gates is not None else [{"metric": "pass_rate", "where": {}, "min": 0.9},
                                                             {"metric": "error_rate", "where": {}, "max": 0.5}]},
        "target": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "test-model"},
        "plan": {"requests": len(cells) * len(cases) * repeats, "repeats": repeats, "cases": len(cases),
                 "cells": [{"cell_id": c.cell_id, "label": c.label, "params": c.params} for c in cells],
                 "item_ids_digest": "test"},
        "cases": cases,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with (run_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        second = 0
        for repeat in range(repeats):
            for cell in cells:
                for case in cases:
                    suite, case_id = case.split("/", 1)
                    text = answer(case, cell.params, repeat)
                    second += 1
                    fh.write(json.dumps(_record(cell.cell_id, cell.params, suite, case_id, repeat, text, rng,
                                                second, usage)) + "\n")
    return run_dir


def _record(cell_id: str, params: dict[str, Any], suite: str, case_id: str, repeat: int, text: str | None,
            rng: random.Random, second: int, usage: bool) -> dict[str, Any]:
    ttft = rng.uniform(0.05, 0.3)
    chunks = [round(ttft + 0.01 * i, 6) for i in range(max(1, len(text or "") // 4))]
    e2e = chunks[-1] + rng.uniform(0.0, 0.05)
    ok = text is not None
    tokens = {"prompt_tokens": 20, "completion_tokens": len(chunks), "total_tokens": 20 + len(chunks)}
    return {
        "item_id": f"{cell_id}/{suite}/{case_id}/{repeat}", "cell_id": cell_id, "suite": suite, "case_id": case_id,
        "repeat": repeat, "params": {k: v for k, v in params.items() if v is not None},
        "started_at": f"2026-11-27T00:{second // 60:02d}:{second % 60:02d}.000+00:00",
        "ok": ok, "http_status": 200 if ok else 502, "error_kind": None if ok else "http_5xx",
        "error": None if ok else "HTTP 502: <html><body>Bad Gateway</body></html>",
        "content": text, "reasoning": "Thinking about <it>…" if ok and suite == "qa" else None,
        "tool_calls": None, "finish_reason": "stop" if ok else None,
        "usage": tokens if ok and usage else None,
        "cost": (20 * 0.5 + len(chunks) * 1.0) / 1000 if ok and usage else None, "logprobs": None,
        "timings": ({"queue_s": 1e-5, "ttft_s": ttft, "ttfc_s": ttft, "e2e_s": e2e, "chunk_times": chunks}
                    if ok else {"queue_s": 1e-5, "e2e_s": 0.02, "chunk_times": []}),
        "attempts": [{"status": 200 if ok else 502}], "response_id": f"chatcmpl-{second}",
    }


def cell_comparison(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``summary["comparisons"]`` list in the shape regress.cell_comparisons writes (first cell vs second)."""
    a, b = summary["cells"][0], summary["cells"][1]
    return [{"reference": {"cell_id": a["cell_id"], "label": a["label"]},
             "cell": {"cell_id": b["cell_id"], "label": b["label"]}, "differs_in": ["response_format"],
             "metrics": {"pass_rate": {"kind": "difference", "before": 0.5, "after": 0.75, "change": 0.25,
                                       "ci95": [-0.1, 0.6], "mde": 0.4, "n": 9, "cases": 3,
                                       "finding": "inconclusive", "field": None},
                         "e2e_s": {"kind": "ratio", "before": 0.3, "after": 0.36, "change": 1.2,
                                   "ci95": [1.05, 1.4], "mde": 0.1, "n": 9, "cases": 3, "finding": "worse",
                                   "field": "p50"}}}]


def load(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """(manifest, summary, records) of a run directory, scored as ``evalharness report`` scores it."""
    manifest = read_json(run_dir / "manifest.json")
    records = read_records(run_dir, compact=True)
    return manifest, build_summary(manifest, records, complete=True), records
