"""``load.workers: N``: each open-loop level's schedule sent by N processes of this machine, for rates one
event loop cannot hold.

The run's process is worker 0; it starts N - 1 more (``multiprocessing``'s spawn, once per run and target),
each with its own client and ``Runner`` against the target's address (remote.py). At each level it deals
the schedule out: worker k sends the requests at positions k, k + N, k + 2N… of the level's order, each at
its own due time on one clock for all (the level's start is read once and sent to every worker; the
monotonic clock is the system's, the same in every process). So each worker sends 1/N of the rate, and
together they send the level's schedule exactly as one process would, with each request's lag its own.

The workers send each finished record back at once (batched per turn of their event loop), and the run's
process alone writes results.jsonl (its ``Runner.store``): every request belongs to exactly one worker, so
no record is doubled, and a record is stored whole or not at all. Ctrl-C is the run's: the workers ignore
it, and are told to stop when the run stops (their in-flight requests finish and are recorded); a second
Ctrl-C ends them. A worker that dies stops the run; what it had not recorded is sent by ``--resume``.
Records carry ``load_worker`` (0 … N-1), the process that sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import multiprocessing
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from evalharness.errors import RunAborted, RunInterrupted
from evalharness.load.driver import Clock, LevelRun
from evalharness.load.options import LoadOptions
from evalharness.load.plan import Level
from evalharness.plan import WorkItem
from evalharness.remote import Remote, by_name, remote_runner
from evalharness.runner import Runner, RunState
from evalharness.store import ResultWriter
from evalharness.transport import run_async
from evalharness.types import Record

#: How long before a level starts its clock is read: the time to hand each worker its share of the schedule.
LEAD_NS = 250_000_000
#: The longest a worker may take to start (import evalharness, open its client).
READY_TIMEOUT_S = 120.0
#: How long workers have to exit when the run ends, before they are terminated.
EXIT_TIMEOUT_S = 5.0
#: How often the run's process looks whether the run was told to stop, to tell the workers.
STOP_POLL_S = 0.05

Share = list[tuple[int, WorkItem]]


def shares(items: Share, workers: int) -> list[Share]:
    """Worker k's part of a level's schedule: the requests at positions k, k + N, k + 2N…"""
    return [items[k::workers] for k in range(workers)]


# --- in a worker ---------------------------------------------------------------------------------------------


class _Piped(ResultWriter):
    """A worker's writer: sends its finished records to the run's process, those of one loop turn together."""

    def __init__(self, conn: Connection) -> None:  # no file: the run's process writes
        self.conn = conn
        self._batch: list[Record] = []
        self._scheduled = False

    def write(self, record: Record) -> None:
        self._batch.append(record)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        if self._batch:
            batch, self._batch = self._batch, []
            self.conn.send(("records", batch))

    def close(self) -> None:
        self.flush()


def _watch(loop: asyncio.AbstractEventLoop, conn: Connection, callback: Callable[[], None]) -> None:
    """Call ``callback`` on the loop whenever ``conn`` has a message to read.

    uvloop (libuv) makes a watched descriptor non-blocking, and ``Connection.recv`` would then fail on a message
    that has only partly arrived (a level's share, a batch of records); it is set back to blocking, so a
    read waits for the rest of a message its sender is writing."""
    loop.add_reader(conn.fileno(), callback)
    os.set_blocking(conn.fileno(), True)


def _worker_main(conn: Connection, remote: Remote, index: int, total: int) -> None:
    """A load worker process: sends the shares of the levels it is given until told to exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's: it tells the workers when to stop
    run_async(_serve(conn, remote, index, total))


async def _serve(conn: Connection, remote: Remote, index: int, total: int) -> None:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()
    writer = _Piped(conn)
    async with remote_runner(remote, writer) as runner:
        runner.state = RunState(total=total)

        def receive() -> None:
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the run's process is gone: stop, and exit
                message = ("exit",)
            if message[0] == "level":
                inbox.put_nowait(message)
                return
            runner.stop(RunInterrupted("interrupted"))
            if message[0] == "exit":
                loop.remove_reader(conn.fileno())
                inbox.put_nowait(None)

        _watch(loop, conn, receive)
        gc.collect()
        gc.freeze()  # as Runner.run does: no full collection scanning the setup in the middle of a level
        conn.send(("ready", os.getpid()))
        while (message := await inbox.get()) is not None:
            _, clock, level, items, max_in_flight = message
            failure: tuple[str, str] | None = None
            try:
                if not runner.stopping:
                    await LevelRun(runner, level, clock, worker=index).send(items, max_in_flight)
            except Exception as exc:
                failure = ("RunAborted", f"load worker {index} failed: {type(exc).__name__}: {exc}")
            writer.flush()  # every record of the level goes before its "done"
            stop = runner.state.stop
            if failure is None and stop is not None and not isinstance(stop, RunInterrupted):
                failure = (type(stop).__name__, str(stop))
            conn.send(("done", failure))


# --- in the run's process ------------------------------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    index: int
    process: BaseProcess
    conn: Connection
    ready: asyncio.Future[None]
    done: asyncio.Future[None] | None = None
    alive: bool = True
    records: int = 0


class Spread:
    """The load workers of one target's runner, for the duration of its run: ``send`` sends one level."""

    def __init__(self, load: LoadOptions, remote: Remote, runner: Runner) -> None:
        self.count = load.workers
        self.max_in_flight = load.worker_in_flight
        self.remote = remote
        self.runner = runner
        self.workers: list[_Worker] = []
        self.closing = False  # the workers were told to exit: their pipes closing is no failure

    async def __aenter__(self) -> Spread:
        loop = asyncio.get_running_loop()
        context = multiprocessing.get_context("spawn")
        total = self.runner.state.total
        try:
            for index in range(1, self.count):
                mine, theirs = context.Pipe()
                process = context.Process(target=_worker_main, args=(theirs, self.remote, index, total),
                                          name=f"evalharness-load-{index}", daemon=True)
                process.start()
                theirs.close()
                worker = _Worker(index, process, mine, loop.create_future())
                self.workers.append(worker)
                _watch(loop, mine, functools.partial(self._receive, worker))
            async with asyncio.timeout(READY_TIMEOUT_S):
                await asyncio.gather(*(w.ready for w in self.workers))
        except TimeoutError:
            self._end()
            raise RunAborted(f"load workers did not start within {READY_TIMEOUT_S:g} s") from None
        except BaseException:
            self._end()
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.closing = True
        if kind is None:
            for worker in self.workers:
                if worker.alive:
                    with contextlib.suppress(OSError):
                        worker.conn.send(("exit",))
            deadline = asyncio.get_running_loop().time() + EXIT_TIMEOUT_S
            while any(w.process.is_alive() for w in self.workers) and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(STOP_POLL_S)
        self._end()

    async def send(self, level: Level, items: Share) -> None:
        """Send one level: a share to each worker, this process's own from here, on one clock."""
        loop = asyncio.get_running_loop()
        clock = Clock.now(level, items, LEAD_NS)
        parts = shares(items, self.count)
        for worker, part in zip(self.workers, parts[1:], strict=True):
            worker.done = loop.create_future()
            if part and worker.alive:
                try:
                    worker.conn.send(("level", clock, level, part, self.max_in_flight))
                except OSError:  # it died just now: said as such, and the run stops
                    self._lost(worker)
            if not worker.done.done() and (not worker.alive or not part):
                worker.done.set_result(None)
        relay = asyncio.ensure_future(self._relay_stop())
        try:
            await LevelRun(self.runner, level, clock, worker=0).send(parts[0], self.max_in_flight)
            await asyncio.gather(*(w.done for w in self.workers if w.done is not None))
        finally:
            relay.cancel()

    async def _relay_stop(self) -> None:
        """Tell the workers to stop once the run is told to (Ctrl-C, a failure)."""
        while not self.runner.stopping:
            await asyncio.sleep(STOP_POLL_S)
        for worker in self.workers:
            if worker.alive:
                with contextlib.suppress(OSError):
                    worker.conn.send(("stop",))

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        kind = message[0]
        if kind == "records":
            for record in message[1]:
                self.runner.store(record)
            worker.records += len(message[1])
        elif kind == "done":
            if message[1] is not None:
                self.runner.stop(by_name(*message[1]))
            if worker.done is not None and not worker.done.done():
                worker.done.set_result(None)
        elif kind == "ready" and not worker.ready.done():
            worker.ready.set_result(None)

    def _lost(self, worker: _Worker) -> None:
        """A worker's pipe closed: it exited, or was killed. Mid-run, that stops the run."""
        if not worker.alive:
            return
        asyncio.get_running_loop().remove_reader(worker.conn.fileno())
        worker.alive = False
        if self.closing:
            return
        worker.process.join(1.0)
        code = worker.process.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
        if worker.ready.done():
            reason = (f"load worker {worker.index} (pid {worker.process.pid}) {how} after sending "
                      f"{worker.records} records; the requests it had not recorded are not in the run "
                      "(--resume sends them)")
        else:  # a worker process imports the script that started the run: unguarded, it runs it again
            reason = (f"load worker {worker.index} {how} before it started (a Python script that runs "
                      "evalharness with load.workers must guard its code with if __name__ == '__main__':)")
        self.runner.stop(RunAborted(reason))
        if not worker.ready.done():
            worker.ready.set_exception(RunAborted(reason))
        if worker.done is not None and not worker.done.done():
            worker.done.set_result(None)

    def _end(self) -> None:
        """Stop reading the workers and end those still running."""
        loop = asyncio.get_running_loop()
        for worker in self.workers:
            if worker.alive:
                loop.remove_reader(worker.conn.fileno())
                worker.alive = False
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self.workers:
            worker.process.join(1.0)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1.0)
            worker.conn.close()
