"""Which proxy a target is reached through: the environment as httpx reads it, ``target.proxy``, NO_PROXY."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from evalharness.config import load_config
from evalharness.errors import ConfigError, UsageError
from evalharness.http1 import Http1Transport
from evalharness.proxy import Route, redact, route_for, show_proxy
from evalharness.transport import default_transport, transport_name


def proxied(url: str) -> str | None:
    """The proxy URL (no credentials) a request to ``url`` goes through, or None when it goes directly."""
    route = route_for(url, None)
    return None if route.proxy is None else str(route.proxy.url).rstrip("/")


def test_https_and_http_targets_use_their_own_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://secure-proxy:3128")
    monkeypatch.setenv("http_proxy", "plain-proxy:8080")  # lower case, no scheme: http:// is meant
    assert proxied("https://api.example.com/v1") == "http://secure-proxy:3128"
    assert proxied("http://api.example.com/v1") == "http://plain-proxy:8080"
    assert route_for("https://api.example.com/v1", None).source == "environment"


def test_all_proxy_covers_both_schemes_and_the_scheme_specific_one_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://every:1")
    assert proxied("http://api.example.com/v1") == "http://every:1"
    monkeypatch.setenv("HTTPS_PROXY", "http://secure:2")
    assert proxied("https://api.example.com/v1") == "http://secure:2"
    assert proxied("http://api.example.com/v1") == "http://every:1"


@pytest.mark.parametrize(("no_proxy", "url", "bypassed"), [
    ("example.com", "https://example.com/v1", True),
    ("example.com", "https://api.example.com/v1", True),       # a domain covers its subdomains
    ("example.com", "https://notexample.com/v1", False),
    (".example.com", "https://api.example.com/v1", True),
    (".example.com", "https://example.com/v1", False),          # a leading dot: subdomains only
    ("10.0.0.7", "http://10.0.0.7:8000/v1", True),
    ("10.0.0.7", "http://10.0.0.8:8000/v1", False),
    ("::1", "http://[::1]:8000/v1", True),
    ("localhost", "http://localhost:8000/v1", True),
    ("example.com:8443", "https://example.com:8443/v1", True),  # a port: that port only
    ("example.com:8443", "https://example.com/v1", False),
    ("other.org, *", "https://api.example.com/v1", True),       # * anywhere: nothing is proxied
    ("other.org , example.com", "https://api.example.com/v1", True),
])
def test_no_proxy_bypasses_as_httpx_does(monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str,
                                         bypassed: bool) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://corporate:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert proxied(url) == (None if bypassed else "http://corporate:3128")


def test_a_loopback_target_is_never_sent_through_the_environments_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://corporate:3128")
    # A proxy elsewhere could not reach this machine's loopback: a local vLLM or Ollama is reached directly.
    for url in ("http://127.0.0.1:8000/v1", "http://127.3.2.1:8000/v1", "http://localhost:11434/v1",
                "http://[::1]:8000/v1"):
        assert proxied(url) is None, url
    assert proxied("http://10.1.2.3:8000/v1") == "http://corporate:3128"
    assert route_for("http://127.0.0.1:8000/v1", None, local=True).proxy is None
    # An explicit target.proxy still applies (a proxy on this machine can reach it).
    assert route_for("http://127.0.0.1:8000/v1", "http://127.0.0.1:3128").proxy is not None


def test_target_proxy_overrides_the_environment_and_no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://from-env:1")
    monkeypatch.setenv("NO_PROXY", "example.com")
    route = route_for("https://api.example.com/v1", "http://from-config:2")
    assert (str(route.proxy.url) if route.proxy else None, route.source) == ("http://from-config:2", "config")


def test_an_empty_target_proxy_sends_directly_whatever_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://from-env:1")
    assert route_for("https://api.example.com/v1", "") == Route()


def test_an_unusable_proxy_in_the_environment_is_a_usage_error_without_its_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "ftp://user:hunter2-secret@proxy:21")
    with pytest.raises(UsageError, match="HTTPS_PROXY") as refused:
        route_for("https://api.example.com/v1", None)
    assert "hunter2-secret" not in str(refused.value) and "user:***@proxy:21" in str(refused.value)


def test_credentials_are_masked_wherever_a_proxy_is_shown() -> None:
    assert redact("http://user:s3cret@proxy:3128") == "http://user:***@proxy:3128"
    assert redact("http://proxy:3128") == "http://proxy:3128"
    assert redact("user:s3cret@proxy:3128") == "user:***@proxy:3128"
    assert show_proxy(httpx.Proxy("http://us%40er:p%40ss@proxy:3128")) == "http://us%40er:***@proxy:3128"
    route = route_for("https://api.example.com/v1", "http://user:s3cret@proxy:3128")
    assert route.describe("http1") == {"name": "http1", "proxy": "http://user:***@proxy:3128", "proxy_from": "config"}


def test_our_transport_goes_through_http_proxies_and_httpx_through_the_others() -> None:
    for proxy, name in [(None, "http1"), ("http://p:1", "http1"), ("https://p:1", "httpx")]:
        route = route_for("https://api.example.com/v1", proxy) if proxy else Route()
        assert transport_name(route) == name
        transport = default_transport(4, route)
        assert isinstance(transport, Http1Transport) == (name == "http1")
        assert isinstance(transport, httpx.AsyncHTTPTransport) == (name == "httpx")


def test_a_socks_proxy_without_its_extra_package_says_which_to_install() -> None:
    try:
        import socksio  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("socksio is installed")
    with pytest.raises(UsageError, match=r"pip install 'httpx\[socks\]'") as refused:
        default_transport(4, route_for("https://api.example.com/v1", "socks5://user:hunter2-secret@proxy:1080"))
    assert "hunter2-secret" not in str(refused.value)


TARGET = "target: {{base_url: https://api.example.com/v1, model: m{extra}}}\n"


def config_with(write_config: Callable[..., Path], extra: str, target: str = TARGET) -> Path:
    return write_config("name: t\n" + target.format(extra=extra) + "suites: [suite.yaml]\n")


@pytest.mark.parametrize("proxy", ['"http://user:pw@proxy:3128"', '"socks5://proxy:1080"', '""', "null"])
def test_target_proxy_accepts_proxy_urls_and_empty(write_config: Callable[..., Path], proxy: str) -> None:
    loaded = load_config(config_with(write_config, f", proxy: {proxy}"))
    assert loaded.config.target.proxy == (None if proxy == "null" else proxy.strip('"'))


@pytest.mark.parametrize(("proxy", "words"), [
    ('"ftp://user:hunter2-secret@proxy:21"', "starts with http://"),
    ('"http://user:hunter2-secret@:3128"', "names no proxy host"),
    ('"proxy.corp:3128"', "starts with http://"),
])
def test_a_bad_target_proxy_is_named_by_key_and_line_without_its_password(write_config: Callable[..., Path],
                                                                          proxy: str, words: str) -> None:
    with pytest.raises(ConfigError) as bad:
        load_config(config_with(write_config, f", proxy: {proxy}"))
    assert (bad.value.key, bad.value.line) == ("target.proxy", 2)
    assert words in str(bad.value) and "hunter2-secret" not in str(bad.value)


def test_the_local_target_takes_no_proxy(write_config: Callable[..., Path]) -> None:
    with pytest.raises(ConfigError, match="reached directly"):
        load_config(write_config('name: t\ntarget: {kind: local, proxy: "http://proxy:3128"}\nsuites: [suite.yaml]\n'))
