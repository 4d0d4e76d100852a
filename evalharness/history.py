"""``evalharness history DIR...``: how each cell's metrics moved over many stored runs, and which run broke them.

Reads every complete run's summary.json (never calls a target; runs that stopped early or were never scored
are listed as skipped), matches cells across runs by their params (a grid that changed shows its new cells as
new series), and judges each run against the run before it with the verdicts of ``evalharness compare``
(``pairs.py``; cached, so a rebuild reads summaries only). A regression is marked on the run where it first
appeared: the next run, as bad as this one, is not a regression against it.

Writes history.json (``types.History``) and history.html (``report/history_html.py``).
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from evalharness import __version__
from evalharness.errors import UsageError
from evalharness.pairs import CACHE, PairCache, Question, cell_key, judge_pairs
from evalharness.regress import ANALYSIS, DEFAULT_METRICS
from evalharness.report.fmt import gate_bound, gate_subject, gate_value
from evalharness.scoring.catalogue import split_metric
from evalharness.store import MANIFEST, SUMMARY
from evalharness.types import (
    History,
    HistoryCell,
    HistoryGate,
    HistoryPoint,
    HistoryRun,
    HistorySkipped,
    MetricValue,
    Summary,
)

HISTORY_JSON = "history.json"
HISTORY_HTML = "history.html"


@dataclass
class StoredRun:
    """What the history keeps of a run's summary (a thousand whole summaries would take a gigabyte)."""

    run_dir: Path
    run_id: str
    name: str
    started_at: str
    passed: bool
    gates_failed: list[HistoryGate]
    gates_total: int
    cells: dict[str, dict[str, HistoryPoint]]
    index: dict[str, HistoryCell]

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "run_dir"}

    @classmethod
    def from_json(cls, run_dir: Path, data: dict[str, Any]) -> StoredRun:
        return cls(run_dir=run_dir, **data)

    @classmethod
    def of(cls, run_dir: Path, summary: Summary, metrics: Sequence[str]) -> StoredRun:
        index: dict[str, HistoryCell] = {}
        return cls(run_dir, str(summary.get("run_id") or run_dir.name), str(summary.get("name", "")),
                   str(summary.get("started_at", "")), bool(summary.get("passed")), failed_gates(summary),
                   len(summary.get("gates", [])), run_cells(summary, metrics, index), index)


def find_runs(paths: Sequence[str], metrics: Sequence[str] = DEFAULT_METRICS, cache: PairCache | None = None
              ) -> tuple[list[StoredRun], list[HistorySkipped]]:
    """The complete runs that ``paths`` name (run folders, folders of runs such as ``reports/<name>/``, or
    globs), oldest first, and the runs skipped with why. A run unchanged since ``cache`` kept it is not read."""
    folders: dict[Path, Path] = {}
    for given in paths:
        matches = sorted(glob.glob(given)) if glob.has_magic(given) else [given]
        if not matches:
            raise UsageError(f"{given}: no folder matches")
        for match in matches:
            path = Path(match)
            if (path / MANIFEST).is_file():
                folders.setdefault(path.resolve(), path)
            elif path.is_dir():
                found = [p for p in sorted(path.iterdir()) if (p / MANIFEST).is_file()]
                if not found and not glob.has_magic(given):
                    raise UsageError(f"{path} holds no run (no folder with a {MANIFEST}); give run folders or a "
                                     "config's reports/<name>/ folder")
                for p in found:
                    folders.setdefault(p.resolve(), p)
            elif not glob.has_magic(given):
                raise UsageError(f"{path} is not a folder")
    runs: list[StoredRun] = []
    skipped: list[HistorySkipped] = []
    for run_dir in folders.values():
        kept = cache.lookup_run(run_dir, metrics) if cache else None
        if kept is not None:
            with contextlib.suppress(TypeError):
                runs.append(StoredRun.from_json(run_dir, kept))
                continue
        if not (run_dir / SUMMARY).is_file():
            skipped.append({"run_dir": str(run_dir), "reason": f"no {SUMMARY} (stopped before it was scored)"})
            continue
        try:  # orjson: a thousand summaries of a 40-cell grid are 200 MB of JSON
            summary: Summary = orjson.loads((run_dir / SUMMARY).read_bytes())
        except (OSError, ValueError) as exc:
            skipped.append({"run_dir": str(run_dir), "reason": f"{SUMMARY} unreadable: {exc}"})
            continue
        if not summary.get("complete"):
            skipped.append({"run_dir": str(run_dir), "reason": "incomplete: " + str(summary.get("stop_reason"))})
            continue
        stored = StoredRun.of(run_dir, summary, metrics)
        if cache:
            cache.store_run(run_dir, metrics, stored.to_json())
        runs.append(stored)
    runs.sort(key=lambda r: (r.started_at, r.run_dir.name))
    return runs, skipped


def point(value: MetricValue | None, field: str | None) -> HistoryPoint:
    """A metric's value and 95% interval in summary.json's shape (a latency by its ``field``, e.g. p50)."""
    if not value:
        return {"value": None, "ci95": None, "n": None}
    # A field named at run time (the catalogue's): read from the JSON document as such.
    raw = cast(dict[str, Any], value)
    return {"value": raw.get(field or "value"), "ci95": raw.get(f"{field}_ci95" if field else "ci95"),
            "n": raw.get("n")}


def run_cells(summary: Summary, metrics: Sequence[str], index: dict[str, HistoryCell]
              ) -> dict[str, dict[str, HistoryPoint]]:
    """A run's cells by key, each with the metrics that have a value in it; new cells join ``index``."""
    out: dict[str, dict[str, HistoryPoint]] = {}
    for cell in summary["cells"]:
        key = cell_key(cell["params"])
        index.setdefault(key, {"key": key, "label": cell["label"], "params": cell["params"]})
        points: dict[str, HistoryPoint] = {}
        for m in metrics:
            name, fld = split_metric(m)
            found = point(cell["metrics"].get(name), fld)
            if found["value"] is not None:
                points[m] = found
        out[key] = points
    return out


def failed_gates(summary: Summary) -> list[HistoryGate]:
    """The run's failed gate verdicts as the console words them: value, bound, and the reason when given."""
    return [{"metric": g.get("metric", ""), "label": gate_subject(g),
             "reason": " ".join(x for x in (f"= {gate_value(g)} (want {gate_bound(g)})", g.get("reason", "")) if x)}
            for g in summary.get("gates", []) if not g.get("passed")]


def build_history(paths: Sequence[str], out: Path, *, question: Question | None = None,
                  metrics: Sequence[str] = DEFAULT_METRICS, last: int | None = None, jobs: int = 1) -> History:
    """history.json's content for the runs ``paths`` name (oldest first), each judged against the one
    before it; pair verdicts are read from and written to the cache in ``out``."""
    question = question or Question()
    cache = PairCache(out / CACHE, question)
    runs, skipped = find_runs(paths, metrics, cache)
    if last is not None:
        runs = runs[-last:]
    if not runs:
        raise UsageError("no complete run to show: " + ("; ".join(f"{s['run_dir']}: {s['reason']}"
                                                                for s in skipped) or "nothing found"))
    pairs = [(runs[i - 1].run_dir, runs[i].run_dir) for i in range(1, len(runs))]
    verdicts = {pair: found for pair in pairs if (found := cache.lookup(*pair)) is not None}
    for pair, judged in judge_pairs([p for p in pairs if p not in verdicts], question, jobs=jobs).items():
        cache.store(*pair, judged)
        verdicts[pair] = judged
    entries: list[HistoryRun] = []
    index: dict[str, HistoryCell] = {}
    for i, run in enumerate(runs):
        verdict = verdicts[(runs[i - 1].run_dir, run.run_dir)] if i else None
        note = None
        if verdict is not None and not verdict.matched:
            note = f"no cell in common with {runs[i - 1].run_id}: nothing compared"
        report = run.run_dir / "report.html"
        for key, cell in run.index.items():
            index.setdefault(key, cell)
        entries.append({
            "run_id": run.run_id, "run_dir": str(run.run_dir),
            "report": os.path.relpath(report, out) if report.is_file() else None,
            "name": run.name, "started_at": run.started_at, "passed": run.passed, "gates_failed": run.gates_failed,
            "gates_total": run.gates_total, "against": runs[i - 1].run_id if i else None, "note": note,
            "cells": run.cells, "regressions": verdict.regressions if verdict else []})
    cache.save()
    history: History = {"generated_by": f"evalharness {__version__}", "metrics": list(metrics),
                        "analysis": ANALYSIS[question.population], "cells": list(index.values()), "runs": entries,
                        "skipped": skipped}
    return history


def write_history(paths: Sequence[str], out: Path, *, question: Question | None = None,
                  last: int | None = None, jobs: int = 1) -> tuple[History, list[Path]]:
    """Build the history of ``paths`` and write history.json and history.html into ``out``."""
    from evalharness.report.history_html import render_history  # the page's view lives with the reports

    out.mkdir(parents=True, exist_ok=True)
    history = build_history(paths, out, question=question, last=last, jobs=jobs)
    json_path, html_path = out / HISTORY_JSON, out / HISTORY_HTML
    # Compact and by orjson: a thousand runs of 40 cells are tens of MB indented, and seconds with json.
    tmp = json_path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps(history, option=orjson.OPT_APPEND_NEWLINE))
    os.replace(tmp, json_path)
    html_path.write_text(render_history(history), encoding="utf-8", errors="replace")
    return history, [html_path, json_path]


def default_out(paths: Sequence[str]) -> Path:
    """Where the history goes without ``--out``: the folder of runs given (``reports/<name>/``), or the one
    folder all the runs given are in, else the current folder."""
    if len(paths) == 1 and not glob.has_magic(paths[0]) and Path(paths[0]).is_dir() \
            and not (Path(paths[0]) / MANIFEST).is_file():
        return Path(paths[0])
    parents = {Path(p).resolve().parent for given in paths for p in (glob.glob(given) or [given])}
    return parents.pop() if len(parents) == 1 else Path(".")
