"""The HTTP/1.1 transport through a real forward proxy on loopback: absolute-form http, CONNECT for https."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from evalharness.http1 import Http1Transport
from tests.faults.forward_proxy import ONLY_THE_PROXY_KNOWS, ForwardProxy
from tests.tls import self_signed, server_context
from tests.unit.test_http1 import OK, Server, answer, post, run

PASSWORD = "proxy-pass-0123456789"


async def keep_alive_server(tls: tuple[Path, Path] | None = None) -> tuple[Server, asyncio.AbstractServer, int]:
    """A keep-alive server answering ``{}`` on a loopback port, over TLS when given a certificate."""
    server = Server(answer(OK))
    listener = await asyncio.start_server(server._handle, "127.0.0.1", 0, ssl=server_context(*tls) if tls else None)
    return server, listener, listener.sockets[0].getsockname()[1]


def test_an_http_target_is_reached_through_the_proxy_with_keep_alive() -> None:
    async def go(proxy: ForwardProxy) -> None:
        server, listener, port = await keep_alive_server()
        transport = Http1Transport(proxy=httpx.Proxy(proxy.url))
        url = f"http://{ONLY_THE_PROXY_KNOWS}:{port}/v1/chat/completions"
        for _ in range(3):
            _, body = await post(transport, url)
            assert body == b"{}"
        await transport.aclose()
        listener.close()
        assert [hop.target for hop in proxy.hops] == [url] * 3  # absolute-form: the proxy names the target
        assert proxy.connections == 1 and server.connections == 1  # one connection, kept alive
        assert server.requests[0][0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")

    with ForwardProxy() as proxy:
        run(go(proxy))


def test_an_https_target_is_reached_through_a_connect_tunnel_kept_alive(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    tls = self_signed(tmp_path, ONLY_THE_PROXY_KNOWS)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))

    async def go(proxy: ForwardProxy) -> None:
        server, listener, port = await keep_alive_server(tls)
        transport = Http1Transport(proxy=httpx.Proxy(proxy.url))
        for _ in range(3):
            _, body = await post(transport, f"https://{ONLY_THE_PROXY_KNOWS}:{port}/v1/chat/completions")
            assert body == b"{}"
        await transport.aclose()
        listener.close()
        # One tunnel, one TLS session to the target (whose name only the proxy can resolve), three requests.
        assert proxy.tunnels() == [f"{ONLY_THE_PROXY_KNOWS}:{port}"]
        assert server.connections == 1 and len(server.requests) == 3

    with ForwardProxy() as proxy:
        run(go(proxy))


def test_the_proxy_urls_credentials_are_sent_and_never_shown() -> None:
    async def go(proxy: ForwardProxy) -> None:
        server, listener, port = await keep_alive_server()
        url = f"http://{ONLY_THE_PROXY_KNOWS}:{port}/v1/chat/completions"
        without = Http1Transport(proxy=httpx.Proxy(proxy.url_without_credentials))
        response, _ = await post(without, url)
        assert response.status_code == 407
        with_them = Http1Transport(proxy=httpx.Proxy(proxy.url))
        response, body = await post(with_them, url)
        assert (response.status_code, body) == (200, b"{}")
        for transport in (without, with_them):
            await transport.aclose()
        listener.close()
        assert [hop.credentials for hop in proxy.hops] == [None, f"user:{PASSWORD}"]
        assert b"proxy-authorization" not in server.requests[0][0].lower()  # not passed on to the target

    with ForwardProxy(auth=("user", PASSWORD)) as proxy:
        run(go(proxy))


def test_a_refused_tunnel_says_why_without_the_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def go(proxy: ForwardProxy) -> None:
        url = f"https://{ONLY_THE_PROXY_KNOWS}:9/v1/chat/completions"
        transport = Http1Transport(proxy=httpx.Proxy(proxy.url_without_credentials))
        with pytest.raises(httpx.ProxyError, match=r"407 .*put them in the proxy URL"):
            await post(transport, url)
        wrong = Http1Transport(proxy=httpx.Proxy(f"http://user:wrong-{PASSWORD}@127.0.0.1:{proxy.port}"))
        with pytest.raises(httpx.ProxyError) as refused:
            await post(wrong, url)
        assert "did not accept the credentials" in str(refused.value)
        assert PASSWORD not in str(refused.value) and "user:***@127.0.0.1" in str(refused.value)
        for each in (transport, wrong):
            await each.aclose()

    with ForwardProxy(auth=("user", PASSWORD)) as proxy:
        run(go(proxy))


def test_a_proxy_that_cannot_be_reached_is_named_without_its_password() -> None:
    async def go() -> None:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()  # a port where nothing listens
        transport = Http1Transport(proxy=httpx.Proxy(f"http://user:{PASSWORD}@127.0.0.1:{port}"))
        with pytest.raises(httpx.ConnectError) as failed:
            await post(transport, "https://example.invalid/v1/chat/completions")
        assert f"through the proxy http://user:***@127.0.0.1:{port}" in str(failed.value)
        assert PASSWORD not in str(failed.value)

    run(go())


def test_only_http_proxies_are_spoken_to_directly() -> None:
    with pytest.raises(ValueError, match="http:// proxies") as refused:
        Http1Transport(proxy=httpx.Proxy(f"socks5://user:{PASSWORD}@127.0.0.1:1080"))
    assert PASSWORD not in str(refused.value)
