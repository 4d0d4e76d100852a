"""``evalharness run`` behind a forward proxy on loopback: a target only the proxy can resolve, over http and
https (CONNECT), NO_PROXY, the proxy's credentials from its URL, and ``target.proxy``."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.forward_proxy import ONLY_THE_PROXY_KNOWS, ForwardProxy
from tests.faults.harness import run_cli, stored_records, write_config
from tests.faults.proxy import CannedChat
from tests.tls import self_signed, server_context

RUN = "{concurrency: 2, max_retries: 1}"


class TlsCannedChat(CannedChat):
    """The canned chat server behind TLS."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__()
        self.context = context

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._on_connection, "127.0.0.1", 0, ssl=self.context)


@pytest.fixture
def tls_canned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CannedChat]:
    """A TLS chat server whose certificate names the host only the proxy knows (trusted via SSL_CERT_FILE)."""
    cert, key = self_signed(tmp_path, ONLY_THE_PROXY_KNOWS)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with TlsCannedChat(server_context(cert, key)) as server:
        yield server


def hidden_url(server: CannedChat, scheme: str = "http") -> str:
    """The server's base URL under the name only the proxy resolves."""
    return f"{scheme}://{ONLY_THE_PROXY_KNOWS}:{server.port}/v1"


def manifest(run_dir: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((run_dir / "manifest.json").read_text())
    return data


def test_an_http_target_only_the_proxy_can_reach(tmp_path: Path, canned: CannedChat,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        config = write_config(tmp_path, hidden_url(canned), run=RUN)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    assert len(stored_records(tmp_path / "run")) == 3 and len(canned.bodies) == 3
    assert {hop.target for hop in proxy.hops} >= {hidden_url(canned) + "/chat/completions"}
    assert f"through the proxy {proxy.url}" in result.out
    assert manifest(tmp_path / "run")["transport"] == {"name": "http1", "proxy": proxy.url,
                                                        "proxy_from": "environment"}


def test_an_https_target_only_the_proxy_can_reach_through_connect(tmp_path: Path, tls_canned: CannedChat,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        config = write_config(tmp_path, hidden_url(tls_canned, "https"), run=RUN)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    assert len(tls_canned.bodies) == 3
    assert set(proxy.tunnels()) == {f"{ONLY_THE_PROXY_KNOWS}:{tls_canned.port}"}
    assert manifest(tmp_path / "run")["transport"] == {"name": "http1", "proxy": proxy.url,
                                                        "proxy_from": "environment"}


def test_no_proxy_sends_directly(tmp_path: Path, canned: CannedChat, monkeypatch: pytest.MonkeyPatch) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("ALL_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        config = write_config(tmp_path, canned.base_url, run=RUN)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    assert len(canned.bodies) == 3 and proxy.hops == [] and proxy.connections == 0
    assert "through the proxy" not in result.out
    assert manifest(tmp_path / "run")["transport"] == {"name": "http1", "proxy": None, "proxy_from": None}


def test_target_proxy_is_used_without_any_environment(tmp_path: Path, tls_canned: CannedChat) -> None:
    with ForwardProxy() as proxy:
        config = write_config(tmp_path, hidden_url(tls_canned, "https"), run=RUN)
        text = config.read_text().replace("api_key_env:", f'proxy: "{proxy.url}", api_key_env:')
        config.write_text(text)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    assert len(tls_canned.bodies) == 3 and proxy.tunnels()
    assert manifest(tmp_path / "run")["transport"] == {"name": "http1", "proxy": proxy.url, "proxy_from": "config"}


def test_an_empty_target_proxy_ignores_the_environment(tmp_path: Path, canned: CannedChat,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        config = write_config(tmp_path, canned.base_url, run=RUN)
        config.write_text(config.read_text().replace("api_key_env:", 'proxy: "", api_key_env:'))
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    assert len(canned.bodies) == 3 and proxy.connections == 0
