"""``evalharness history DIR...``: how each cell's metrics moved over many stored runs, and which run broke them.

Reads every complete run's summary.json (never calls a target; runs that stopped early or were never scored
are listed as skipped), matches cells across runs by their params (a grid that changed shows its new cells as
new series), and judges each run against the run before it with the verdicts of ``evalharness compare``
(``pairs.py``; cached, so a rebuild reads summaries only). A regression is marked on the run where it first
appeared: the next run, as bad as this one, is not a regression against it.

Writes history.json (``types.History``) and history.html (``report/history_html.py``).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

from evalharness import __version__
from evalharness.errors import UsageError
from evalharness.pairs import CACHE, PairCache, PairVerdict, Question, RunLoader, judge_pair
from evalharness.plan import canonical
from evalharness.regress import ANALYSIS, DEFAULT_METRICS
from evalharness.report.fmt import gate_bound, gate_subject, gate_value
from evalharness.scoring.catalogue import split_metric
from evalharness.store import MANIFEST, SUMMARY, read_json, write_json
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
    run_dir: Path
    summary: Summary


def find_runs(paths: Sequence[str]) -> tuple[list[StoredRun], list[HistorySkipped]]:
    """The complete runs that ``paths`` name (run folders, folders of runs such as ``reports/<name>/``, or
    globs), oldest first, and the runs skipped with why."""
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
        if not (run_dir / SUMMARY).is_file():
            skipped.append({"run_dir": str(run_dir), "reason": f"no {SUMMARY} (stopped before it was scored)"})
            continue
        try:
            summary: Summary = read_json(run_dir / SUMMARY)
        except (OSError, ValueError) as exc:
            skipped.append({"run_dir": str(run_dir), "reason": f"{SUMMARY} unreadable: {exc}"})
            continue
        if not summary.get("complete"):
            skipped.append({"run_dir": str(run_dir), "reason": "incomplete: " + str(summary.get("stop_reason"))})
            continue
        runs.append(StoredRun(run_dir, summary))
    runs.sort(key=lambda r: (str(r.summary.get("started_at", "")), r.run_dir.name))
    return runs, skipped


def point(value: MetricValue | None, field: str | None) -> HistoryPoint:
    """A metric's value and 95% interval in summary.json's shape (a latency by its ``field``, e.g. p50)."""
    if not value:
        return {"value": None, "ci95": None, "n": None}
    # A field named at run time (the catalogue's): read from the JSON document as such.
    raw = cast(dict[str, Any], value)
    return {"value": raw.get(field or "value"), "ci95": raw.get(f"{field}_ci95" if field else "ci95"),
            "n": raw.get("n")}


def run_cells(summary: Summary, metrics: Sequence[str]) -> list[HistoryCell]:
    out: list[HistoryCell] = []
    for cell in summary["cells"]:
        points: dict[str, HistoryPoint] = {}
        for m in metrics:
            name, fld = split_metric(m)
            points[m] = point(cell["metrics"].get(name), fld)
        out.append({"key": canonical(cell["params"]), "label": cell["label"], "params": cell["params"],
                    "metrics": points})
    return out


def failed_gates(summary: Summary) -> list[HistoryGate]:
    """The run's failed gate verdicts as the console words them: value, bound, and the reason when given."""
    return [{"metric": g.get("metric", ""), "label": gate_subject(g),
             "reason": " ".join(x for x in (f"= {gate_value(g)} (want {gate_bound(g)})", g.get("reason", "")) if x)}
            for g in summary.get("gates", []) if not g.get("passed")]


def judge_pair_of(loader: RunLoader, base: Path, new: Path, question: Question) -> PairVerdict:
    return judge_pair(loader(base), loader(new), question)


def build_history(paths: Sequence[str], out: Path, *, question: Question | None = None,
                  metrics: Sequence[str] = DEFAULT_METRICS, last: int | None = None,
                  ) -> History:
    """history.json's content for the runs ``paths`` name (oldest first), each judged against the one
    before it; pair verdicts are read from and written to the cache in ``out``."""
    question = question or Question()
    runs, skipped = find_runs(paths)
    if last is not None:
        runs = runs[-last:]
    if not runs:
        raise UsageError("no complete run to show: " + ("; ".join(f"{s['run_dir']}: {s['reason']}"
                                                                for s in skipped) or "nothing found"))
    cache = PairCache(out / CACHE, question)
    loader = RunLoader()
    entries: list[HistoryRun] = []
    for i, run in enumerate(runs):
        verdict: PairVerdict | None = None
        note = None
        if i:
            before = runs[i - 1]
            verdict = cache.get(before.run_dir, run.run_dir, partial(judge_pair_of, loader, before.run_dir,
                                                                     run.run_dir, question))
            if not verdict.matched:
                note = f"no cell in common with {before.summary.get('run_id')}: nothing compared"
        report = run.run_dir / "report.html"
        s = run.summary
        entries.append({
            "run_id": str(s.get("run_id") or run.run_dir.name), "run_dir": str(run.run_dir),
            "report": os.path.relpath(report, out) if report.is_file() else None,
            "name": str(s.get("name", "")), "started_at": str(s.get("started_at", "")),
            "passed": bool(s.get("passed")), "gates_failed": failed_gates(s), "gates_total": len(s.get("gates", [])),
            "against": str(runs[i - 1].summary.get("run_id")) if i else None, "note": note,
            "cells": run_cells(s, metrics), "regressions": verdict.regressions if verdict else []})
    cache.save()
    history: History = {"generated_by": f"evalharness {__version__}", "metrics": list(metrics),
                        "analysis": ANALYSIS[question.population], "runs": entries, "skipped": skipped}
    return history


def write_history(paths: Sequence[str], out: Path, *, question: Question | None = None,
                  last: int | None = None) -> tuple[History, list[Path]]:
    """Build the history of ``paths`` and write history.json and history.html into ``out``."""
    from evalharness.report.history_html import render_history  # the page's view lives with the reports

    out.mkdir(parents=True, exist_ok=True)
    history = build_history(paths, out, question=question, last=last)
    json_path, html_path = out / HISTORY_JSON, out / HISTORY_HTML
    write_json(json_path, history)
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
