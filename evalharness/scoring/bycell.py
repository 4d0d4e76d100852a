"""Scoring a large run cell by cell, so its records are never all held at once.

Above ``STREAM_ABOVE`` records, ``finish`` (the end of ``run``, ``report`` and ``merge``) reads results.jsonl once
to find where each cell's records are (8 bytes a record), then loads one cell at a time: the cell's metrics,
check tallies, per-case counts (for per-case gates) and comparison units are computed from its records by the
same functions as for a small run — so every figure of summary.json is exact, the same as scoring the run
whole — and only those aggregates are kept. What stays grows with the run only through the comparison units
(one score per metric per case and repeat, about 0.8 KB a record, which pairing cells by repeat needs); the
records themselves are held one cell at a time.

The reports that show single records — report.html's drill-down and charts, junit.xml — are built from a
seeded sample of each case in each cell (``SAMPLE_PER_CASE`` repeats, chosen by a hash of the item id, so the
same records every time); summary.json (``sampled_reports``), summary.md and report.html say so. summary.md
is built from the summary alone, results.csv from every record, cell by cell.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import math
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, cast

import orjson

from evalharness.baselines import Baselines
from evalharness.crosstarget import target_counts
from evalharness.load.metrics import completion_tokens
from evalharness.regress import Population
from evalharness.report.html import write_html
from evalharness.report.junit import write_junit
from evalharness.report.markdown import write_markdown
from evalharness.report.outcomes import build_outcomes
from evalharness.report.results_csv import _lines, columns
from evalharness.runs import RunData
from evalharness.scoring.metrics import CaseSpec, case_counts
from evalharness.scoring.paired import cell_units
from evalharness.store import RESULTS, compact_record
from evalharness.summary import assemble, cell_summary, run_totals
from evalharness.types import CellSummary, Manifest, Record, Summary, Totals
from evalharness.usage import COUNTED, MIXED, SERVER, usage_check

#: Runs with more records than this are scored cell by cell (smaller ones whole, in memory).
STREAM_ABOVE = 200_000
#: Records of each case in each cell that the per-record reports of a large run show.
SAMPLE_PER_CASE = 3
SAMPLE_SEED = b"evalharness-sample-20261202"

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
        """One cell's records, compact (``store.compact_record``), in file order."""
        out: list[Record] = []
        shared: dict[Any, Any] = {}
        with self.path.open("rb") as fh:
            for offset in self.offsets.get(cell_id, ()):
                fh.seek(offset)
                out.append(cast(Record, compact_record(orjson.loads(fh.readline()), shared)))
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
    """Complete lines of results.jsonl, without parsing them."""
    path = run_dir / RESULTS
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(1 for raw in fh if raw.endswith(b"\n"))


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


def score_by_cell(run_dir: Path, manifest: Manifest, index: CellIndex, *, complete: bool, stop_reason: str | None,
                  gates_enabled: bool, baselines: Baselines | None, population: Population
                  ) -> tuple[Summary, list[Record]]:
    """summary.json of a large run, one cell at a time, and the seeded sample of its records; results.csv is
    written on the way."""
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
    # results.csv is written as each cell is scored: its rows need only the plan's cells and the checks.
    csv_out, lines = _csv(run_dir, manifest)
    for cell in manifest["plan"]["cells"]:
        every = index.cell(cell["cell_id"])
        lines(every)
        window.add(every)
        by_target = target_counts(every, manifest["config"])
        requests.update(by_target[0])
        errors.update(by_target[1])
        totals = _add_totals(totals, run_totals(manifest, every))
        costs.extend(r.get("cost") or 0.0 for r in every)  # 8 bytes a record: summed exactly at the end
        savings.extend(r.get("cached_saving") or 0.0 for r in every)
        checked += [r for r in every if r.get("usage_check")]
        # A load level's warm-up requests are stored, and left out of its figures, gates and comparisons.
        rows = [r for r in every if not r.get("warmup")]
        del every
        cells.append(cell_summary(manifest, cell, rows, cases))
        counts[cell["cell_id"]] = case_counts(rows, cases)
        run._units[cell["cell_id"]] = cell_units(rows, cases)
        seen = {(r["suite"], r["case_id"]) for r in rows}
        pairs += [cast(Record, {"suite": s, "case_id": c}) for s, c in sorted(seen)]
        sampled += _sample(rows)
    csv_out.close()
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


def _csv(run_dir: Path, manifest: Manifest) -> tuple[IO[str], Callable[[list[Record]], None]]:
    """results.csv of every record, opened with its header, and what writes one cell's rows (each cell in file
    order, the cells in the plan's)."""
    plan_cells = cast(Summary, {"cells": manifest["plan"]["cells"]})
    axes = list(dict.fromkeys(a for c in manifest["plan"]["cells"] for a in c["params"]))
    fh = (run_dir / "results.csv").open("w", encoding="utf-8", errors="replace", newline="")
    csv.writer(fh).writerow(columns(axes))

    def lines(rows: list[Record]) -> None:
        fh.writelines(_lines(plan_cells, rows, build_outcomes(manifest, plan_cells, rows), axes))

    return fh, lines


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
