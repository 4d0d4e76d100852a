"""An OpenAI-compatible chat server whose capacity is known: a fixed number of slots, each holding a request
for a fixed service time, so it completes at most ``slots / service_s`` requests per second. A request that
finds every slot busy waits its turn (first come, first served), as a batching server's queue does.

    python -m tests.load.known_server --slots 4 --service-s 0.05    # prints "listening on PORT"

``POST /v1/chat/completions`` answers after the request's service time: a chat.completion, or with
``"stream": true`` a server-sent event stream (a role chunk, ``TOKENS`` content chunks ``gap_s`` apart at the end
of the service time, a finish chunk, a usage chunk, ``[DONE]``). ``GET /v1/models`` lists the one model.
Plain asyncio streams and HTTP/1.1 keep-alive: nothing beyond the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TOKENS = 4
MODEL = "known-capacity"


def _event(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return _event({"id": "chatcmpl-known", "object": "chat.completion.chunk", "created": 0, "model": MODEL,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


USAGE = {"prompt_tokens": 10, "completion_tokens": TOKENS, "total_tokens": 10 + TOKENS}


class KnownServer:
    """``slots`` requests served at a time, each for ``service_s`` seconds; the rest wait in arrival order."""

    def __init__(self, slots: int, service_s: float, gap_s: float) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.service_s = service_s
        self.gap_s = gap_s

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in header_lines if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                method, path, _ = request_line.split(" ", 2)
                if method == "GET" and path.endswith("/models"):
                    await self._json(writer, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
                elif method == "POST" and path.endswith("/chat/completions"):
                    await self._complete(writer, json.loads(body or b"{}"))
                else:
                    await self._json(writer, {"error": {"message": f"no route {path}"}}, status="404 Not Found")
        finally:
            writer.close()

    async def _json(self, writer: asyncio.StreamWriter, obj: dict[str, Any], status: str = "200 OK") -> None:
        data = json.dumps(obj).encode()
        writer.write(f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(data)}\r\n"
                     f"\r\n".encode() + data)
        await writer.drain()

    async def _complete(self, writer: asyncio.StreamWriter, request: dict[str, Any]) -> None:
        async with self.slots:
            # The service time ends with the last token: the tokens' gaps are part of it.
            await asyncio.sleep(max(0.0, self.service_s - self.gap_s * (TOKENS - 1)))
            if not request.get("stream"):
                await self._json(writer, {"id": "chatcmpl-known", "object": "chat.completion", "created": 0,
                                          "model": MODEL, "usage": USAGE, "choices": [{
                                              "index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": "ok " * TOKENS}}]})
                return
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
            self._send(writer, _chunk({"role": "assistant"}))
            for i in range(TOKENS):
                if i:
                    await writer.drain()
                    await asyncio.sleep(self.gap_s)
                self._send(writer, _chunk({"content": "ok "}))
            self._send(writer, _chunk({}, "stop"))
            self._send(writer, _event({"id": "chatcmpl-known", "object": "chat.completion.chunk", "created": 0,
                                       "model": MODEL, "choices": [], "usage": USAGE}))
            self._send(writer, b"data: [DONE]\n\n")
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    @staticmethod
    def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")


async def serve(slots: int, service_s: float, gap_s: float, port: int) -> None:
    known = KnownServer(slots, service_s, gap_s)
    server = await asyncio.start_server(known.handle, "127.0.0.1", port, backlog=4096)
    print(f"listening on {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def running(slots: int, service_s: float, gap_s: float) -> Iterator[str]:
    """The server in a process of its own while the block runs; yields its base URL (``…/v1``)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.load.known_server", "--slots", str(slots),
                             "--service-s", str(service_s), "--gap-s", str(gap_s)],
                            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        yield f"http://127.0.0.1:{int(line.split()[-1])}/v1"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--service-s", type=float, default=0.05)
    parser.add_argument("--gap-s", type=float, default=0.0, help="between streamed tokens, within the service time")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.slots, args.service_s, args.gap_s, args.port))


if __name__ == "__main__":
    main()
