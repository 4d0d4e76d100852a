"""Telling a timeout from a dropped or refused connection, whichever transport raised it."""

from __future__ import annotations

import httpx
import pytest

from evalharness.transport import is_timeout, never_connected


@pytest.mark.parametrize("exc", [httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"),
                                 httpx.WriteTimeout("slow"), httpx.PoolTimeout("busy")])
def test_timeouts_are_timeouts(exc: httpx.TransportError) -> None:
    assert is_timeout(exc)


def test_a_refused_connection_never_reached_the_server() -> None:
    refused = httpx.ConnectError("refused")
    assert never_connected(refused) and not is_timeout(refused)


@pytest.mark.parametrize("exc", [httpx.ReadError("reset"), httpx.RemoteProtocolError("garbage")])
def test_a_dropped_connection_is_neither(exc: httpx.TransportError) -> None:
    assert not is_timeout(exc) and not never_connected(exc)
