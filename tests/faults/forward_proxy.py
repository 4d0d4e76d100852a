"""A forward proxy for the proxy tests: absolute-form HTTP forwarding and CONNECT tunnels, on a loopback port.

It resolves host names only from its own table (``hosts``), so a target such as ``only-the-proxy-knows.test``
can be reached through it and in no other way; it never asks DNS. With ``auth=(user, password)`` it answers
``407`` to any request or CONNECT without those credentials in ``Proxy-Authorization: Basic``.

Every request and CONNECT it receives is remembered as a ``Hop``; ``connections`` counts the client
connections it accepted (keep-alive through the proxy shows as fewer connections than requests).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.faults.proxy import Request, _Server, read_request

ONLY_THE_PROXY_KNOWS = "only-the-proxy-knows.test"


@dataclass
class Hop:
    """One request (or CONNECT) the proxy received."""

    method: str
    target: str                 # as on the request line: absolute-form URL, or host:port for CONNECT
    credentials: str | None     # the decoded ``user:password`` of Proxy-Authorization, if any
    allowed: bool


class ForwardProxy(_Server):
    """A CONNECT-capable forward proxy on 127.0.0.1 with its own name table and optional Basic auth."""

    def __init__(self, hosts: dict[str, str] | None = None, *, auth: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.hosts = {ONLY_THE_PROXY_KNOWS: "127.0.0.1", **(hosts or {})}
        self.auth = auth
        self.hops: list[Hop] = []
        self.connections = 0

    @property
    def url(self) -> str:
        """The proxy's URL, with its credentials in it when it wants some."""
        creds = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"http://{creds}127.0.0.1:{self.port}"

    @property
    def url_without_credentials(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tunnels(self) -> list[str]:
        """The host:port of each CONNECT it let through."""
        return [hop.target for hop in self.hops if hop.method == "CONNECT" and hop.allowed]

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            request = await read_request(reader)
            if request is not None and request.method == "CONNECT":
                await self._tunnel(request, reader, writer)
            elif request is not None:
                await self._forward(request, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a side went away, or the proxy is stopping
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    def _admit(self, request: Request, target: str) -> bool:
        """Record the hop; whether its credentials are the ones wanted (any, when none are)."""
        header = request.headers.get("proxy-authorization", "")
        credentials = None
        if header.lower().startswith("basic "):
            credentials = base64.b64decode(header[6:].strip()).decode("utf-8", "replace")
        allowed = self.auth is None or credentials == f"{self.auth[0]}:{self.auth[1]}"
        self.hops.append(Hop(request.method, target, credentials, allowed))
        return allowed

    def _resolve(self, host: str) -> str | None:
        """The address of ``host`` from the proxy's own table, or a loopback IP as given; never DNS."""
        if host in self.hosts:
            return self.hosts[host]
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_loopback:
                return host
        return None

    async def _tunnel(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._admit(request, request.path):
            await _refuse(writer, 407, "Proxy Authentication Required")
            return
        host, _, port = request.path.rpartition(":")
        address = self._resolve(host.strip("[]"))
        if address is None:
            await _refuse(writer, 502, "Bad Gateway")
            return
        up_reader, up_writer = await asyncio.open_connection(address, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def _forward(self, request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward each request of this connection in origin-form; relay the upstream's bytes back as they come."""
        upstream: asyncio.StreamWriter | None = None
        relay: asyncio.Task[None] | None = None
        try:
            next_request: Request | None = request
            while next_request is not None:
                if not self._admit(next_request, next_request.path):
                    await _refuse(writer, 407, "Proxy Authentication Required")
                    return
                url = urlsplit(next_request.path)
                if not url.scheme or not url.hostname:
                    await _refuse(writer, 400, "Bad Request")  # a proxy is sent absolute-form targets
                    return
                if upstream is None:
                    address = self._resolve(url.hostname)
                    if address is None:
                        await _refuse(writer, 502, "Bad Gateway")
                        return
                    up_reader, upstream = await asyncio.open_connection(address, url.port or 80)
                    relay = asyncio.ensure_future(_pipe(up_reader, writer))
                upstream.write(_origin_form(next_request, url.path + (f"?{url.query}" if url.query else "")))
                next_request = await read_request(reader)
            if relay is not None:
                await relay
        finally:
            if relay is not None and not relay.done():
                relay.cancel()
            if upstream is not None:
                upstream.close()


def _origin_form(request: Request, path: str) -> bytes:
    """The request as the origin server gets it: its path only, the proxy's own headers removed."""
    lines = [f"{request.method} {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in request.headers.items()
              if name not in ("proxy-authorization", "proxy-connection")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body


async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = f"{status} {reason}\n".encode()
    extra = 'Proxy-Authenticate: Basic realm="tests"\r\n' if status == 407 else ""
    writer.write(f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                 f"Connection: close\r\n\r\n".encode() + body)
    await writer.drain()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy bytes until ``source`` ends, then close ``sink`` (the other side learns the connection is over)."""
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        pass
    finally:
        sink.close()
