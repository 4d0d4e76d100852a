"""The HTTP/1.1 transport against a real loopback server that answers with scripted raw bytes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from evalharness.client import ChatClient
from evalharness.http1 import Http1Transport
from evalharness.transport import is_timeout, never_connected, received_ns, run_async
from tests.tls import self_signed, server_context

# A script answers one request: it gets the raw request head and body and the writer.
Script = Callable[[bytes, bytes, asyncio.StreamWriter], Awaitable[bool]]
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class Server:
    """Loopback server: per connection, reads requests and lets the script answer; counts connections."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                if not await self.script(head, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def answer(raw: bytes, keep: bool = True) -> Script:
    async def script(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(raw)
        await writer.drain()
        return keep
    return script


async def post(transport: httpx.AsyncBaseTransport, url: str, content: bytes = b'{"a": 1}',
               timeout: dict[str, float | None] | None = None) -> tuple[httpx.Response, bytes]:
    request = httpx.Request("POST", url, content=content, headers={"Content-Type": "application/json"},
                            extensions={"timeout": timeout or {"connect": 5, "read": 5, "write": 5, "pool": 5}})
    response = await transport.handle_async_request(request)
    try:
        return response, await response.aread()
    finally:
        await response.aclose()


def run(coro: Awaitable[Any]) -> Any:
    async def main() -> Any:
        return await coro
    return asyncio.run(main())


def test_keep_alive_reuses_one_connection_and_sends_the_request_exactly() -> None:
    async def go() -> None:
        async with Server(answer(OK)) as server:
            transport = Http1Transport(max_connections=4)
            for _ in range(5):
                response, body = await post(transport, server.url)
                assert response.status_code == 200 and body == b"{}"
                assert response.headers["content-type"] == "application/json"
            await transport.aclose()
            assert server.connections == 1
            head, body = server.requests[0]
            assert head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
            assert b"\r\nhost: 127.0.0.1:" in head.lower()
            assert body == b'{"a": 1}'
    run(go())


def test_chunked_body_is_reassembled_and_connection_kept() -> None:
    raw = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    async def go() -> None:
        async with Server(answer(raw)) as server:
            transport = Http1Transport()
            for _ in range(3):
                _, body = await post(transport, server.url)
                assert body == b"hello world"
            await transport.aclose()
            assert server.connections == 1
    run(go())


def test_body_delimited_by_close_is_complete() -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nall of it"
    async def go() -> None:
        async with Server(answer(raw, keep=False)) as server:
            transport = Http1Transport()
            _, body = await post(transport, server.url)
            assert body == b"all of it"
            _, body = await post(transport, server.url)  # a new connection, as the server closed the old one
            assert body == b"all of it"
            await transport.aclose()
            assert server.connections == 2
    run(go())


def test_concurrent_requests_open_at_most_max_connections() -> None:
    async def slow(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.02)
        writer.write(OK)
        return True
    async def go() -> None:
        async with Server(slow) as server:
            transport = Http1Transport(max_connections=3)
            results = await asyncio.gather(*(post(transport, server.url) for _ in range(12)))
            await transport.aclose()
            assert [body for _, body in results] == [b"{}"] * 12
            assert server.connections == 3
    run(go())


def silent_for(seconds: float) -> Script:
    """Answer nothing for ``seconds``, then hang up."""
    async def script(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(seconds)
        return False
    return script


def test_waiting_for_a_connection_past_the_pool_timeout() -> None:
    async def go() -> None:
        async with Server(silent_for(1)) as server:
            transport = Http1Transport(max_connections=1)
            first = asyncio.ensure_future(post(transport, server.url))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await post(transport, server.url, timeout={"pool": 0.05, "read": 5})
            first.cancel()
            await transport.aclose()
    run(go())


def test_silent_server_is_a_read_timeout() -> None:
    async def go() -> None:
        async with Server(silent_for(1)) as server:
            transport = Http1Transport()
            t0 = time.perf_counter()
            with pytest.raises(httpx.ReadTimeout) as info:
                await post(transport, server.url, timeout={"read": 0.1})
            assert time.perf_counter() - t0 < 0.9
            assert is_timeout(info.value)
            await transport.aclose()
    run(go())


def test_stalled_body_is_a_read_timeout() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial"
    async def stall(h: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(head)
        await asyncio.sleep(1)
        return False
    async def go() -> None:
        async with Server(stall) as server:
            transport = Http1Transport()
            with pytest.raises(httpx.ReadTimeout):
                await post(transport, server.url, timeout={"read": 0.1})
            await transport.aclose()
    run(go())


def test_connection_closed_before_the_response_is_a_read_error() -> None:
    async def hang_up(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        return False
    async def go() -> None:
        async with Server(hang_up) as server:
            transport = Http1Transport()
            with pytest.raises(httpx.ReadError) as info:
                await post(transport, server.url)
            assert not never_connected(info.value) and not is_timeout(info.value)
            await transport.aclose()
    run(go())


def test_a_connection_closing_when_a_request_is_written_is_a_write_error_on_either_loop() -> None:
    # At thousands of requests a second a server may drop a connection between the moment the pool hands it
    # out and the write: on uvloop a write then raised RuntimeError, which no retry or record caught.
    async def go() -> None:
        async with Server(answer(OK)) as server:
            transport = Http1Transport()
            await post(transport, server.url)
            [idle] = next(iter(transport._idle.values()))
            assert idle.transport is not None
            idle.transport.close()  # closing; its connection_lost has not run yet
            with pytest.raises(httpx.WriteError, match="closed the connection before the request"):
                await post(transport, server.url)
            response, body = await post(transport, server.url)  # the next one gets a new connection
            assert response.status_code == 200 and body == b"{}"
            await transport.aclose()
    run(go())
    run_async(go())


@pytest.mark.parametrize(("raw", "error"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part", httpx.ReadError),  # closed mid-body
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", httpx.RemoteProtocolError),  # not HTTP at all
])
def test_a_broken_answer_is_the_matching_httpx_error(raw: bytes, error: type[httpx.TransportError]) -> None:
    async def go() -> None:
        async with Server(answer(raw, keep=False)) as server:
            transport = Http1Transport()
            with pytest.raises(error):
                await post(transport, server.url)
            await transport.aclose()
    run(go())


def test_refused_connection_never_connected() -> None:
    async def go() -> None:
        async with Server(answer(OK)) as server:
            url = server.url
        await asyncio.sleep(0.01)
        transport = Http1Transport()
        with pytest.raises(httpx.ConnectError) as info:
            await post(transport, url)
        assert never_connected(info.value)
        await transport.aclose()
    run(go())


def test_interim_100_continue_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + OK
    async def go() -> None:
        async with Server(answer(raw)) as server:
            transport = Http1Transport()
            response, body = await post(transport, server.url)
            assert response.status_code == 200 and body == b"{}"
            await transport.aclose()
    run(go())


def test_stream_chunks_carry_their_arrival_time() -> None:
    """A chunk sent 50 ms after the first is stamped ~50 ms later, even if read long after it arrived."""
    async def paced(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"3\r\ntwo\r\n0\r\n\r\n")
        await writer.drain()
        return True
    async def go() -> None:
        async with Server(paced) as server:
            transport = Http1Transport()
            request = httpx.Request("POST", server.url, content=b"{}", extensions={"timeout": {"read": 5}})
            response = await transport.handle_async_request(request)
            stamps = []
            async for piece in response.aiter_raw():
                stamps.append((piece, received_ns(response)))
                await asyncio.sleep(0.2)  # a busy consumer: arrival times must not include this wait
            await response.aclose()
            await transport.aclose()
            assert [p for p, _ in stamps] == [b"one", b"two"]
            gap_ms = (stamps[1][1] - stamps[0][1]) / 1e6
            assert 40 < gap_ms < 150
    run(go())


def test_chat_client_end_to_end_streams_over_the_transport() -> None:
    events = [b'data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n',
              b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n',
              b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\n'
              b'\ndata: {"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}\n\n',
              b"data: [DONE]\n\n"]
    async def sse(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        for event in events:
            # Split each event across two chunks: lines cross chunk boundaries.
            for part in (event[:7], event[7:]):
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        return True
    async def go() -> None:
        async with Server(sse) as server, ChatClient(server.url.removesuffix("/chat/completions")) as chat:
            for _ in range(2):
                out = await chat.complete({"model": "m", "messages": [], "stream": True})
                head, sent = server.requests[-1]
                assert json.loads(sent) == {"model": "m", "messages": [], "stream": True}
                assert head.lower().count(b"content-length:") == 1
                assert out.ok, out.error
                assert out.content == "Hello" and out.finish_reason == "stop"
                assert out.usage == {"prompt_tokens": 3, "completion_tokens": 2}
                assert out.ttft_s is not None and out.e2e_s is not None and out.e2e_s > out.ttft_s
                assert len(out.chunk_times) == 2
                # The reader stopped at [DONE]; the body's last bytes come 10 ms later and keep the connection.
                await asyncio.sleep(0.05)
            assert server.connections == 1
    run(go())


def test_a_connection_that_never_finishes_after_done_does_not_hold_up_the_next_request() -> None:
    async def unfinished(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"e\r\ndata: [DONE]\n\n\r\n")  # and never the final 0-length chunk
        await writer.drain()
        return True
    async def go() -> None:
        async with Server(unfinished) as server, ChatClient(server.url.removesuffix("/chat/completions"),
                                                            max_connections=1, timeout_s=2) as chat:
            t0 = time.perf_counter()
            for _ in range(3):
                out = await chat.complete({"model": "m", "messages": [], "stream": True})
                assert out.ok, out.error
            assert time.perf_counter() - t0 < 1.0
            assert server.connections == 3
    run(go())


def test_large_bodies_both_ways_arrive_whole() -> None:
    """A 3 MB answer (reading pauses above 1 MB unread) and a 200 KB request (written in two parts)."""
    big = bytes(range(256)) * (3 * 4096)
    async def echo_size(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Got: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(big)) + big)
        await writer.drain()
        return True
    async def go() -> None:
        async with Server(echo_size) as server:
            transport = Http1Transport()
            request = httpx.Request("POST", server.url, content=b"x" * 200_000, extensions={"timeout": {"read": 5}})
            response = await transport.handle_async_request(request)
            pieces = []
            async for piece in response.aiter_raw():
                pieces.append(piece)
                await asyncio.sleep(0.001)  # a slow reader
            await response.aclose()
            assert response.headers["x-got"] == "200000"
            assert b"".join(pieces) == big
            _, again = await post(transport, server.url)  # the connection is still good
            assert again == big
            await transport.aclose()
            assert server.connections == 1
    run(go())


def test_a_request_cancelled_while_waiting_leaves_the_transport_usable() -> None:
    calls = 0
    async def slow_then_fast(head: bytes, body: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(0.3)
        writer.write(OK)
        return True
    async def go() -> None:
        async with Server(slow_then_fast) as server:
            transport = Http1Transport(max_connections=1)
            waiting = asyncio.ensure_future(post(transport, server.url))
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            _, body = await post(transport, server.url)  # a fresh connection: the cancelled one is gone
            assert body == b"{}"
            await transport.aclose()
            assert server.connections == 2
    run(go())


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1."""
    return self_signed(tmp_path, "127.0.0.1")


async def tls_server(server: Server, cert: Path, key: Path) -> tuple[asyncio.AbstractServer, str]:
    """``server`` behind TLS with the given certificate; the listener and the URL to post to."""
    listener = await asyncio.start_server(server._handle, "127.0.0.1", 0, ssl=server_context(cert, key))
    return listener, f"https://127.0.0.1:{listener.sockets[0].getsockname()[1]}/v1/chat/completions"


def test_https_with_the_certificates_ssl_cert_file_names(tls_files: tuple[Path, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))

    async def go() -> None:
        server = Server(answer(OK))
        listener, url = await tls_server(server, *tls_files)
        transport = Http1Transport()
        for _ in range(2):
            _, body = await post(transport, url)
            assert body == b"{}"
        await transport.aclose()
        listener.close()
        assert server.connections == 1  # one handshake, then keep-alive

    run(go())


def test_https_refuses_a_certificate_it_does_not_trust(tls_files: tuple[Path, Path]) -> None:
    async def go() -> None:
        listener, url = await tls_server(Server(answer(OK)), *tls_files)
        transport = Http1Transport()  # certifi's bundle: a self-signed certificate is not in it
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await post(transport, url)
        await transport.aclose()
        listener.close()

    run(go())
