"""How long scoring takes: determinism of 1,000 samples × 4 KB outputs (100 cases × 10 repeats), synthetic.

The target (issue 3): under one second. Run by hand, not as a timed test (timings on a shared machine vary):

    .venv/bin/python bench/bench_scoring.py

Prints the best of several runs of each: the determinism metrics alone, every metric of the cell, and a
paired comparison of two such cells. Half the repeats copy their case's modal output; the rest diverge at
a random point, so common-prefix search does real work, and every output is a near-JSON text that the
lenient parser has to scan.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from evalharness.regress import judge
from evalharness.scoring.metrics import CaseSpec, case_key, cell_metrics, determinism_metrics
from evalharness.scoring.paired import cell_units
from evalharness.suites import Expect

CASES, REPEATS, SIZE = 100, 10, 4096
ROUNDS = 5


def synthetic_records(seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for case in range(CASES):
        modal = '{"answer": "' + "".join(rng.choice("abcdefgh {}[],:") for _ in range(SIZE - 14)) + '"}'
        for repeat in range(REPEATS):
            text = modal
            if rng.random() < 0.5:
                cut = rng.randrange(SIZE)
                text = (modal[:cut] + "".join(rng.choice("xyz") for _ in range(SIZE)))[:SIZE]
            records.append({
                "item_id": f"c/s/{case}/{repeat}", "cell_id": "c", "suite": "s", "case_id": f"case{case}",
                "repeat": repeat, "params": {}, "ok": True, "error_kind": None, "content": text,
                "usage": {"prompt_tokens": 50, "completion_tokens": 1024}, "cost": 0.001, "attempts": [{}],
                "timings": {"queue_s": 0.0, "ttft_s": 0.05, "ttfc_s": 0.05, "e2e_s": 1 + rng.random(),
                            "chunk_times": [0.05 + 0.01 * i for i in range(64)]}})
    return records


def best_of(label: str, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    print(f"{label:<58} best {min(times) * 1000:7.1f} ms   median {statistics.median(times) * 1000:7.1f} ms")
    return min(times)


def main() -> None:
    records = synthetic_records(1)
    other = synthetic_records(2)
    cases = {f"s/case{i}": CaseSpec(expect=Expect(json_valid=True, contains="answer")) for i in range(CASES)}
    outputs: dict[str, list[str]] = {}
    for r in sorted(records, key=lambda r: r["repeat"]):
        outputs.setdefault(case_key(r), []).append(r["content"])
    print(f"{len(records)} samples × {SIZE} B outputs ({CASES} cases × {REPEATS} repeats), best of {ROUNDS}:")
    determinism = best_of("determinism metrics (exact match, modal, divergence)",
                          lambda: determinism_metrics(outputs, {}))
    best_of("every metric of the cell (JSON, expect, latency bootstrap)",
            lambda: cell_metrics(records, cases, stream=True, currency="X"))
    best_of("paired comparison of two such cells (pass_rate, e2e_s.p50)",
            lambda: [judge(m, cell_units(records, cases).get(m.partition(".")[0]),
                           cell_units(other, cases).get(m.partition(".")[0])) for m in ("pass_rate", "e2e_s.p50")])
    print(f"determinism scoring: {determinism:.3f} s ({'under' if determinism < 1 else 'OVER'} the 1 s target)")


if __name__ == "__main__":
    main()
