"""The load generator itself: the highest open-loop rate one event loop keeps, against a canned nginx endpoint.

Run by hand (needs nginx: apt-get install nginx):

    python bench/bench_load.py                          # Poisson, 250 … 4000 req/s, 4 s a level
    python bench/bench_load.py --rates 500,1000 -s 2    # a quicker look
    python bench/bench_load.py --stream                 # the canned SSE stream (32 chunks) instead of JSON
    python bench/bench_load.py --rounds 3               # each level's median over 3 runs (a busy machine)
    python bench/bench_load.py --workers 2              # load.workers: the schedule spread over 2 processes

Each level is a whole `evalharness run` level (schedule, requests, records, scoring); the figures are read
from its summary.json: the rate requested, the rate the requests were sent at (achieved_rate_rps), the
completed rate, and the schedule lag (sent - due) percentiles. The endpoint answers at once, so the lag is
the client's own: the event loop, the HTTP client, writing records. The last lines name the highest rate whose
p99 lag stays under 5 ms and under 1 ms. The first line is the machine's own floor: how late a bare asyncio
timer fires (200 sleeps of 20 ms, no requests); a lag tail near it is the machine's, not the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from canned import canned_server

import evalharness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="250,500,1000,1500,2000,3000,4000")
    parser.add_argument("-s", "--seconds", type=float, default=4.0, help="seconds of requests per level")
    parser.add_argument("--arrival", default="poisson", choices=["poisson", "constant", "gamma"])
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every level; each figure is their median")
    parser.add_argument("--workers", type=int, default=1, help="load.workers: processes sending the schedule")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    late = asyncio.run(_timer_lateness())
    print(f"bare event loop: a 20 ms timer fires late by p50 {late[len(late) // 2] * 1e3:.2f} ms, "
          f"p99 {late[int(0.99 * len(late))] * 1e3:.2f} ms, max {late[-1] * 1e3:.2f} ms")
    rounds: list[list[dict[str, float]]] = []
    with canned_server() as url:
        for _ in range(args.rounds):
            rounds.append(_one_run(url, rates, args))
    print(f"{args.arrival} arrivals, {args.seconds:g} s a level after 0.5 s of warm-up, "
          f"{'streamed' if args.stream else 'JSON'} answers, {args.workers} load worker(s), "
          f"median of {args.rounds} run(s)")
    print(f"{'rate':>8} {'sent/s':>9} {'done/s':>9} {'errors':>6} {'lag p50':>9} {'lag p99':>9} {'lag max':>9}")
    held: dict[float, float] = {}
    for i, rate in enumerate(rates):
        row = {k: statistics.median(r[i][k] for r in rounds) for k in rounds[0][i]}
        print(f"{rate:8g} {row['sent']:9.1f} {row['done']:9.1f} {row['errors']:6.0f} {row['p50'] * 1e3:7.2f}ms "
              f"{row['p99'] * 1e3:7.2f}ms {row['max'] * 1e3:7.2f}ms")
        if row["errors"] == 0:
            held[rate] = row["p99"]
    for bound in (0.005, 0.001):
        kept = [r for r, p99 in held.items() if p99 < bound]
        print(f"highest rate with p99 schedule lag < {bound * 1e3:g} ms: "
              + (f"{max(kept):g} req/s" if kept else "none of the rates tried"))


async def _timer_lateness(n: int = 200, every_s: float = 0.02) -> list[float]:
    late = []
    for _ in range(n):
        due = time.perf_counter() + every_s
        await asyncio.sleep(every_s)
        late.append(time.perf_counter() - due)
    return sorted(late)


def _one_run(url: str, rates: list[float], args: argparse.Namespace) -> list[dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "suite.yaml").write_text("name: bench\ncases:\n  - {id: a, prompt: Reply with JSON.}\n")
        run = evalharness.run({
            "name": "bench-load", "suites": ["suite.yaml"],
            "target": {"base_url": url + ("/stream/v1" if args.stream else "/v1"), "model": "bench"},
            "defaults": {"max_tokens": 16}, "run": {"stream": args.stream, "max_retries": 0, "timeout_s": 30},
            "load": {"arrival": args.arrival, "rate": rates, "duration_s": args.seconds, "warmup_s": 0.5,
                     "seed": 1, "max_in_flight": 4096, "workers": args.workers},
        }, base_dir=folder, out=folder / "run")
        summary = json.loads((run.run_dir / "summary.json").read_text())
    out = []
    for cell in sorted(summary["cells"], key=lambda c: float(c["params"]["rate"])):
        m = cell["metrics"]
        lag = m["schedule_lag_s"]
        out.append({"sent": m["achieved_rate_rps"]["value"], "done": m["throughput_rps"]["value"],
                    "errors": float(m["errors"]["value"]), "p50": lag["p50"], "p99": lag["p99"], "max": lag["max"]})
    return out


if __name__ == "__main__":
    main()
