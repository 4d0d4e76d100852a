"""Shard and merge a synthetic run: the merged summary against the unsharded one, and what each costs.

    .venv/bin/python bench/bench_shards.py [--records 100000] [--shards 4] [--source RUN_DIR] [--keep DIR]

It synthesises a run as bench_report.py does (40 cells × 50 cases × repeats, record shapes copied from a real
run), splits its records into N shard run directories exactly as ``run --shard K/N`` would have written them
(the same split, each manifest marked as its shard), then times ``evalharness merge`` of the shards and
``evalharness report`` of the unsharded run in subprocesses (wall time, peak memory) and checks that both
summaries have the same cells, totals, gate verdicts and comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_report import newest_quickstart, synthesise

from evalharness.shards import Layout


def split(run_dir: Path, shards: int) -> list[Path]:
    """Shard directories of ``run_dir``'s records, as ``run --shard K/N`` writes them."""
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    layout = Layout.from_manifest(manifest)
    dirs = [run_dir.parent / f"shard{k}" for k in range(1, shards + 1)]
    handles = []
    for d in dirs:
        d.mkdir(exist_ok=True)
        handles.append((d / "results.jsonl").open("wb"))
    counts = [0] * shards
    with (run_dir / "results.jsonl").open("rb") as fh:
        for raw in fh:
            r = json.loads(raw)
            k = layout.shard_of(r["cell_id"], f"{r['suite']}/{r['case_id']}", r["repeat"], shards)
            handles[k - 1].write(raw)
            counts[k - 1] += 1
    for h in handles:
        h.close()
    for k, d in enumerate(dirs, start=1):
        part = json.loads(json.dumps(manifest))
        part["run_id"] = d.name
        part["shard"] = {"index": k, "count": shards, "requests": counts[k - 1],
                         "plan_requests": manifest["plan"]["requests"]}
        part["plan"]["requests"] = counts[k - 1]
        (d / "manifest.json").write_text(json.dumps(part, indent=2), encoding="utf-8")
    return dirs


def timed(*args: str) -> tuple[float, float]:
    """Wall seconds and peak MB of one evalharness command (each in a fresh subprocess)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "evalharness"), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak, not the largest child's so far
    seconds = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"evalharness {' '.join(args)} failed (exit {code})")
    return seconds, usage.ru_maxrss / 1024


def same(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return [key for key in ("cells", "totals", "gates", "comparisons") if a[key] != b[key]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--source", type=Path, help="a real run to copy record shapes from")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (default: a temp dir)")
    args = parser.parse_args()
    source = args.source or newest_quickstart()
    if source is None:
        print("no source run: pass --source RUN_DIR", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as tmp:
        root = args.keep or Path(tmp)
        whole = root / "whole"
        whole.mkdir(parents=True, exist_ok=True)
        n = synthesise(whole, source, args.records)
        dirs = split(whole, args.shards)
        seconds, peak = timed("report", str(whole))
        print(f"unsharded: {n:,} records, evalharness report {seconds:.2f} s, peak {peak:.0f} MB")
        seconds, peak = timed("merge", *map(str, dirs), "--out", str(root / "merged"))
        print(f"{args.shards} shards: evalharness merge {seconds:.2f} s, peak {peak:.0f} MB")
        a = json.loads((whole / "summary.json").read_text(encoding="utf-8"))
        b = json.loads((root / "merged" / "summary.json").read_text(encoding="utf-8"))
        differ = same(a, b)
        print("summaries: identical cells, totals, gates and comparisons" if not differ
              else f"summaries differ in: {', '.join(differ)}")
        return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
