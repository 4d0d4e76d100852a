"""Every suite we ship runs on the bundled model: no case's request body takes the server down."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

SUITES = sorted((Path(__file__).parents[2] / "suites").glob("*.yaml"))

# One sample of every case, cut short (a grid axis wins over a case's own max_tokens): what is tested is
# that the server takes each body (tools, schemas, formats), not what the model answers.
CONFIG = {
    "name": "shipped-suites",
    "target": {"kind": "local"},
    "suites": [str(path) for path in SUITES],
    "grid": {"max_tokens": [12]},
    "repeats": 1,
    "run": {"concurrency": 1, "stream": True, "timeout_s": 120, "max_retries": 0},
    # Suites with model-graded checks need a judge: the bundled model, once, as briefly.
    "judges": {"default": {"target": "target", "params": {"max_tokens": 12}}},
}


def test_every_shipped_suite_runs_once_and_the_server_answers_every_case(tmp_path: Path) -> None:
    assert len(SUITES) >= 7, SUITES
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    proc = subprocess.run([sys.executable, "-m", "evalharness", "run", str(config), "--out", "run"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    planned = json.loads((tmp_path / "run" / "manifest.json").read_text())["plan"]["requests"]
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert len(records) == planned
    failed = {f"{r['suite']}/{r['case_id']}": r["error"] for r in records if not r["ok"]}
    assert failed == {}
    assert {r["suite"] for r in records} == {yaml.safe_load(p.read_text())["name"] for p in SUITES}
