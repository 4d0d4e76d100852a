"""The Ray executor (``run.executor: ray``): a run's requests sent from workers on a Ray cluster.

The driver (the ``evalharness run`` process) opens the target as usual (it starts the bundled server for
``kind: local``; the workers reach it by its address), splits the items to do over ``run.ray_workers``
actors, each an async ``Runner`` over its slice with its share of ``concurrency``, ``rpm`` and ``tpm``,
and takes their finished records back in batches. The driver alone appends them to results.jsonl through
the usual ``ResultWriter``, so a record is stored whole or not at all and ``--resume`` works as for any
run. A worker that dies has the items it had not finished handed to a new worker; a record whose item
the driver already wrote is dropped, so nothing is stored twice.

Without ``run.ray_address`` a local Ray is started for the run (and stopped after it); an already
initialised Ray (``ray.init`` by the caller) is used as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalharness.backend import Backend
from evalharness.config import LoadedConfig, RunOptions
from evalharness.errors import RunAborted, UsageError
from evalharness.executor import INSTALL
from evalharness.fanout import pricing, run_options
from evalharness.fanrun import Part
from evalharness.plan import WorkItem
from evalharness.progress import Progress
from evalharness.remote import Remote, by_name, remote_runner, share
from evalharness.store import ResultWriter
from evalharness.types import Record

#: How often one worker slot may lose its worker before the run gives up on the cluster.
MAX_RESTARTS = 3
#: The longest a driver waits on one batch before asking again (a batch comes as soon as a record is done).
TAKE_WAIT_S = 1.0
#: The actors' name prefix (``ray.util.list_named_actors``): ``evalharness-RUN-SLOT.GENERATION``.
ACTOR_PREFIX = "evalharness-"


def require_ray() -> Any:
    """The ``ray`` module, or a usage error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"run.executor: ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


def split(todo: list[WorkItem], workers: int) -> list[list[WorkItem]]:
    """``todo`` dealt round-robin over ``workers`` slices (each cell and case spread over every worker)."""
    return [todo[i::workers] for i in range(workers) if todo[i::workers]]


class _Collected(ResultWriter):
    """A worker's writer: keeps its finished records for the driver to take instead of writing them."""

    def __init__(self) -> None:  # no file: the driver writes
        self.records: list[Record] = []
        self.ready = asyncio.Event()

    def write(self, record: Record) -> None:
        self.records.append(record)
        self.ready.set()

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Worker:
    """One Ray actor: a ``Runner`` over its slice of the items against the target's address."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote
        self.collected = _Collected()
        self.finished = False
        self.failure: tuple[str, str] | None = None
        self.task: asyncio.Task[None] | None = None

    def pid(self) -> int:
        return os.getpid()

    async def start(self, items: list[WorkItem]) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(items))

    async def _run(self, items: list[WorkItem]) -> None:
        try:
            async with remote_runner(self.remote, self.collected) as runner:
                await runner.run(items, total=len(items), signals=False)
        except RunAborted as exc:  # sent back by name: the driver raises it as the run's reason to stop
            self.failure = (type(exc).__name__, str(exc))
        except Exception as exc:  # any other failure ends the slot the same way
            self.failure = ("RunAborted", f"a Ray worker failed: {type(exc).__name__}: {exc}")
        finally:
            self.finished = True
            self.collected.ready.set()

    async def take(self, wait_s: float) -> tuple[list[Record], bool, tuple[str, str] | None]:
        """The records finished since the last call (waiting up to ``wait_s`` for one), whether the slice
        is over (nothing more will come), and why it stopped early, if it did."""
        if not self.collected.records and not self.finished:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.collected.ready.wait(), wait_s)
        finished = self.finished  # read first: every record of a finished slice is already collected
        records, self.collected.records = self.collected.records, []
        self.collected.ready.clear()
        return records, finished, self.failure


class _Counts:
    """The progress line's counts: records the driver has written."""

    def __init__(self, total: int) -> None:
        self.done = 0
        self.errors = 0
        self.total = total


@contextlib.contextmanager
def _connected(ray: Any, address: str | None) -> Any:
    """Ray for the run: the caller's if initialised, else a connection to ``address`` or a local Ray."""
    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


async def run_on_ray(loaded: LoadedConfig, parts: list[Part], run_dir: Path, todo: list[WorkItem],
                     progress: Progress, *, done: set[str], backends: Backend | Mapping[str, Backend] | None = None
                     ) -> None:
    """Run ``todo`` on Ray workers; the driver writes every record. ``done``: the item ids already stored."""
    if backends is not None:
        raise UsageError("run.executor: ray sends requests from Ray workers to the target's address; "
                         "a Python backend cannot be given to it (use executor: local)")
    ray = require_ray()
    (part,) = parts
    cfg = loaded.config
    options = run_options(cfg, part.target)
    with _connected(ray, options.ray_address):
        await _drive(ray, loaded, part, run_dir, todo, progress, done, options)


async def _drive(ray: Any, loaded: LoadedConfig, part: Part, run_dir: Path, todo: list[WorkItem],
                 progress: Progress, done: set[str], options: RunOptions) -> None:
    slices = split(todo, options.ray_workers)
    each = share(options, max(1, len(slices)))
    actor_cls = ray.remote(num_cpus=0, max_restarts=0)(Worker)
    remote = Remote(part.target, part.info, each, pricing(loaded.config, part.target), loaded.api_key(part.target))
    written = set(done)
    counts = _Counts(len(todo))
    actors: list[Any] = []
    writer = ResultWriter(run_dir)

    def store(record: Record) -> None:
        if record["item_id"] in written:
            return
        written.add(record["item_id"])
        writer.write(record)
        counts.done += 1
        counts.errors += not record["ok"]

    async def slot(index: int, items: list[WorkItem]) -> None:
        pending = {item.item_id: item for item in items}
        for generation in range(MAX_RESTARTS + 1):
            actor = actor_cls.options(name=f"{ACTOR_PREFIX}{run_dir.name}-{index}.{generation}").remote(remote)
            actors.append(actor)
            try:
                await actor.start.remote(list(pending.values()))
                while True:
                    records, finished, failure = await actor.take.remote(TAKE_WAIT_S)
                    for record in records:
                        pending.pop(record["item_id"], None)
                        store(record)
                    if finished:
                        if failure is not None:
                            raise by_name(*failure)
                        return
            except ray.exceptions.RayActorError as exc:
                if not pending:
                    return
                if generation == MAX_RESTARTS:
                    raise RunAborted(f"Ray worker {index + 1} died {MAX_RESTARTS + 1} times; "
                                     f"{len(pending)} of its requests are not done: {exc}") from None
                progress.announce(f"Ray worker {index + 1} died; its {len(pending)} unfinished requests go "
                                  "to a new worker")

    progress.announce(f"Ray: {len(slices)} workers, each at concurrency {each.concurrency}"
                      + (f", rpm {each.rpm:g}" if each.rpm else "") + (f", tpm {each.tpm:g}" if each.tpm else ""))
    progress.start(counts)
    tasks = [asyncio.ensure_future(slot(i, items)) for i, items in enumerate(slices)]
    try:
        await asyncio.gather(*tasks)
    except RunAborted as exc:
        part.status, part.reason, part.failure = "failed", str(exc), exc
        raise
    finally:
        for task in tasks:  # one slot's failure stops the others (their unfinished items stay unrecorded)
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        progress.finish(counts)
        writer.close()
        for actor in actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
