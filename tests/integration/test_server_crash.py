"""The bundled server dies in the middle of a run or a probe: the user is told it died, how, and where its log is."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the server through /proc")

SUITE = """\
name: crash
cases:
  - {id: sea, prompt: Write one sentence about the sea.}
  - {id: capital, prompt: 'What is the capital of France? One word.'}
  - {id: count, prompt: Count from one to five.}
"""
CONFIG = """\
name: crash
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 24}
repeats: 10
run: {concurrency: 1, stream: true, timeout_s: 60, max_retries: 2}
"""
PROBE_CONFIG = "name: crash-probe\ntarget: {kind: local}\nsuites: [suite.yaml]\nrun: {timeout_s: 60}\n"


def no_core_files() -> None:
    """In the harness and so in the server it starts: a SIGSEGV leaves no core file behind."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def start(folder: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "evalharness", *args], cwd=folder, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=no_core_files)


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"exited before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
        time.sleep(0.1)


def server_pid(harness: int) -> int:
    """The pid of the llama-cpp-python server the harness process started."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rpartition(")")[2].split()[1])
            if ppid == harness and b"llama_cpp.server" in (stat.parent / "cmdline").read_bytes():
                return int(stat.parent.name)
        except (OSError, ValueError, IndexError):
            continue  # a process that ended while we looked
    raise AssertionError(f"process {harness} has no llama_cpp.server child")


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV], ids=lambda s: s.name)
def test_a_server_killed_mid_run_is_reported_as_such_and_what_finished_is_kept(tmp_path: Path,
                                                                               sig: signal.Signals) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "config.yaml").write_text(CONFIG)
    results = tmp_path / "run" / "results.jsonl"
    proc = start(tmp_path, "run", "config.yaml", "--out", "run")
    try:
        wait_for(lambda: lines(results) >= 3, proc, "3 finished requests")
        pid = server_pid(proc.pid)
        finished_before = lines(results)
        os.kill(pid, sig)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, stdout + stderr
    assert f"The run stopped early: the local server (pid {pid}) was killed by {sig.name}" in stderr
    assert f"while serving requests; its log: {Path('run') / 'server.log'}\nThe log's last lines:" in stderr
    assert "cannot connect" not in stdout + stderr
    if sig == signal.SIGSEGV:
        assert "Installing without make" in stderr  # a crash: the hint points at the build flags
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert finished_before <= len(records) < 30 and all(r["ok"] for r in records)  # no failure recorded for it
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] is False and f"killed by {sig.name}" in summary["stop_reason"]
    assert f"INCOMPLETE: the local server (pid {pid}) was killed by {sig.name} while serving requests; its log: " \
           f"{Path('run') / 'server.log'}\n" in stdout


def test_a_server_killed_mid_probe_is_reported_as_such(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "config.yaml").write_text(PROBE_CONFIG)
    log = tmp_path / "out" / "server.log"
    proc = start(tmp_path, "probe", "config.yaml", "--out", "out")
    try:
        wait_for(lambda: log.exists() and log.read_text().count("POST /v1/chat/completions") >= 4, proc,
                 "4 answered probe requests")
        pid = server_pid(proc.pid)
        os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 3, stdout + stderr
    assert f"evalharness: error: the local server (pid {pid}) was killed by SIGKILL" in stderr
    assert str(Path("out") / "server.log") in stderr and "cannot connect" not in stderr
    assert not (tmp_path / "out" / "probe.json").exists()  # no verdicts from a probe cut short
