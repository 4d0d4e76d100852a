"""``load.workers: 2``: one open-loop schedule sent by two processes against the server of known capacity
(tests/load/known_server.py). Every planned request is recorded exactly once, each worker sends every other
request on one shared clock, the level keeps its rate, and a worker killed mid-level stops the run, which
``--resume`` then completes without sending anything twice.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import evalharness
from tests.load.known_server import running

ROOT = Path(__file__).resolve().parents[2]
RATES, DURATION_S, WARMUP_S = [20.0, 60.0], 2.0, 0.25
SUITE = "name: known\ncases:\n  - {id: a, prompt: Say ok.}\n  - {id: b, prompt: Hi.}\n"


@pytest.fixture(scope="module")
def known_server() -> Iterator[str]:
    with running(4, 0.05, 0.002) as url:
        yield url


def _config(url: str, load: dict[str, Any]) -> dict[str, Any]:
    return {"name": "workers", "suites": ["suite.yaml"],
            "target": {"base_url": url, "model": "known-capacity", "api_key_env": None},
            "defaults": {"max_tokens": 8}, "run": {"stream": True, "max_retries": 0, "timeout_s": 30},
            "load": {"seed": 5, "max_in_flight": 1024, "arrival": "constant", "workers": 2, **load}}


def _records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def spread(known_server: str, tmp_path_factory: pytest.TempPathFactory
           ) -> tuple[evalharness.Run, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("spread")
    (folder / "suite.yaml").write_text(SUITE)
    run = evalharness.run(_config(known_server, {"rate": RATES, "duration_s": DURATION_S, "warmup_s": WARMUP_S}),
                          base_dir=folder, out=folder / "run")
    return run, _records(run.run_dir)


def test_every_planned_request_is_recorded_once_by_one_of_the_workers(
        spread: tuple[evalharness.Run, list[dict[str, Any]]]) -> None:
    run, records = spread
    assert run.complete and run.stop_reason is None
    planned = sum(round(rate * DURATION_S) + round(rate * WARMUP_S) for rate in RATES)
    ids = [r["item_id"] for r in records]
    assert len(ids) == len(set(ids)) == planned
    assert all(r["ok"] for r in records)
    assert Counter(r["load_worker"] for r in records).keys() == {0, 1}


def test_the_workers_share_one_schedule_every_other_request_each(
        spread: tuple[evalharness.Run, list[dict[str, Any]]]) -> None:
    run, records = spread
    for rate in RATES:
        [cell] = [c for c in run.cells if c.params["rate"] == rate]
        mine = sorted((r for r in records if r["cell_id"] == cell.cell_id), key=lambda r: r["load_clock"]["due_s"])
        # The level's schedule as one process would send it: evenly spaced at 1/rate, dealt alternately.
        due = [r["load_clock"]["due_s"] for r in mine]
        assert due == pytest.approx([i / rate for i in range(len(mine))], abs=1e-6)
        assert [r["load_worker"] for r in mine] == [i % 2 for i in range(len(mine))]
        # One clock: each worker sends when due (never early), on the wall clock as on the level's.
        assert all(r["schedule_lag_s"] >= 0 for r in mine)
        for worker in (0, 1):
            lags = sorted(r["schedule_lag_s"] for r in mine if r["load_worker"] == worker)
            assert lags[len(lags) // 2] < 0.02, (rate, worker, lags[-5:])
        sent = [datetime.fromisoformat(r["sent_at"]).timestamp() for r in mine]
        gaps = [b - a for a, b in itertools.pairwise(sent)]
        assert sum(gaps) / len(gaps) == pytest.approx(1 / rate, rel=0.05)
        assert cell["achieved_rate_rps"].value == pytest.approx(rate, rel=0.05)


def _children(pid: int) -> list[int]:
    """The load workers of the run process ``pid`` (multiprocessing's spawned children)."""
    found = []
    for proc_dir in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError):
            stat = (proc_dir / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid and b"spawn_main" in (proc_dir / "cmdline").read_bytes():
                found.append(int(proc_dir.name))
    return found


def _run_cli(*args: str, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "evalharness", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            start_new_session=True)


def _wait_for(run_dir: Path, proc: subprocess.Popen[bytes], worker: int, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    path = run_dir / "results.jsonl"
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        lines = path.read_bytes().splitlines() if path.exists() else []
        if sum(json.loads(line).get("load_worker") == worker for line in lines[:-1]) >= n:
            return
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"worker {worker} recorded fewer than {n} records in {timeout} s")


@pytest.mark.parametrize("how", ["kill a worker", "ctrl-c"])
def test_a_stopped_run_resumes_to_exactly_the_planned_records(known_server: str, tmp_path: Path, how: str) -> None:
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "config.yaml").write_text(json.dumps(_config(known_server, {"rate": [20], "requests": 160})))
    run_dir = tmp_path / "run"
    proc = _run_cli("run", "config.yaml", "--out", str(run_dir), cwd=tmp_path)
    _wait_for(run_dir, proc, worker=1, n=10)
    [child] = _children(proc.pid)
    if how == "kill a worker":
        os.kill(child, signal.SIGKILL)
    else:
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: to every process; the workers ignore it
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err.decode()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False
    if how == "kill a worker":
        assert "load worker 1" in summary["stop_reason"] and "killed by signal 9" in summary["stop_reason"]
    else:
        assert summary["stop_reason"].startswith("interrupted"), summary["stop_reason"]
    assert not Path(f"/proc/{child}").exists()  # no worker left behind
    before = _records(run_dir)
    assert 10 < len(before) < 160 and len({r["item_id"] for r in before}) == len(before)

    resumed = _run_cli("run", "config.yaml", "--resume", str(run_dir), cwd=tmp_path)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err.decode()
    after = _records(run_dir)
    assert len(after) == len({r["item_id"] for r in after}) == 160  # none lost, none doubled
    assert after[: len(before)] == before  # what was recorded stays, and is not sent again
