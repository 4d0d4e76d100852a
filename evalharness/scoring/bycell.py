"""Scoring a large run cell by cell, so its records are never all held at once.

Above ``STREAM_ABOVE`` records, ``finish`` (the end of ``run``, ``report`` and ``merge``) reads results.jsonl once
to find where each cell's records are (8 bytes a record), then scores one cell at a time: the cell's metrics,
check tallies, per-case counts (for per-case gates) and comparison units are computed from its records by the
same functions as for a small run — so every figure of summary.json is exact, the same as scoring the run
whole — and only those aggregates are kept. What stays grows with the run only through the comparison units
(one score per metric per case and repeat, kept in arrays: ``paired.Column``, about 80 bytes a record).

The cells are scored by ``score_workers`` forked processes (one per CPU), each holding one cell's records at
a time and writing that cell's rows of results.csv to a file of its own; this process gathers the cells in
the plan's order, so the result does not depend on the number of workers.

The reports that show single records — report.html's drill-down and charts, junit.xml — are built from a
seeded sample of each case in each cell (``SAMPLE_PER_CASE`` repeats, chosen by a hash of the item id, so the
same records every time); summary.json (``sampled_reports``), summary.md and report.html say so. summary.md
is built from the summary alone, results.csv from every record, cell by cell.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import math
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
from array import array
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson

from evalharness.baselines import Baselines
from evalharness.crosstarget import target_counts
from evalharness.errors import EvalHarnessError
from evalharness.load.metrics import completion_tokens
from evalharness.regress import Population
from evalharness.report.html import write_html
from evalharness.report.junit import write_junit
from evalharness.report.markdown import write_markdown
from evalharness.report.outcomes import build_outcomes
from evalharness.report.results_csv import _lines, axes, columns
from evalharness.runs import RunData
from evalharness.scoring.metrics import CaseSpec, case_counts, case_key, latency_columns, record_scores
from evalharness.scoring.paired import Units, cell_units
from evalharness.store import RESULTS, collector_paused, compact_record
from evalharness.summary import assemble, cell_summary, run_totals
from evalharness.types import CellSummary, Manifest, Record, Summary, Totals
from evalharness.usage import COUNTED, MIXED, SERVER, usage_check

#: Runs with more records than this are scored cell by cell (smaller ones whole, in memory).
STREAM_ABOVE = 200_000
#: Records of each case in each cell that the per-record reports of a large run show.
SAMPLE_PER_CASE = 3
SAMPLE_SEED = b"evalharness-sample-20261202"
#: At most this many processes score a large run's cells (each holds one cell's records at a time).
MAX_WORKERS = 8

_CELL = b'"cell_id":"'


@dataclass
class CellIndex:
    """Where each cell's records are in results.jsonl: their lines' byte offsets."""

    path: Path
    offsets: dict[str, array[int]]
    records: int

    @classmethod
    def build(cls, run_dir: Path) -> CellIndex:
        path = run_dir / RESULTS
        offsets: dict[str, array[int]] = {}
        n = 0
        if path.exists():
            with path.open("rb") as fh:
                position = 0
                for raw in fh:
                    if not raw.endswith(b"\n"):  # a torn last line: not a record
                        break
                    cell_id = _cell_id(raw)
                    if cell_id is not None:
                        offsets.setdefault(cell_id, array("q")).append(position)
                        n += 1
                    position += len(raw)
        return cls(path, offsets, n)

    def cell(self, cell_id: str) -> list[Record]:
        """One cell's records, compact (``store.compact_record``; their params not shared, which costs more
        time than the memory of one cell's is worth), in file order."""
        shared: dict[Any, Any] = {}
        with self.path.open("rb") as fh:
            out: list[Record] = []
            for offset in self.offsets.get(cell_id, ()):
                fh.seek(offset)
                out.append(cast(Record, compact_record(orjson.loads(fh.readline()), shared, share_params=False)))
        return out


def _cell_id(raw: bytes) -> str | None:
    """The cell id of a stored line, found without parsing the whole record (the writer puts it first)."""
    at = raw.find(_CELL)
    if at >= 0:
        end = raw.find(b'"', at + len(_CELL))
        if end > 0:
            return raw[at + len(_CELL):end].decode()
    try:
        return str(orjson.loads(raw)["cell_id"])
    except (ValueError, KeyError, TypeError):
        return None


def count_records(run_dir: Path) -> int:
    """Complete lines of results.jsonl (each ends in a newline; a torn last line does not), without parsing
    them."""
    path = run_dir / RESULTS
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))


def _sample_key(record: Record) -> bytes:
    return hashlib.sha1(SAMPLE_SEED + str(record["item_id"]).encode()).digest()


def _sample(rows: list[Record]) -> list[Record]:
    """``SAMPLE_PER_CASE`` records of each case: the smallest by a seeded hash of their item ids."""
    by_case: dict[tuple[str, str], list[Record]] = {}
    for r in rows:
        by_case.setdefault((r["suite"], r["case_id"]), []).append(r)
    return [r for recs in by_case.values() for r in heapq.nsmallest(SAMPLE_PER_CASE, recs, key=_sample_key)]


def _add_totals(into: Totals | None, part: Totals) -> Totals:
    if into is None:
        return part
    for key in ("requests", "errors", "prompt_tokens", "completion_tokens", "usage_reported", "cached_tokens"):
        into[key] = into[key] + part[key]
    into["usage_sources"] = dict(Counter(into["usage_sources"]) + Counter(part["usage_sources"]))
    into["errors_by_kind"] = dict(Counter(into["errors_by_kind"]) + Counter(part["errors_by_kind"]))
    into["prompt_tokens_estimated"] = into["prompt_tokens_estimated"] or part["prompt_tokens_estimated"]
    return into


class _Window:
    """The run's time window (first request sent to last finished) and its completed requests and tokens,
    gathered cell by cell: the run's duration and throughput without holding every record."""

    def __init__(self) -> None:
        self.first: datetime | None = None
        self.end: datetime | None = None
        self.ok = 0
        self.tokens = 0

    def add(self, rows: list[Record]) -> None:
        for r in rows:
            started = r.get("started_at")
            if started:
                begin = datetime.fromisoformat(started)
                finish = begin + timedelta(seconds=(r.get("timings") or {}).get("e2e_s") or 0.0)
                self.first = begin if self.first is None else min(self.first, begin)
                self.end = finish if self.end is None else max(self.end, finish)
            if r["ok"]:
                self.ok += 1
                self.tokens += completion_tokens(r)

    def merge(self, other: _Window) -> None:
        """Add another cell's window."""
        if other.first is not None:
            self.first = other.first if self.first is None else min(self.first, other.first)
        if other.end is not None:
            self.end = other.end if self.end is None else max(self.end, other.end)
        self.ok += other.ok
        self.tokens += other.tokens

    def throughput(self) -> Totals:
        duration = (self.end - self.first).total_seconds() if self.first and self.end else None
        if not duration or duration <= 0:
            return {"duration_s": duration, "throughput_rps": None, "output_tps": None}
        return {"duration_s": duration, "throughput_rps": self.ok / duration, "output_tps": self.tokens / duration}


def _usage_source(sources: dict[str, int]) -> str | None:
    kinds = {k for k in sources if k != "none"}
    if not kinds:
        return None
    return SERVER if kinds == {SERVER} else COUNTED if kinds == {COUNTED} else MIXED


@dataclass
class _Job:
    """What scoring one cell needs: the run, its cases, where each cell's records are, and the folder its rows
    of results.csv go to (one file a cell, joined in the plan's order by the run's process)."""

    run_dir: Path
    manifest: Manifest
    index: CellIndex
    cases: dict[str, CaseSpec]
    csv_parts: Path


@dataclass
class _Part:
    """One cell scored: what the run keeps of it (aggregates, comparison units, a sample); its rows of
    results.csv are in ``csv``, a file of ``_Job.csv_parts``."""

    summary: CellSummary
    counts: dict[str, dict[str, tuple[int, int]]]
    units: dict[str, Units]
    seen: list[tuple[str, str]]
    sampled: list[Record]
    checked: list[Record]
    totals: Totals
    costs: array[float]
    savings: array[float]
    requests: Counter[str]
    errors: Counter[str]
    window: _Window
    csv: Path


#: A worker process's job, handed to it through the fork (with every check and metric registered in this
#: process).
_JOB: _Job | None = None


def _score_cell(position: int, job: _Job | None = None) -> _Part:
    """Score the plan's ``position``-th cell from its records (in a worker: from the inherited job)."""
    job = job or _JOB
    assert job is not None
    with collector_paused():  # the collector would only walk the cell's records again and again
        return _cell_part(job, position)


def _cell_part(job: _Job, position: int) -> _Part:
    manifest, cases = job.manifest, job.cases
    cell = manifest["plan"]["cells"][position]
    every = job.index.cell(cell["cell_id"])
    window = _Window()
    window.add(every)
    requests, errors = target_counts(every, manifest["config"])
    part_totals = run_totals(manifest, every)
    costs = array("d", (r.get("cost") or 0.0 for r in every))  # 8 bytes a record: summed exactly at the end
    savings = array("d", (r.get("cached_saving") or 0.0 for r in every))
    checked = [r for r in every if r.get("usage_check")]
    # Written as a file, not handed back: a cell's rows are megabytes, which the run's process would only copy.
    csv_path = job.csv_parts / f"{position}.csv"
    with csv_path.open("w", encoding="utf-8", errors="replace", newline="") as fh:
        fh.writelines(_csv_lines(manifest, every))
    # A load level's warm-up requests are stored, and left out of its figures, gates and comparisons.
    rows = [r for r in every if not r.get("warmup")]
    del every
    # What the cell's metrics and its comparison units both need, computed once.
    scores = [record_scores(r, cases.get(case_key(r))) for r in rows]
    counts = case_counts(rows, cases, scores=scores)
    latencies = latency_columns([r for r in rows if r["ok"]])
    return _Part(summary=cell_summary(manifest, cell, rows, cases, counts=counts, latencies=latencies),
                 counts=counts, units=cell_units(rows, cases, scores=scores, latencies=latencies),
                 seen=sorted({(r["suite"], r["case_id"]) for r in rows}),
                 sampled=_sample(rows),
                 checked=checked, totals=part_totals, costs=costs, savings=savings,
                 requests=requests, errors=errors, window=window, csv=csv_path)


def score_workers(cells: int) -> int:
    """How many processes score a large run's cells: ``EVALHARNESS_SCORE_WORKERS`` if set, else one per CPU
    (at most ``MAX_WORKERS``, at most one per cell). Workers are forked, so they know every check and metric
    registered in this process; where forking is not safe (not Linux, or this process runs other threads) the
    cells are scored here, one after another, with the same result."""
    wanted = os.environ.get("EVALHARNESS_SCORE_WORKERS", "").strip()
    try:
        n = int(wanted) if wanted else min(MAX_WORKERS, len(os.sched_getaffinity(0)))
    except (ValueError, AttributeError):
        n = 1
    if n <= 1 or cells <= 1 or sys.platform != "linux" or _other_threads():
        return 1
    return min(n, cells)


def _other_threads() -> list[threading.Thread]:
    """The threads of this process besides this one. tqdm's monitor thread (started by a dependency's progress
    bars, e.g. Hugging Face ``datasets``; it only sleeps and checks its bars) is stopped first: tqdm starts it
    again when a bar needs it."""
    for thread in threading.enumerate():
        stop = getattr(thread, "exit", None)
        if type(thread).__module__ == "tqdm._monitor" and callable(stop):
            stop()
    return [t for t in threading.enumerate() if t is not threading.current_thread() and t.is_alive()]


def _parts(job: _Job, workers: int) -> Iterator[_Part]:
    """Every cell's part, in the plan's order."""
    positions = range(len(job.manifest["plan"]["cells"]))
    if workers <= 1:
        yield from (_score_cell(i, job) for i in positions)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                               initializer=_adopt, initargs=(job,))
    try:
        yield from pool.map(_score_cell, positions)
    except BrokenProcessPool as e:
        raise EvalHarnessError(
            f"a process scoring this run's cells died (killed, or out of memory?); its records are untouched: "
            f"EVALHARNESS_SCORE_WORKERS=1 evalharness report {job.run_dir} scores them in one process") from e
    finally:  # on Ctrl-C or an error here, the cells not begun are dropped: only those being scored finish
        pool.shutdown(wait=True, cancel_futures=True)


def _adopt(job: _Job) -> None:
    """A worker's start: the job, inherited through the fork (not pickled). Ctrl-C is the command's: it stops
    handing out cells, and the workers finish the one they have."""
    global _JOB
    _JOB = job
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def score_by_cell(run_dir: Path, manifest: Manifest, index: CellIndex, *, complete: bool, stop_reason: str | None,
                  gates_enabled: bool, baselines: Baselines | None, population: Population
                  ) -> tuple[Summary, list[Record]]:
    """summary.json of a large run, one cell at a time (in ``score_workers`` processes), and the seeded sample
    of its records; results.csv is written on the way."""
    cases = {key: CaseSpec.from_manifest(spec) for key, spec in manifest["cases"].items()}
    cells: list[CellSummary] = []
    counts: dict[str, dict[str, dict[str, tuple[int, int]]]] = {}
    totals: Totals | None = None
    costs, savings = array("d"), array("d")
    checked: list[Record] = []  # the records the run sampled for its usage check (a few)
    pairs: list[Record] = []  # one stand-in per case and cell: which cases the run has
    run = RunData(None, manifest, pairs, _cases=cases, _by_cell={})
    sampled: list[Record] = []
    requests: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    window = _Window()
    header = io.StringIO(newline="")
    csv.writer(header).writerow(columns(axes(manifest["plan"]["cells"])))
    with tempfile.TemporaryDirectory(dir=run_dir, prefix=".results-csv-") as parts, \
            (run_dir / "results.csv").open("wb") as csv_out:
        csv_out.write(header.getvalue().encode("utf-8", errors="replace"))
        csv_out.flush()  # before any fork: a worker must not inherit a buffer to write again
        job = _Job(run_dir, manifest, index, cases, Path(parts))
        for cell, part in zip(manifest["plan"]["cells"], _parts(job, score_workers(len(index.offsets))),
                              strict=True):
            with part.csv.open("rb") as rows_of_cell:
                shutil.copyfileobj(rows_of_cell, csv_out)
            part.csv.unlink()
            window.merge(part.window)
            requests.update(part.requests)
            errors.update(part.errors)
            totals = _add_totals(totals, part.totals)
            costs.extend(part.costs)
            savings.extend(part.savings)
            checked += part.checked
            cells.append(part.summary)
            counts[cell["cell_id"]] = part.counts
            run._units[cell["cell_id"]] = part.units
            pairs += [cast(Record, {"suite": s, "case_id": c}) for s, c in part.seen]
            sampled += part.sampled
    totals = totals or run_totals(manifest, [])
    totals["planned"] = manifest["plan"]["requests"]
    totals["cost"], totals["cached_saving"] = math.fsum(costs), math.fsum(savings)  # as run_totals sums them
    totals["usage_source"] = _usage_source(totals["usage_sources"])
    totals["usage_check"] = usage_check(checked)
    totals.update(window.throughput())
    summary = assemble(manifest, cells, totals, run,
                       lambda cell_id, metric: counts.get(cell_id, {}).get(metric, {}), complete=complete,
                       stop_reason=stop_reason, gates_enabled=gates_enabled, baselines=baselines,
                       population=population, cases=cases, by_target=(requests, errors))
    summary["sampled_reports"] = {  # type: ignore[typeddict-unknown-key]
        "records": len(sampled), "of": index.records, "per_case": SAMPLE_PER_CASE,
        "note": f"summary.json, summary.md and results.csv cover all {index.records:,} records; report.html's "
                f"drill-down and charts and junit.xml show a seeded sample of {SAMPLE_PER_CASE} records of each "
                f"case in each cell ({len(sampled):,} records)"}
    return summary, sampled


def _csv_lines(manifest: Manifest, rows: list[Record]) -> Iterator[str]:
    """One cell's rows of results.csv, in file order (the cells go in the plan's order)."""
    plan_cells = cast(Summary, {"cells": manifest["plan"]["cells"]})
    return _lines(plan_cells, rows, build_outcomes(manifest, plan_cells, rows),
                  axes(manifest["plan"]["cells"]))


def write_sampled_reports(run_dir: Path, manifest: Manifest, summary: Summary, sampled: list[Record]
                          ) -> list[Path]:
    """report.html and junit.xml from the seeded sample, summary.md from the summary, results.csv from every
    record."""
    outcomes = build_outcomes(manifest, summary, sampled)
    markdown = write_markdown(run_dir, summary)
    note = summary.get("sampled_reports", {}).get("note")  # type: ignore[attr-defined]
    if note:
        with markdown.open("a", encoding="utf-8") as fh:
            fh.write(f"\nNote: {note}.\n")
    return [write_html(run_dir, manifest, summary, sampled, outcomes), markdown,
            write_junit(run_dir, summary, outcomes), run_dir / "results.csv"]
