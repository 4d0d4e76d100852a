"""Streaming: SSE chunks parsed per second by evalharness's client vs a plain aiohttp line reader.

Both read the same canned stream from nginx (a role chunk, content chunks, finish, usage, [DONE]);
evalharness also timestamps every text chunk and assembles the answer, as it does in a run.

    python bench/bench_streaming.py              # 2000 streams of 200 chunks each, concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import canned

BODY = {"model": "bench", "messages": [{"role": "user", "content": "Stream."}], "stream": True}


async def plain(url: str, n: int, concurrency: int) -> float:
    import aiohttp

    chunks = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker(count: int) -> None:
            nonlocal chunks
            for _ in range(count):
                async with session.post(url, json=BODY) as resp:
                    async for line in resp.content:
                        if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
                            json.loads(line[6:])
                            chunks += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        return chunks / (time.perf_counter() - t0)


async def harness(url: str, n: int, concurrency: int) -> float:
    from evalharness.client import ChatClient

    chunks = 0
    async with ChatClient(url.removesuffix("/chat/completions"), max_connections=concurrency) as client:
        async def worker(count: int) -> None:
            nonlocal chunks
            for _ in range(count):
                outcome = await client.complete(BODY)
                assert outcome.ok, outcome.error
                chunks += len(outcome.chunk_times) + 3  # + role, finish and usage chunks, parsed too

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
        return chunks / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="streams")
    parser.add_argument("--chunks", type=int, default=200, help="content chunks per stream")
    parser.add_argument("-c", "--concurrency", type=int, default=16)
    args = parser.parse_args()
    canned.CHUNKS = args.chunks
    import uvloop

    with canned.canned_server() as base:
        url = base + "/stream/v1/chat/completions"
        a = uvloop.run(plain(url, args.n, args.concurrency))
        h = uvloop.run(harness(url, args.n, args.concurrency))
    print(f"{args.n} streams x {args.chunks} chunks, concurrency {args.concurrency}")
    print(f"plain aiohttp line reader: {a:,.0f} chunks/s")
    print(f"evalharness client:        {h:,.0f} chunks/s  ({h / a:.2f}x)")


if __name__ == "__main__":
    main()
