"""Scale benchmark of ``evalharness history``: 1,000 stored runs of a 40-cell grid.

    .venv/bin/python bench/bench_history.py [--runs 1000] [--cases 4] [--repeats 3] [--keep DIR [--reuse]]

Writes a ``reports/<name>/`` folder of complete runs (manifest, results.jsonl, summary.json as a run writes
them; 40 cells × cases × repeats records each, a few ms apart): most runs answer every case right, one run in
the middle answers every case wrong (a regression there, and an improvement in the run after).
Two distinct runs are scored and then copied with their own run id and start time, so that writing a thousand
runs takes seconds. Then it runs ``evalharness history`` twice in a subprocess: the first build (every pair of
consecutive runs judged from its records) and a rebuild (pair verdicts from the cache, summaries only), and
prints the wall and CPU time of each, the page's size and which runs were marked.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evalharness.plan import make_cells
from evalharness.store import read_records, write_json
from evalharness.summary import build_summary

GRID: dict[str, list[Any]] = {"temperature": [0, 0.3, 0.7, 1.0, 1.3], "top_p": [0.8, 0.95], "seed": [None, 42],
                              "response_format": [None, {"type": "json_object"}]}  # 40 cells
NAME = "bench-history"


def write_run(run_dir: Path, *, cases: int, repeats: int, broken: bool) -> None:
    """One scored run; ``broken``: every case answers wrong in every cell."""
    run_dir.mkdir(parents=True)
    cells = make_cells(GRID)
    specs = {f"s/c{i}": {"expect": {"contains": "ok"}, "schema": None, "extract": None} for i in range(cases)}
    manifest = {
        "run_id": run_dir.name, "harness_version": "bench", "started_at": "2026-12-01T00:00:00+00:00",
        "config_path": "config.yaml", "config_dir": ".",
        "config": {"name": NAME, "run": {"stream": True}, "pricing": {"currency": "CNY", "input_per_1k": 0.0,
                                                                          "output_per_1k": 0.0},
                   "grid": GRID, "repeats": repeats, "gates": [{"metric": "pass_rate", "where": {}, "min": 0.9}]},
        "target": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "bench"},
        "plan": {"requests": len(cells) * cases * repeats, "repeats": repeats, "cases": cases,
                 "cells": [{"cell_id": c.cell_id, "label": c.label, "params": c.params} for c in cells],
                 "item_ids_digest": "bench"},
        "cases": specs,
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with (run_dir / "results.jsonl").open("w", encoding="utf-8") as fh:
        for cell in cells:
            for i in range(cases):
                for repeat in range(repeats):
                    text = "no" if broken else "ok"
                    e2e = 0.2 + 0.001 * ((i * 7 + repeat * 13) % 17)
                    fh.write(json.dumps({
                        "item_id": f"{cell.cell_id}/s/c{i}/{repeat}", "cell_id": cell.cell_id, "suite": "s",
                        "case_id": f"c{i}", "repeat": repeat, "params": {k: v for k, v in cell.params.items()
                                                                         if v is not None},
                        "started_at": "2026-12-01T00:00:00.000+00:00", "ok": True, "http_status": 200,
                        "error_kind": None, "error": None, "content": text, "reasoning": None, "tool_calls": None,
                        "finish_reason": "stop", "usage": None, "cost": None, "logprobs": None,
                        "timings": {"queue_s": 1e-5, "ttft_s": 0.05, "ttfc_s": 0.05, "e2e_s": e2e,
                                    "chunk_times": [0.05, e2e]},
                        "attempts": [{"status": 200}]}) + "\n")
    records = read_records(run_dir, compact=True)
    write_json(run_dir / "summary.json", build_summary(manifest, records, complete=True))  # type: ignore[arg-type]


def synthesise(folder: Path, runs: int, cases: int, repeats: int) -> int:
    """``runs`` runs in ``folder``; returns the index of the broken one."""
    templates = folder.parent / "templates"
    write_run(templates / "good", cases=cases, repeats=repeats, broken=False)
    write_run(templates / "broken", cases=cases, repeats=repeats, broken=True)
    broken = runs // 2
    for k in range(runs):
        run_id = f"20261201-{k // 3600:02d}{k // 60 % 60:02d}{k % 60:02d}-{k:04x}"
        started = f"2026-12-01T{k // 3600:02d}:{k // 60 % 60:02d}:{k % 60:02d}+00:00"
        target = folder / run_id
        shutil.copytree(templates / ("broken" if k == broken else "good"), target)
        for name in ("manifest.json", "summary.json"):
            data = json.loads((target / name).read_text(encoding="utf-8"))
            data.update(run_id=run_id, started_at=started)
            (target / name).write_text(json.dumps(data), encoding="utf-8")
    return broken


def timed(args: list[str]) -> tuple[float, float, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "evalharness", *args], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the runs here and keep them")
    parser.add_argument("--reuse", action="store_true", help="use the runs already in --keep")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-history-"))
    folder = root / "reports" / NAME
    try:
        if not args.reuse:
            shutil.rmtree(root, ignore_errors=True)
            folder.mkdir(parents=True)
            start = time.perf_counter()
            broken = synthesise(folder, args.runs, args.cases, args.repeats)
            print(f"wrote {args.runs} runs × {len(make_cells(GRID))} cells × {args.cases} cases × {args.repeats} "
                  f"repeats in {time.perf_counter() - start:.1f} s; broken run: #{broken + 1}")
        (folder / "history-cache.json").unlink(missing_ok=True)
        for what in ("first build", "rebuild"):
            wall, cpu, out = timed(["history", str(folder)])
            print(f"{what}: {wall:.2f} s wall, {cpu:.2f} s CPU")
        html = folder / "history.html"
        print(f"history.html {html.stat().st_size / 1e6:.1f} MB, history.json "
              f"{(folder / 'history.json').stat().st_size / 1e6:.1f} MB")
        print(out.splitlines()[0])
        marked = [r["run_id"] for r in json.loads((folder / "history.json").read_text())["runs"] if r["regressions"]]
        print("runs with a regression:", ", ".join(marked))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
