"""A config run as 3 shards against the bundled model, merged with ``evalharness merge``: the merged summary is the
summary of one run over the same records, and agrees with a real unsharded run on what does not vary."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SUITE = """\
name: mini
cases:
  - {id: capital, prompt: 'What is the capital of France? One word.', expect: {contains: Paris}}
  - {id: json, prompt: 'Reply with JSON: {"a": 1}', expect: {json_valid: true}}
  - {id: colour, prompt: Name a colour., expect: {regex: "^"}}
"""
CONFIG = """\
name: sharded
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 8}
grid: {seed: [null, 7]}
repeats: 2
run: {concurrency: 2, stream: true, timeout_s: 60, max_retries: 1}
gates:
  - {metric: error_rate, max: 0.0}
"""


def evalharness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def summary(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "summary.json").read_text()))


def test_three_shards_merge_into_the_run_of_their_records(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(SUITE))
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    for k in (1, 2, 3):
        proc = evalharness("run", "config.yaml", "--shard", f"{k}/3", "--out", f"shard{k}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"(shard {k}/3): 4 requests" in proc.stdout
    # A shard missing, then one given twice: refused, nothing written.
    proc = evalharness("merge", "shard1", "shard3", "--out", "merged", cwd=tmp_path)
    assert proc.returncode == 2 and "shard 2/3 missing" in proc.stderr
    proc = evalharness("merge", "shard1", "shard2", "shard2", "shard3", "--out", "merged", cwd=tmp_path)
    assert proc.returncode == 2 and "shard 2/3 is given 2 times" in proc.stderr
    assert not (tmp_path / "merged").exists()

    proc = evalharness("merge", "shard1", "shard2", "shard3", "--out", "merged", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    merged = summary(tmp_path / "merged")
    records = [json.loads(line) for k in (1, 2, 3) for line in (tmp_path / f"shard{k}" / "results.jsonl").open()]
    assert len(records) == len({r["item_id"] for r in records}) == merged["totals"]["requests"] == 12

    # One unsharded run; then its records swapped for the shards' and scored again by evalharness report.
    proc = evalharness("run", "config.yaml", "--out", "alone", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    alone = summary(tmp_path / "alone")
    for cell, other in zip(alone["cells"], merged["cells"], strict=True):
        for name in ("requests", "errors", "error_rate", "prompt_tokens"):
            assert cell["metrics"][name]["value"] == other["metrics"][name]["value"], name
    rows = (tmp_path / "alone" / "results.jsonl").read_text().splitlines()
    assert len(rows) == 12
    (tmp_path / "alone" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(records)))
    proc = evalharness("report", "alone", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rescored = summary(tmp_path / "alone")
    assert rescored["cells"] == merged["cells"]
    assert rescored["totals"] == merged["totals"]
    assert rescored["gates"] == merged["gates"]
