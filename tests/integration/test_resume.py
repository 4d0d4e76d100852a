"""Crash safety with real processes: a run killed with SIGKILL, and one stopped with Ctrl-C, resume to exactly
the planned records, none lost, none duplicated, and nothing already recorded is sent again."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import KEY_ENV, check_records, prompts_by_item, write_config
from tests.faults.proxy import CannedChat, FaultProxy

SUITE = """\
name: resume
cases:
  - {id: colour, prompt: Name a colour.}
  - {id: fruit, prompt: Name a fruit.}
  - {id: animal, prompt: Name an animal.}
"""
LOCAL_CONFIG = """\
name: killed
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 4, temperature: 0}
repeats: 2
run: {concurrency: 1, stream: true, timeout_s: 60, max_retries: 1}
"""


def start(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, KEY_ENV: "unused"}
    return subprocess.Popen([sys.executable, "-m", "evalharness", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen[bytes], timeout: float = 300) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, (out + err).decode(errors="replace")


def complete_lines(run_dir: Path) -> bytes:
    path = run_dir / "results.jsonl"
    raw = path.read_bytes() if path.exists() else b""
    return raw[: raw.rfind(b"\n") + 1]


def wait_for_records(proc: subprocess.Popen[bytes], run_dir: Path, n: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while complete_lines(run_dir).count(b"\n") < n:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {n} records were written: {finish(proc)[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {n} records within {timeout} s")
        time.sleep(0.05)


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def server_port(run_dir: Path) -> int:
    """The port of the local server a run started (from its manifest)."""
    base_url = json.loads((run_dir / "manifest.json").read_text())["target"]["base_url"]
    return int(base_url.split(":")[2].split("/")[0])


def kill_server_on(port: int) -> None:
    """Kill a llama.cpp server left listening on ``port`` (found by its command line)."""
    for proc_dir in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            args = (proc_dir / "cmdline").read_bytes().split(b"\0")
            if b"llama_cpp.server" in args and str(port).encode() in args:
                os.kill(int(proc_dir.name), signal.SIGKILL)


@pytest.fixture
def local_run(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "config.yaml").write_text(LOCAL_CONFIG)
    yield tmp_path
    if (tmp_path / "run" / "manifest.json").exists():  # whatever happened, leave no server behind
        kill_server_on(server_port(tmp_path / "run"))


def test_a_run_killed_with_sigkill_resumes_to_exactly_the_planned_records(local_run: Path) -> None:
    run_dir, config = local_run / "run", local_run / "config.yaml"
    planned = prompts_by_item(config)
    proc = start("run", str(config), "--out", str(run_dir), cwd=local_run)
    wait_for_records(proc, run_dir, 2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    before = complete_lines(run_dir)
    n_before = before.count(b"\n")
    assert 2 <= n_before < len(planned), "the run finished before it could be killed"

    # The bundled server dies with the harness instead of lingering on its port.
    port = server_port(run_dir)
    deadline = time.monotonic() + 15
    while port_open(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not port_open(port), "the local server outlived the killed harness"

    log_before = (run_dir / "server.log").stat().st_size
    code, output = finish(start("run", str(config), "--resume", str(run_dir), cwd=local_run))
    assert code == 0, output
    assert f"{len(planned) - n_before} requests ({n_before} already done)" in output

    after = (run_dir / "results.jsonl").read_bytes()
    assert after.startswith(before)  # what was stored before the kill is untouched
    records = [json.loads(line) for line in after.splitlines()]
    ids = [r["item_id"] for r in records]
    assert sorted(ids) == sorted(planned)  # every planned item once: none lost, none duplicated
    assert all(r["ok"] for r in records)
    # The resumed run sent only the items that had no record.
    resumed_log = (run_dir / "server.log").read_bytes()[log_before:]
    assert resumed_log.count(b"POST /v1/chat/completions") == len(planned) - n_before
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is True and summary["totals"]["requests"] == len(planned)


def test_ctrl_c_finishes_in_flight_requests_reports_incomplete_exits_3_and_resumes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # Paced so the nine requests take a couple of seconds: long enough to be interrupted midway.
    with CannedChat(chunk_delay_s=0.1) as canned, FaultProxy(canned.base_url) as proxy:
        config = write_config(tmp_path, proxy.base_url, run="{concurrency: 2, stream: true}",
                              extra="repeats: 3\n")
        proc = start("run", str(config), "--out", str(run_dir), cwd=tmp_path)
        wait_for_records(proc, run_dir, 1, timeout=60)
        proc.send_signal(signal.SIGINT)
        code, output = finish(proc, timeout=60)
        assert code == 3, output
        assert "Resume it with" in output
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["complete"] is False and "interrupted" in summary["stop_reason"]
        html = (run_dir / "report.html").read_text()
        assert "incomplete run" in html.lower() and "interrupted" in html
        stopped = complete_lines(run_dir).count(b"\n")
        # Both in-flight requests finished and were stored: nothing was sent that is not on record.
        assert stopped == len(proxy.seen) < 9

        code, output = finish(start("run", str(config), "--resume", str(run_dir), cwd=tmp_path), timeout=60)
        assert code == 0, output
    check_records(run_dir, config, proxy.attempts_by_prompt())  # each item sent once, over both parts
    assert len(proxy.seen) == 9
    assert json.loads((run_dir / "summary.json").read_text())["complete"] is True
