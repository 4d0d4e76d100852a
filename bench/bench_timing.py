"""Timing fidelity: evalharness's ttft/e2e against a test server whose delays are known.

A server in its own process (raw asyncio protocols on uvloop) answers each streamed request after a fixed delay with a
first chunk, then more chunks at a fixed gap, and notes with the system-wide monotonic clock when it
received the request and when it wrote the first and last chunk. The same clock is what evalharness
reads (time.perf_counter_ns is CLOCK_MONOTONIC on Linux), so measured minus known is the harness's error
(plus loopback transit, a few tens of microseconds).

    python bench/bench_timing.py            # 640 requests at concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

FIRST_DELAY_S = 0.050
CHUNK_GAP_S = 0.005
CHUNKS = 10


def _serve(port: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    """The test server: raw asyncio protocols on uvloop, so that its stamps sit at its socket.

    ``received`` is taken when the request's bytes are read from the socket, ``first`` and ``last`` right
    after the first and last chunk are written to it: what the server spends parsing or scheduling is not
    counted against the client.
    """
    import uvloop

    stamps: dict[str, list[int]] = {}
    tasks: set[asyncio.Task[None]] = set()
    counter = 0

    class Chat(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            received = time.perf_counter_ns()
            self.buffer += data
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            if head.startswith(b"GET /stats"):
                body = json.dumps(stamps).encode()
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"  # type: ignore[attr-defined]
                                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
                return
            task = asyncio.get_running_loop().create_task(self.answer(received))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        async def answer(self, received: int) -> None:
            nonlocal counter
            counter += 1
            rid = f"r{counter}"
            write = self.transport.write  # type: ignore[attr-defined]
            await asyncio.sleep(FIRST_DELAY_S)
            write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            first = 0
            for i in range(CHUNKS):
                if i:
                    await asyncio.sleep(CHUNK_GAP_S)
                chunk = {"id": rid, "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}]}
                data = b"data: " + json.dumps(chunk).encode() + b"\n\n"
                write(b"%x\r\n%s\r\n" % (len(data), data))
                if i == 0:
                    first = time.perf_counter_ns()
            usage = {"id": rid, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": CHUNKS}}
            data = b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n"
            write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
            last = time.perf_counter_ns()
            stamps[rid] = [received, first, last]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await loop.create_server(Chat, "127.0.0.1", port, backlog=1024)
        ready.set()
        await asyncio.Event().wait()

    uvloop.run(main())


async def _plain_aiohttp(port: int, n: int, concurrency: int) -> list[tuple[str, float, float]]:
    """The same requests from a bare aiohttp client: (response id, ttft s, e2e s) — the floor any client has."""
    import aiohttp

    out: list[tuple[str, float, float]] = []
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker(count: int) -> None:
            for _ in range(count):
                t0 = time.perf_counter_ns()
                first = 0
                rid = ""
                async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as resp:
                    async for line in resp.content:
                        if line.startswith(b"data: {") and not first:
                            first = time.perf_counter_ns()
                            rid = json.loads(line[6:])["id"]
                end = time.perf_counter_ns()
                out.append((rid, (first - t0) / 1e9, (end - t0) / 1e9))

        await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=640)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    args = parser.parse_args()
    import httpx

    from evalharness import app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ready = multiprocessing.Event()
    server = multiprocessing.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    ready.wait(10)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "suite.yaml").write_text("name: t\ncases:\n  - id: a\n    prompt: hi\n")
            (folder / "config.yaml").write_text(
                f"name: timing\ntarget: {{base_url: 'http://127.0.0.1:{port}/v1', model: m}}\n"
                f"suites: [suite.yaml]\nrepeats: {args.n}\n"
                f"run: {{concurrency: {args.concurrency}, stream: true, max_retries: 0}}\n")
            with redirect_stdout(io.StringIO()):
                app.run(str(folder / "config.yaml"), out=str(folder / "run"))
            records = [json.loads(x) for x in (folder / "run/results.jsonl").read_text().splitlines()]
        import uvloop

        plain = uvloop.run(_plain_aiohttp(port, args.n, args.concurrency))
        stamps = httpx.get(f"http://127.0.0.1:{port}/stats").json()
    finally:
        server.terminate()
    ttft_err, e2e_err = [], []
    for r in records:
        received, first, last = stamps[r["response_id"]]
        ttft_err.append(r["timings"]["ttft_s"] * 1e3 - (first - received) / 1e6)
        e2e_err.append(r["timings"]["e2e_s"] * 1e3 - (last - received) / 1e6)
        if os.environ.get("TIMING_DEBUG") and ttft_err[-1] > 5:
            print(r["started_at"], r["response_id"], round(ttft_err[-1], 2), r["timings"], (first - received) / 1e6)

    def p99(xs: list[float]) -> float:
        return sorted(xs)[int(0.99 * (len(xs) - 1))]

    plain_ttft = [ttft * 1e3 - (stamps[rid][1] - stamps[rid][0]) / 1e6 for rid, ttft, _ in plain]
    plain_e2e = [e2e * 1e3 - (stamps[rid][2] - stamps[rid][0]) / 1e6 for rid, _, e2e in plain]
    print(f"{len(records)} streamed requests at concurrency {args.concurrency}; server delays: first chunk "
          f"{FIRST_DELAY_S * 1e3:.0f} ms, then {CHUNKS - 1} chunks {CHUNK_GAP_S * 1e3:.0f} ms apart")
    print(f"ttft error (measured - server): median {statistics.median(ttft_err):.3f} ms, p99 {p99(ttft_err):.3f} ms")
    print(f"e2e  error (measured - server): median {statistics.median(e2e_err):.3f} ms, p99 {p99(e2e_err):.3f} ms")
    print(f"a bare aiohttp client on the same server: ttft median {statistics.median(plain_ttft):.3f} ms, "
          f"p99 {p99(plain_ttft):.3f} ms; e2e median {statistics.median(plain_e2e):.3f} ms, "
          f"p99 {p99(plain_e2e):.3f} ms")


if __name__ == "__main__":
    main()
