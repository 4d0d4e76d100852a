"""What a user reads when the bundled server dies or never answers, with stand-in server processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import evalharness.local as local
from evalharness.errors import TargetCrashed, TargetUnavailable
from evalharness.local import LocalServer, free_port, log_tail

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals are POSIX")

Start = Callable[[str], tuple[subprocess.Popen[bytes], Path]]

# A stand-in for the server: writes a few log lines, then does what the test says.
SERVER = """\
import os, signal, sys, time
for i in range(30):
    print(f"log line {i}", flush=True)
action = sys.argv[1]
if action == "grammar":
    print("parse: error parsing grammar: unknown escape at \\\\d", flush=True)
    print("failed to parse grammar", flush=True)
if action in ("segv", "grammar"):
    os.kill(os.getpid(), signal.SIGSEGV)
elif action == "exit":
    sys.exit(1)
time.sleep(60)
"""


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    procs: list[subprocess.Popen[bytes]] = []

    def go(action: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = tmp_path / "server.log"
        with log.open("ab") as out:
            # No core file: the crash is what is tested, not the machine's core-dump settings.
            proc = subprocess.Popen([sys.executable, "-c", "import resource; resource.setrlimit("
                                     "resource.RLIMIT_CORE, (0, 0)); exec(open(0).read())", action],
                                    stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
        assert proc.stdin is not None
        proc.stdin.write(SERVER.encode())
        proc.stdin.close()
        procs.append(proc)
        return proc, log

    yield go
    for proc in procs:
        proc.kill()
        proc.wait()


def crash_of(proc: subprocess.Popen[bytes], log: Path) -> str:
    proc.wait(timeout=30)
    with pytest.raises(TargetCrashed) as info:
        asyncio.run(LocalServer(proc, "http://127.0.0.1:1/v1", log).check())
    return str(info.value)


def test_a_server_killed_by_sigsegv_is_named_with_its_log_and_the_build_hint(start: Start) -> None:
    proc, log = start("segv")
    message = crash_of(proc, log)
    lines = message.splitlines()
    assert lines[0] == f"the local server (pid {proc.pid}) was killed by SIGSEGV while serving requests; its log: {log}"
    assert "    log line 29" in lines and "    log line 10" in lines and "    log line 9" not in lines
    assert "cannot connect" not in message
    assert 'Hint: a crash inside llama.cpp\'s CPU backend' in message and "Installing without make" in message


def test_a_crash_on_a_request_schema_points_at_the_schema_not_the_build(start: Start) -> None:
    proc, log = start("grammar")
    message = crash_of(proc, log)
    assert "was killed by SIGSEGV" in message and "unknown escape at \\d" in message
    assert "Hint: the server died on a grammar it made from a request's JSON Schema" in message
    assert "[0-9]" in message and "Installing without make" not in message


def test_a_server_that_exits_is_named_with_its_exit_code(start: Start) -> None:
    proc, log = start("exit")
    message = crash_of(proc, log)
    assert "exited with code 1 while serving requests" in message and "log line 29" in message
    assert "Installing without make" not in message  # not a crash: the build is not to blame


def test_a_live_server_passes_the_check(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "DEATH_GRACE_S", 0.2)
    proc, log = start("sleep")
    asyncio.run(LocalServer(proc, "http://127.0.0.1:1/v1", log).check())
    assert proc.poll() is None


def test_a_server_that_dies_while_starting_is_a_crash(start: Start) -> None:
    proc, log = start("segv")
    with pytest.raises(TargetCrashed, match="was killed by SIGSEGV while starting") as info:
        local._wait_ready(f"http://127.0.0.1:{free_port()}/v1", proc, 30, log)
    assert str(log) in str(info.value)


def test_startup_timeout_names_the_setting_and_shows_the_log(start: Start) -> None:
    proc, log = start("sleep")
    with pytest.raises(TargetUnavailable) as info:
        local._wait_ready(f"http://127.0.0.1:{free_port()}/v1", proc, 2, log)
    message = str(info.value)
    assert not isinstance(info.value, TargetCrashed)  # it is alive, just not answering
    assert "did not answer within 2 s (target.startup_timeout_s)" in message
    assert str(log) in message and "    log line 29" in message


def test_log_tail_of_a_long_log_shows_only_whole_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i} " + "x" * 100 + "\n" for i in range(2000)))
    tail = log_tail(log, lines=3).splitlines()
    assert [t.split()[1] for t in tail] == ["1997", "1998", "1999"]
    assert log_tail(tmp_path / "missing.log") == "    (no log)"
