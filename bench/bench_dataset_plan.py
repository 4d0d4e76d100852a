"""How long a 100,000-row dataset suite takes to plan: load and validate the config, read and render every row,
plan the work items and build the manifest (what `evalharness run --dry-run` does before it prints).

The target (issue 18): seconds. Run by hand, not as a timed test (timings on a shared machine vary):

    .venv/bin/python bench/bench_dataset_plan.py [--rows 100000] [--format jsonl|csv|parquet] [--sample N]

Writes a synthetic data file of support tickets (a question, a deadline, a category each) to a temporary
folder, with a suite whose case template renders an id, a prompt, a judge rubric and a tag from every row,
and prints the best of a few rounds of each stage (wall clock), and the process's CPU time for the whole.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from evalharness.config import load_config
from evalharness.flow import build_manifest
from evalharness.plan import make_plan

SUITE = """\
name: tickets
dataset: {{path: tickets.{ext}}}
case:
  id: "{{{{ row.ticket_id }}}}"
  prompt: "Answer the customer: {{{{ row.question }}}}"
  expect: {{judge: "The answer gives the refund deadline of {{{{ row.deadline }}}}."}}
  tags: ["{{{{ row.category }}}}"]
{sample}"""
CONFIG = """\
name: tickets
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 64}
judges: {default: {target: target, repeats: 3}}
"""


def write_data(folder: Path, rows: int, fmt: str) -> None:
    data = [{"ticket_id": f"t{i:06d}", "question": f"My order {i} arrived broken, can I get a refund?",
             "deadline": f"{14 + i % 30} days", "category": ("orders", "billing", "shipping")[i % 3]}
            for i in range(rows)]
    path = folder / f"tickets.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    elif fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(data[0]))
            writer.writeheader()
            writer.writerows(data)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(data), path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("jsonl", "csv", "parquet"), default="jsonl")
    parser.add_argument("--sample", type=int, default=None, help="sample: {n: N, seed: 1}")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_data(folder, args.rows, args.format)
        sample = f"sample: {{n: {args.sample}, seed: 1}}\n" if args.sample else ""
        (folder / "suite.yaml").write_text(SUITE.format(ext=args.format, sample=sample), encoding="utf-8")
        (folder / "config.yaml").write_text(CONFIG, encoding="utf-8")
        times: dict[str, list[float]] = {"load + validate (rows read and rendered)": [], "plan": [],
                                         "manifest": []}
        cases = items = 0
        cpu: list[float] = []
        for _ in range(args.rounds):
            c0 = time.process_time()
            t0 = time.perf_counter()
            loaded = load_config(folder / "config.yaml")
            t1 = time.perf_counter()
            plan = make_plan(loaded)
            t2 = time.perf_counter()
            build_manifest(loaded, plan, "bench", {"kind": "local", "base_url": "http://127.0.0.1:1/v1",
                                                   "model": "m"}, {})
            t3 = time.perf_counter()
            cpu.append(time.process_time() - c0)
            times["load + validate (rows read and rendered)"].append(t1 - t0)
            times["plan"].append(t2 - t1)
            times["manifest"].append(t3 - t2)
            cases, items = plan.cases, len(plan.items)
    print(f"{args.rows:,} {args.format} rows -> {cases:,} cases, {items:,} work items "
          f"(best of {args.rounds}; median in brackets), Python {sys.version.split()[0]}")
    for stage, values in times.items():
        print(f"  {stage:<42} {min(values):6.2f} s  ({statistics.median(values):.2f} s)")
    total = [sum(v) for v in zip(*times.values(), strict=True)]
    print(f"  {'total':<42} {min(total):6.2f} s  ({statistics.median(total):.2f} s)")
    # On a shared machine the wall clock waits for other processes; the CPU time is this one's own work.
    print(f"  {'total CPU time of this process':<42} {min(cpu):6.2f} s  ({statistics.median(cpu):.2f} s)")


if __name__ == "__main__":
    main()
