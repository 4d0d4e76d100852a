"""The Ray executor against the bundled model: a run on a local Ray with 2 workers, one of them killed mid-run,
completes with every planned record exactly once (the dead worker's unfinished items run on a new worker)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from evalharness import api
from evalharness.progress import Progress

if importlib.util.find_spec("ray") is None and not os.environ.get("CI"):  # CI installs it: never skipped there
    pytest.skip("the Ray executor needs the ray extra: pip install -e '.[ray]'", allow_module_level=True)
import ray

SUITE = """\
name: mini
cases:
  - {id: capital, prompt: 'What is the capital of France? One word.', expect: {contains: Paris}}
  - {id: colour, prompt: Name a colour., expect: {regex: "^"}}
  - {id: count, prompt: 'Count: 1, 2, 3,', expect: {regex: "^"}}
"""
CONFIG = """\
name: onray
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 8}
grid: {temperature: [0.0, 0.7]}
repeats: 4
run: {concurrency: 2, stream: true, timeout_s: 60, max_retries: 1, executor: ray, ray_workers: 2}
"""


def lines(path: Path) -> int:
    return sum(1 for _ in path.open()) if path.exists() else 0


def test_a_killed_worker_loses_and_doubles_nothing(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(SUITE))
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    run_dir = tmp_path / "run"
    said = io.StringIO()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["run"] = api.run(tmp_path / "config.yaml", out=run_dir,
                                     progress=Progress(enabled=False, announce=said))
        except BaseException as exc:  # surfaced by the assertions below
            outcome["error"] = exc

    # The run uses the Ray already initialised in its process, so the test can reach its actors.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        driver = threading.Thread(target=run)
        driver.start()
        deadline = time.monotonic() + 120
        while lines(run_dir / "results.jsonl") < 2 and driver.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                       if a["name"].startswith("evalharness-"))
        assert names, "no Ray worker is running"
        victim = ray.get_actor(names[0])
        pid = ray.get(victim.pid.remote())
        ray.kill(victim, no_restart=True)
        driver.join(timeout=180)
        assert not driver.is_alive()
    finally:
        ray.shutdown()
    assert "error" not in outcome, outcome.get("error")
    finished = outcome["run"]
    assert "Ray: 2 workers, each at concurrency 1" in said.getvalue()
    assert "Ray worker 1 died; its " in said.getvalue(), said.getvalue()
    assert finished.complete and finished.stop_reason is None
    records = [json.loads(line) for line in (run_dir / "results.jsonl").open()]
    planned = json.loads((run_dir / "manifest.json").read_text())["plan"]["requests"]
    assert planned == 24
    assert len(records) == len({r["item_id"] for r in records}) == planned
    assert all(r["ok"] for r in records), [r["error"] for r in records if not r["ok"]]
    assert finished.summary["totals"]["requests"] == planned
    assert pid != os.getpid()


def test_executor_ray_on_the_command_line_starts_a_local_ray(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(SUITE))
    config = CONFIG.replace(", executor: ray, ray_workers: 2", "").replace("repeats: 4", "repeats: 1")
    (tmp_path / "config.yaml").write_text(textwrap.dedent(config))
    proc = subprocess.run([sys.executable, "-m", "evalharness", "run", "config.yaml", "--executor", "ray",
                           "--out", "run"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Ray: 2 workers, each at concurrency 1" in proc.stdout
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").open()]
    assert len(records) == len({r["item_id"] for r in records}) == 6
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["run"]["executor"] == "ray"
