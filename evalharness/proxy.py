"""Which proxy, if any, requests to a target go through: ``target.proxy``, else the environment as httpx reads it.

The environment is read the way ``httpx`` does with ``trust_env``: ``HTTPS_PROXY`` for https targets,
``HTTP_PROXY`` for http ones, ``ALL_PROXY`` for both (lower-case names too), and ``NO_PROXY`` bypasses a proxy
for hosts (``example.com`` also covers its subdomains, ``.example.com`` only them), IP addresses, ``host:port``
and ``*`` (everything). A loopback target (``localhost``, 127.0.0.0/8, ::1) is never sent through the
environment's proxy, which could not reach it. An explicit ``target.proxy`` applies to every request,
NO_PROXY notwithstanding (as httpx's ``proxy=``); ``target.proxy: ""`` sends directly, whatever the
environment says.

A proxy URL may carry credentials (``http://user:password@host:port``). They go into a ``Proxy-Authorization``
header and nowhere else: every place a proxy is shown uses ``redact``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx

from evalharness.errors import UsageError

#: Proxy schemes httpx understands. Our own transport speaks to ``http://`` proxies; the others go through
#: httpx's transport (see ``transport.default_transport``).
SCHEMES = ("http", "https", "socks5", "socks5h")

ProxySource = Literal["config", "environment"]


@dataclass(frozen=True)
class Route:
    """How requests reach a target: directly (``proxy`` None), or through a proxy named by ``source``."""

    proxy: httpx.Proxy | None = None
    source: ProxySource | None = None

    @property
    def shown(self) -> str | None:
        """The proxy's URL with its password masked, for messages and the manifest."""
        return None if self.proxy is None else show_proxy(self.proxy)

    def describe(self, transport: str) -> dict[str, Any]:
        """What the manifest records: the transport used and the proxy (credentials masked), if any."""
        return {"name": transport, "proxy": self.shown, "proxy_from": self.source}


DIRECT = Route()


def redact(url: str) -> str:
    """``url`` with any password in it replaced by ``***`` (``http://user:***@host:port``); the user name stays,
    so a user can tell which account a run used."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if not at:
        return url
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{hostport}{slash}{path}"


def show_proxy(proxy: httpx.Proxy) -> str:
    """A parsed proxy as a URL a user recognises, its password masked."""
    user = f"{quote(proxy.auth[0], safe='')}:***@" if proxy.auth else ""
    return f"{proxy.url.scheme}://{user}{proxy.url.netloc.decode('ascii')}"


def check_proxy_url(value: str) -> str:
    """``value`` if it is a proxy URL httpx can use; raises ValueError saying what is wrong (password masked)."""
    shown = redact(value)
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{shown} is not a URL ({exc})") from None
    if url.scheme not in SCHEMES:
        raise ValueError(f"a proxy URL starts with {', '.join(s + '://' for s in SCHEMES)}; got {shown}")
    if not url.host:
        raise ValueError(f"{shown} names no proxy host (write {url.scheme}://HOST:PORT)")
    return value


def route_for(base_url: str, configured: str | None, *, local: bool = False) -> Route:
    """The route to ``base_url``: direct for the bundled local server, else the configured proxy (``""``: none),
    else the environment's for this URL."""
    if local:
        return DIRECT  # started by us on a loopback port: a proxy could not reach it
    if configured is not None:
        return Route(httpx.Proxy(configured), "config") if configured else DIRECT
    url = httpx.URL(base_url)
    if is_loopback(url.host):
        # A server on this machine's loopback (a local vLLM, Ollama, llama.cpp) is out of a proxy's reach:
        # the proxy's loopback is its own. An explicit target.proxy still applies.
        return DIRECT
    found = environment_proxy(url)
    if found is None:
        return DIRECT
    try:
        return Route(httpx.Proxy(found), "environment")
    except ValueError as exc:  # e.g. ALL_PROXY=ftp://…: httpx's client would refuse it too
        raise UsageError(f"the proxy the environment names for {base_url}, {redact(found)}, cannot be used "
                         f"({exc}); fix HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, or set target.proxy") from None


def is_loopback(host: str) -> bool:
    """``localhost`` (and its subdomains), 127.0.0.0/8 and ::1."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def environment_proxy(url: httpx.URL) -> str | None:
    """The proxy URL the environment gives for ``url``, matched as httpx's client matches its proxy mounts:
    the most specific pattern first, a NO_PROXY entry (a pattern mapped to None) meaning none.

    httpx offers this only through its client (``trust_env``), so its two helpers are used here, and only here.
    """
    from httpx._utils import URLPattern, get_environment_proxies

    mounts = sorted(((URLPattern(key), proxy) for key, proxy in get_environment_proxies().items()),
                    key=lambda mount: mount[0].priority)
    for pattern, proxy in mounts:
        if pattern.matches(url):
            return proxy
    return None
