"""Running a plan on several targets at once: each target opened (the bundled server started), its own client,
concurrency, rate limits and health watch, and a target that is down failing its own cells, not the run.

``flow.execute`` uses this for every run; with one target it behaves as a single runner always did (the
run stops with that target's reason). With more, a target that is unreachable, crashed or failing every
request is recorded as ``failed`` with its reason in the manifest's ``targets``; the run is then
incomplete (exit 3) unless that target is ``optional: true``. The budget and Ctrl-C are the run's, shared.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalharness.backend import Backend
from evalharness.client import ChatClient
from evalharness.config import LoadedConfig, Target
from evalharness.errors import RunAborted, SystematicFailure, TargetUnavailable
from evalharness.fanout import is_multi, planned_targets, pricing, run_options
from evalharness.load.driver import LoadDriver, connections
from evalharness.local import MODEL_ALIAS, TargetCheck, open_target
from evalharness.plan import WorkItem
from evalharness.progress import Progress
from evalharness.proxy import DIRECT, Route, route_for
from evalharness.remote import Remote, share
from evalharness.runner import Purse, Runner, _install_signal_handlers
from evalharness.store import ResultWriter
from evalharness.tokens import TokenCounter
from evalharness.transport import side_transport
from evalharness.types import TargetInfo, TargetStatus

#: A caller's backend: one for every target, or one per target name (a target without one is called as usual).
Backends = Backend | Mapping[str, Backend] | None

#: Failures that belong to one target: with several, they fail that target's cells and the others go on.
TARGET_FAILURES = (TargetUnavailable, SystematicFailure)


@dataclass
class Part:
    """One target's share of a run: where it is, how it is reached, and how it went."""

    target: Target
    info: TargetInfo
    route: Route
    check: TargetCheck | None = None
    status: str = "ok"
    reason: str | None = None
    failure: RunAborted | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.target.label

    def describe(self) -> TargetStatus:
        return {"name": self.name, "kind": self.info["kind"], "base_url": self.info["base_url"],
                "model": self.info["model"], "optional": self.target.optional, "status": self.status,
                "reason": self.reason}


def skipped_statuses(loaded: LoadedConfig) -> list[TargetStatus]:
    """The targets left out of this run (optional, key absent), as the manifest lists them."""
    return [{"name": t.label, "kind": t.kind, "base_url": t.base_url or "", "model": t.model or MODEL_ALIAS,
             "optional": True, "status": "skipped", "reason": why}
            for t, why in planned_targets(loaded) if why is not None]


def own_backend(backends: Backends, name: str) -> Backend | None:
    """The caller's backend for the target ``name``, if any."""
    if isinstance(backends, Mapping):
        return backends.get(name)
    return backends


@contextlib.contextmanager
def open_parts(loaded: LoadedConfig, run_dir: Path, backends: Backends) -> Iterator[list[Part]]:
    """Every target this run sends to, opened for the duration: an endpoint as it is, the bundled model
    started once per distinct server setting (two local targets with the same n_ctx and threads share one
    server; with different ones, each gets its own, logged to ``server-NAME.log``)."""
    multi = is_multi(loaded.config)
    with contextlib.ExitStack() as stack:
        parts: list[Part] = []
        servers: dict[tuple[Any, ...], tuple[TargetInfo, TargetCheck | None]] = {}
        for target in loaded.active_targets():
            backend = own_backend(backends, target.label)
            if backend is not None:
                cls = type(backend)
                info: TargetInfo = {"kind": "python", "base_url": f"python:{cls.__module__}.{cls.__qualname__}",
                                    "model": target.model or MODEL_ALIAS}
                parts.append(Part(target, info, DIRECT))
                continue
            key = (target.kind, target.n_ctx, target.n_threads) if target.kind == "local" else (id(target),)
            if key not in servers:
                log = run_dir / (f"server-{target.label}.log" if multi and target.kind == "local" else "server.log")
                try:
                    servers[key] = stack.enter_context(open_target(target, log))
                except TargetUnavailable as exc:
                    if not multi:
                        raise
                    # A bundled server that does not start fails its target's cells, as a target that is down.
                    info = {"kind": target.kind, "base_url": target.base_url or "", "model": MODEL_ALIAS}
                    parts.append(Part(target, info, DIRECT, status="failed", reason=str(exc), failure=exc))
                    continue
            info, check = servers[key]
            route = route_for(info["base_url"], target.proxy, local=info["kind"] == "local")
            parts.append(Part(target, info, route, check))
        yield parts


class Counts:
    """The progress line's counts over every target's runner."""

    def __init__(self, runners: list[Runner], total: int) -> None:
        self.runners = runners
        self._total = total

    @property
    def done(self) -> int:
        return sum(r.state.done for r in self.runners)

    @property
    def total(self) -> int:
        return self._total

    @property
    def errors(self) -> int:
        return sum(r.state.errors for r in self.runners)


async def run_parts(loaded: LoadedConfig, parts: list[Part], run_dir: Path, todo: list[WorkItem],
                    progress: Progress, *, spent: float = 0.0, backends: Backends = None,
                    drive: LoadDriver | None = None) -> None:
    """Run ``todo`` on its targets, each with its own runner, all at once; set each part's status.

    Raises the run's reason to stop: with one target, whatever stopped it; with more, a budget or Ctrl-C, or
    the first failed target that is not optional (after every target is done). ``drive`` sends a load run's
    levels (each runner the levels of its own target)."""
    cfg = loaded.config
    multi = is_multi(cfg)
    purse = Purse(spent=spent)
    async with contextlib.AsyncExitStack() as stack:
        writer = ResultWriter(run_dir)
        stack.callback(writer.close)
        given = list(backends.values()) if isinstance(backends, Mapping) else [backends] if backends else []
        for backend in {id(b): b for b in given}.values():
            stack.push_async_callback(backend.aclose)
        runners: list[Runner] = []
        batches: list[list[WorkItem]] = []
        drives: list[LoadDriver | None] = []
        live = [part for part in parts if part.failure is None]
        workers = cfg.load.workers if cfg.load is not None and drive is not None else 1
        for part in live:
            target = part.target
            options = run_options(cfg, target)
            if workers > 1:  # this process sends one share of each level, load workers the others
                options = share(options, workers)
            price, pool = pricing(cfg, target), connections(options.concurrency, cfg.load)
            counter = None
            client: Backend | None = own_backend(backends, part.name)
            if client is None:
                key = loaded.api_key(target)
                auth = {"Authorization": f"Bearer {key}"} if key else {}
                counter = TokenCounter(target.tokenizer_url or part.info["base_url"], part.info["model"],
                                       timeout_s=options.timeout_s, headers={**target.headers, **auth},
                                       transport=side_transport(part.route))
                stack.push_async_callback(counter.aclose)
                client = ChatClient(part.info["base_url"], api_key=key, headers=target.headers,
                                    timeout_s=options.timeout_s,
                                    max_connections=pool, route=part.route)
                stack.push_async_callback(client.aclose)
            runners.append(Runner(client, model=part.info["model"], options=options, pricing=price,
                                  writer=writer, api_key_env=target.api_key_env, counter=counter,
                                  check_target=part.check, purse=purse))
            batches.append([item for item in todo if item.target == part.name])
            if drive is not None and workers > 1:
                drives.append(drive.spread(Remote(target, part.info, options, price, loaded.api_key(target), pool)))
            else:
                drives.append(drive)
        loop = asyncio.get_running_loop()
        def interrupt() -> None:
            for runner in runners:
                runner.interrupt()

        installed = _install_signal_handlers(loop, interrupt)
        counts = Counts(runners, len(todo))
        progress.start(counts)
        try:
            results = await asyncio.gather(*(r.run(batch, total=len(batch), signals=False, drive=d)
                                             for r, batch, d in zip(runners, batches, drives, strict=True)),
                                           return_exceptions=True)
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            progress.finish(counts)
    ended = dict(zip((id(p) for p in live), results, strict=True))
    _settle(parts, [ended.get(id(p), p.failure) for p in parts], multi)


def _settle(parts: list[Part], results: list[Any], multi: bool) -> None:
    """Each part's status from how its runner ended; raise what stops the run."""
    stop: BaseException | None = None
    for part, result in zip(parts, results, strict=True):
        if not isinstance(result, BaseException):
            continue
        if isinstance(result, RunAborted):
            part.status, part.reason, part.failure = "failed", str(result), result
        if not multi or not isinstance(result, TARGET_FAILURES):
            stop = stop or result
    if stop is not None:
        raise stop
    for part in parts:
        if part.failure is not None and not part.target.optional:
            raise TargetUnavailable(f"target {part.name} failed: {part.reason}")
