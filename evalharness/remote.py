"""A runner in another process: what a Ray worker (rayrun.py) and a load worker (load/spread.py) share.

The process that opened the target (and started the bundled server, if any) sends another process what it
needs to reach it: the target, its address, the run options of that process's share, the pricing and the
key. That process builds its own client, token counter and ``Runner``, and hands its records back to the
first process, which alone writes results.jsonl. A stop reason comes back by name and is raised again as
the same error.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

from evalharness import errors
from evalharness.client import ChatClient
from evalharness.config import Pricing, RunOptions, Target
from evalharness.errors import RunAborted
from evalharness.proxy import route_for
from evalharness.runner import Runner
from evalharness.store import ResultWriter
from evalharness.tokens import TokenCounter
from evalharness.transport import side_transport
from evalharness.types import TargetInfo


@dataclass(frozen=True)
class Remote:
    """What another process needs to send a target's requests (the key travels in memory, never to a file)."""

    target: Target
    info: TargetInfo
    options: RunOptions
    price: Pricing
    api_key: str | None
    #: The client's connection pool (a load worker's share of ``load.max_in_flight``).
    connections: int | None = None


def share(options: RunOptions, workers: int) -> RunOptions:
    """One worker's part of the run's concurrency and rate limits."""
    return options.model_copy(update={
        "concurrency": max(1, math.ceil(options.concurrency / workers)),
        "rpm": options.rpm / workers if options.rpm else None,
        "tpm": options.tpm / workers if options.tpm else None,
        "executor": "local"})


def by_name(name: str, message: str) -> RunAborted:
    """A stop reason sent back from another process as (class name, message), as that error again."""
    cls = getattr(errors, name, RunAborted)
    if not (isinstance(cls, type) and issubclass(cls, RunAborted)):
        cls = RunAborted
    try:
        return cls(message)
    except TypeError:
        return RunAborted(message)


@contextlib.asynccontextmanager
async def remote_runner(remote: Remote, writer: ResultWriter) -> AsyncIterator[Runner]:
    """A ``Runner`` against ``remote``'s address that hands its records to ``writer``; closed after use."""
    target, info, options = remote.target, remote.info, remote.options
    route = route_for(info["base_url"], target.proxy, local=info["kind"] == "local")
    auth = {"Authorization": f"Bearer {remote.api_key}"} if remote.api_key else {}
    client = ChatClient(info["base_url"], api_key=remote.api_key, headers=target.headers,
                        timeout_s=options.timeout_s, max_connections=remote.connections or options.concurrency,
                        route=route)
    counter = TokenCounter(target.tokenizer_url or info["base_url"], info["model"], timeout_s=options.timeout_s,
                           headers={**target.headers, **auth}, transport=side_transport(route))
    try:
        yield Runner(client, model=info["model"], options=options, pricing=remote.price, writer=writer,
                     api_key_env=target.api_key_env, counter=counter)
    finally:
        with contextlib.suppress(Exception):
            await counter.aclose()
        with contextlib.suppress(Exception):
            await client.aclose()
