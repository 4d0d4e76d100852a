"""Telling a timeout from a dropped or refused connection, whichever transport raised it."""

from __future__ import annotations

import aiohttp
import httpcore
import httpx

from evalharness.transport import is_timeout, never_connected


def raised_from(exc: httpx.TransportError, cause: BaseException) -> httpx.TransportError:
    try:
        raise exc from cause
    except httpx.TransportError as err:
        return err


def test_httpx_own_transport_timeouts_are_timeouts() -> None:
    assert is_timeout(raised_from(httpx.ReadTimeout("slow"), httpcore.ReadTimeout("slow")))


def test_aiohttp_errors_mapped_to_connect_timeout_are_told_apart() -> None:
    reset = raised_from(httpx.ConnectTimeout("reset"), aiohttp.ServerDisconnectedError())
    assert not is_timeout(reset) and not never_connected(reset)
    timed_out = raised_from(httpx.ConnectTimeout("slow"), aiohttp.ServerTimeoutError())
    assert is_timeout(timed_out)
    refused = raised_from(httpx.ConnectTimeout("refused"),
                          aiohttp.ClientConnectorError(aiohttp.client_reqrep.ConnectionKey(
                              "h", 1, False, False, None, None, None), OSError(111, "refused")))
    assert not is_timeout(refused) and never_connected(refused)
