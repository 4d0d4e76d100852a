"""Scale benchmark of the report path: score and render a synthetic 100,000-record run.

    .venv/bin/python bench/bench_report.py [--records 100000] [--source RUN_DIR] [--keep DIR [--reuse]] [--phases]

It writes a run directory (manifest.json + results.jsonl) whose records copy their shapes — answers,
chunk timings, finish reasons — from a real run (the newest ``reports/quickstart/*`` unless ``--source``
names one), spread over a 40-cell grid × 50 cases × repeats, with 1% failed requests and usage as a
hosted API reports it. Then it runs ``evalharness report`` on it in a subprocess and prints the wall time,
the CPU time of the report and its scoring workers (resource.getrusage), the peak of their summed resident
memory (sampled from /proc: ``TreeMemory``) and the size of every report file. On a shared machine the
CPU time varies less than the wall time. ``--phases`` also times reading, scoring and rendering in this
process, to see where the time goes; ``--keep DIR --reuse`` reports on a run
already synthesised in DIR instead of writing a new one.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from evalharness.plan import make_cells

ROOT = Path(__file__).resolve().parent.parent
GRID: dict[str, list[Any]] = {"temperature": [0, 0.3, 0.7, 1.0, 1.3], "top_p": [0.8, 0.95], "seed": [None, 42],
                              "response_format": [None, {"type": "json_object"}]}
CASES = 50
CURRENCY, INPUT_PER_1K, OUTPUT_PER_1K = "CNY", 0.0005, 0.00175
ERROR_SHARE = 0.01
START = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def newest_quickstart() -> Path | None:
    runs = sorted(p for p in (ROOT / "reports" / "quickstart").glob("*") if (p / "results.jsonl").is_file())
    return runs[-1] if runs else None


def load_source(run_dir: Path) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """The source run's manifest and its successful records grouped by case key."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    by_case: dict[str, list[dict[str, Any]]] = {}
    with (run_dir / "results.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            record = json.loads(line)
            if record["ok"]:
                by_case.setdefault(f"{record['suite']}/{record['case_id']}", []).append(record)
    return manifest, by_case


def synthesise(out: Path, source: Path, n_records: int, seed: int = 7) -> int:
    """Write manifest.json and results.jsonl for ``n_records`` records (rounded up to whole repeats)."""
    manifest, by_case = load_source(source)
    rng = random.Random(seed)
    cells = make_cells(GRID)
    base_keys = [k for k in manifest["cases"] if by_case.get(k)]
    cases = {}
    case_source = {}
    for i in range(CASES):
        base = base_keys[i % len(base_keys)]
        suite, case_id = base.split("/", 1)
        key = f"{suite}/{case_id}-{i:02d}"
        cases[key] = manifest["cases"][base]
        case_source[key] = base
    repeats = -(-n_records // (len(cells) * CASES))
    new = copy.deepcopy(manifest)
    new["run_id"] = out.name
    new["config"]["grid"] = GRID
    new["config"]["repeats"] = repeats
    new["config"]["pricing"] = {"currency": CURRENCY, "input_per_1k": INPUT_PER_1K, "output_per_1k": OUTPUT_PER_1K}
    new["cases"] = cases
    new["plan"] = {"requests": len(cells) * CASES * repeats, "repeats": repeats, "cases": CASES,
                   "cells": [{"cell_id": c.cell_id, "label": c.label, "params": c.params} for c in cells],
                   "item_ids_digest": "synthetic"}
    (out / "manifest.json").write_text(json.dumps(new, indent=2), encoding="utf-8")
    written = 0
    with (out / "results.jsonl").open("w", encoding="utf-8") as fh:
        for repeat in range(repeats):
            for cell in cells:
                temperature = float(cell.params["temperature"])
                for key, base in case_source.items():
                    pool = by_case[base]
                    # Low temperature mostly repeats one answer per case; higher ones draw from all of them.
                    if temperature == 0 and rng.random() < 0.9:
                        template = pool[zlib.crc32(key.encode()) % len(pool)]
                    else:
                        template = rng.choice(pool)
                    record = _record(template, cell.cell_id, cell.params, key, repeat, rng)
                    # Starts 20 ms apart, in the runner's format: a run of about half an hour.
                    started = START + timedelta(seconds=0.02 * written)
                    record["started_at"] = started.isoformat(timespec="milliseconds")
                    fh.write(json.dumps(record, separators=(",", ":")) + "\n")
                    written += 1
    return written


def _record(template: dict[str, Any], cell_id: str, params: dict[str, Any], key: str, repeat: int,
            rng: random.Random) -> dict[str, Any]:
    suite, case_id = key.split("/", 1)
    record = dict(template)
    scale = rng.uniform(0.7, 1.6)
    timings = dict(template["timings"])
    for name in ("ttft_s", "ttfc_s", "e2e_s"):
        if timings.get(name) is not None:
            timings[name] = timings[name] * scale
    timings["chunk_times"] = [round(t * scale, 6) for t in timings.get("chunk_times") or []]
    completion = max(1, len(timings["chunk_times"]))
    prompt = rng.randint(30, 60)
    record.update(item_id=f"{cell_id}/{key}/{repeat}", cell_id=cell_id, suite=suite, case_id=case_id,
                  repeat=repeat, params={k: v for k, v in params.items() if v is not None},
                  timings=timings, response_id=f"chatcmpl-{rng.getrandbits(64):016x}",
                  usage={"prompt_tokens": prompt, "completion_tokens": completion,
                         "total_tokens": prompt + completion},
                  cost=prompt / 1000 * INPUT_PER_1K + completion / 1000 * OUTPUT_PER_1K)
    if rng.random() < ERROR_SHARE:
        record.update(ok=False, http_status=None, error_kind="timeout", error="read timeout after 60.0 s",
                      content=None, finish_reason=None, usage=None, cost=None,
                      timings={"queue_s": timings.get("queue_s"), "e2e_s": 60.0, "chunk_times": []})
    return record


class TreeMemory:
    """The peak of the summed resident memory of a process and its descendants (a large run is scored by
    forked workers), sampled every ``interval`` s from /proc. Forked processes share the pages they have not
    written, and each one's RSS counts them, so the sum overstates what the tree holds; a peak shorter than
    the interval can be missed. Linux only (elsewhere: 0)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval = pid, interval
        self.peak_mb = 0.0
        self.processes = 0
        self._seen: set[int] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._done.wait(self.interval):
            pids = self._tree()
            self._seen.update(pids)
            self.processes = len(self._seen)
            self.peak_mb = max(self.peak_mb, sum(_rss_kb(p) for p in pids) / 1024)

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(entry.name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def phases(run_dir: Path) -> None:
    """Time each step of the report path in this process."""
    from evalharness.report import write_reports
    from evalharness.store import read_json, read_records
    from evalharness.summary import build_summary

    t0 = time.perf_counter()
    manifest = read_json(run_dir / "manifest.json")
    records = read_records(run_dir, compact=True)  # as `evalharness report` reads them
    gc.freeze()  # as app.finish does while it scores and reports
    t1 = time.perf_counter()
    summary = build_summary(manifest, records, complete=True)
    t2 = time.perf_counter()
    write_reports(run_dir, manifest, summary, records)
    t3 = time.perf_counter()
    gc.unfreeze()
    print(f"phases: read {t1 - t0:.2f} s, score {t2 - t1:.2f} s, reports {t3 - t2:.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--source", type=Path, help="a real run to copy record shapes from")
    parser.add_argument("--keep", type=Path, help="write the run here and keep it (default: a temp dir)")
    parser.add_argument("--reuse", action="store_true", help="with --keep: report on the run already there")
    parser.add_argument("--phases", action="store_true", help="also time read / score / render in-process")
    args = parser.parse_args()
    source = args.source or newest_quickstart()
    if source is None:
        print("no source run: run `evalharness run configs/quickstart.yaml` first, or pass --source RUN_DIR",
              file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        run_dir = args.keep or Path(tmp) / "bench-run"
        run_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if args.reuse and args.keep and (run_dir / "results.jsonl").is_file():
            size_mb = (run_dir / "results.jsonl").stat().st_size / 1e6
            print(f"reusing {run_dir} ({size_mb:.0f} MB results.jsonl)")
        else:
            n = synthesise(run_dir, source, args.records)
            size_mb = (run_dir / "results.jsonl").stat().st_size / 1e6
            print(f"synthesised {n:,} records ({size_mb:.0f} MB results.jsonl) from {source} "
                  f"in {time.perf_counter() - t0:.1f} s")
        cmd = [str(Path(sys.executable).parent / "evalharness"), "report", str(run_dir)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        tree = TreeMemory(proc.pid)
        out, err = proc.communicate()
        seconds = time.perf_counter() - t0
        tree.stop()
        # ru_maxrss is in KiB on Linux; RUSAGE_CHILDREN holds the largest process waited for (the report's or
        # one of its scoring workers'), and the CPU time of all of them.
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode not in (0, 1):
            print(out[-2000:], err[-4000:], sep="\n", file=sys.stderr)
            return proc.returncode
        print(f"evalharness report: {seconds:.2f} s (CPU {usage.ru_utime + usage.ru_stime:.2f} s), "
              f"peak memory {tree.peak_mb:.0f} MB in {tree.processes} process(es) "
              f"(largest one {usage.ru_maxrss / 1024:.0f} MB) (exit {proc.returncode})")
        for name in ("report.html", "summary.md", "junit.xml", "results.csv", "summary.json"):
            path = run_dir / name
            if path.exists():
                print(f"  {name}: {path.stat().st_size / 1e6:.2f} MB")
        if args.phases:
            phases(run_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
