"""Throughput: `evalharness run` against a canned nginx endpoint vs plain aiohttp+uvloop and plain httpx loops.

Run by hand (needs nginx, and the bench extra: pip install -e '.[bench]'):

    python bench/bench_throughput.py                 # N=20000 at concurrency 1, 16, 64, 256
    python bench/bench_throughput.py -n 5000 -c 64   # a quicker look
    python bench/bench_throughput.py -c 64 --rounds 5   # medians of 5 alternating rounds (a noisy machine)
    python bench/bench_throughput.py --rounds 3 --plot bench/throughput.png   # as in RESULTS.md

Each line prints requests/s for the same N and concurrency. The evalharness figure is the whole
`evalharness run` (plan, requests, records, scoring, summary and report), plus the request phase alone.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from canned import canned_server

BODY = {"model": "bench", "messages": [{"role": "user", "content": "Reply with JSON."}], "max_tokens": 16}


async def _pool(n: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> None:
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def plain_aiohttp(url: str, n: int, concurrency: int, stream: bool) -> float:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> None:
            async with session.post(url + ("/stream" if stream else "") + "/v1/chat/completions", json=BODY) as resp:
                if not stream:
                    json.loads(await resp.read())
                    return
                async for line in resp.content:  # the same SSE events, each parsed
                    if line.startswith(b"data: {"):
                        json.loads(line[6:])

        t0 = time.perf_counter()
        await _pool(n, concurrency, one)
        return n / (time.perf_counter() - t0)


async def plain_httpx(url: str, n: int, concurrency: int, stream: bool) -> float:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        async def one() -> None:
            if not stream:
                resp = await client.post(url + "/v1/chat/completions", json=BODY)
                resp.json()
                return
            async with client.stream("POST", url + "/stream/v1/chat/completions", json=BODY) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data: {"):
                        json.loads(line[6:])

        t0 = time.perf_counter()
        await _pool(n, concurrency, one)
        return n / (time.perf_counter() - t0)


def _loop_run(coro_fn: Callable[..., Awaitable[float]], *args: object) -> float:
    try:
        import uvloop

        return uvloop.run(coro_fn(*args))  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.run(coro_fn(*args))  # type: ignore[arg-type]


def evalharness_run(url: str, n: int, concurrency: int, stream: bool) -> tuple[float, float]:
    """Whole-run requests/s and request-phase requests/s of a real `evalharness run`."""
    from evalharness import app

    cases = 20
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "suite.yaml").write_text(
            "name: bench\ncases:\n" + "".join(
                f"  - id: c{i}\n    prompt: Reply with JSON number {i}.\n    expect: {{json_valid: true}}\n"
                for i in range(cases)))
        base = url + ("/stream/v1" if stream else "/v1")
        (folder / "config.yaml").write_text(
            f"name: bench\ntarget: {{base_url: '{base}', model: bench}}\nsuites: [suite.yaml]\n"
            f"defaults: {{max_tokens: 16}}\nrepeats: {max(1, n // cases)}\n"
            f"run: {{concurrency: {concurrency}, stream: {str(stream).lower()}, max_retries: 0}}\n")
        t0 = time.perf_counter()
        with redirect_stdout(io.StringIO()):
            app.run(str(folder / "config.yaml"), out=str(folder / "run"))
        total = time.perf_counter() - t0
        records = [json.loads(line) for line in (folder / "run/results.jsonl").read_text().splitlines()]
        assert len(records) == n and all(r["ok"] for r in records), "every request must succeed"
        starts = sorted(r["started_at"] for r in records)
        from datetime import datetime

        first = datetime.fromisoformat(starts[0])
        last_end = max(datetime.fromisoformat(r["started_at"]).timestamp() + (r["timings"]["e2e_s"] or 0)
                       for r in records)
        phase = last_end - first.timestamp()
        return n / total, n / phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("-c", "--concurrency", type=int, action="append")
    parser.add_argument("--stream", action="store_true",
                        help="every client reads the canned SSE stream (32 content chunks), parsing each event")
    parser.add_argument("--rounds", type=int, default=1,
                        help="alternate aiohttp and evalharness this many times and print the medians "
                             "(the plain httpx loop runs once)")
    parser.add_argument("--plot", metavar="PNG", help="also draw the figures as a chart (matplotlib)")
    args = parser.parse_args()
    levels = args.concurrency or [1, 16, 64, 256]
    rows: list[tuple[int, float, float, float]] = []
    with canned_server() as url:
        print(f"N={args.n}, canned nginx at {url}, stream={args.stream}, rounds={args.rounds} (medians)")
        print(f"{'concurrency':>11}  {'aiohttp+uvloop':>14}  {'httpx':>8}  {'evalharness run':>15}  "
              f"{'(requests only)':>15}  {'ratio':>6}")
        for c in levels:
            h = _loop_run(plain_httpx, url, args.n, c, args.stream)
            rounds = []
            for _ in range(args.rounds):
                a = _loop_run(plain_aiohttp, url, args.n, c, args.stream)
                rounds.append((a, *evalharness_run(url, args.n, c, args.stream)))
            a, whole, phase = (statistics.median(r[i] for r in rounds) for i in range(3))
            ratio = statistics.median(r[1] / r[0] for r in rounds)
            print(f"{c:>11}  {a:>12.0f}/s  {h:>6.0f}/s  {whole:>13.0f}/s  {phase:>13.0f}/s  {ratio:>6.2f}",
                  flush=True)
            rows.append((c, a, h, whole))
    if args.plot:
        plot(rows, args.plot, f"N = {args.n:,}{', streamed' if args.stream else ''}, median of {args.rounds}")
        print(f"chart: {args.plot}")


def plot(rows: list[tuple[int, float, float, float]], path: str, subtitle: str) -> None:
    """Requests/s by concurrency for the three clients, as a PNG for RESULTS.md (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    for column, label, style in ((1, "aiohttp + uvloop loop", "s--"), (3, "evalharness run (whole command)", "o-"),
                                 (2, "plain httpx loop", "^:")):
        ax.plot(levels, [r[column] for r in rows], style, label=label)
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.set_xlabel("concurrency")
    ax.set_ylabel("requests / s")
    ax.set_ylim(bottom=0)
    ax.set_title(f"Throughput against a canned nginx endpoint ({subtitle})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
