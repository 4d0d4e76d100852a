"""A per_case gate on the bundled model: one case never passes, so the gate fails and names it; pass@k and
pass^k are in summary.json and report.html."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from html import unescape
from pathlib import Path

SUITE = """\
name: flaky
cases:
  - id: anything
    prompt: Say hello.
    expect: {regex: "^"}               # any answer passes
  - id: never
    prompt: Name a colour.
    expect: {contains: zqxj-never-said}  # no answer does
"""

# max_tokens is a default, not a grid axis: the gate's where must still match the run's one cell.
CONFIG = """\
name: per-case
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 4, temperature: 1.0}
repeats: 4
run: {concurrency: 2, stream: true, timeout_s: 60, max_retries: 1}
gates:
  - {metric: pass_rate, per_case: true, min: 0.75, where: {max_tokens: 4}}
"""


def test_a_per_case_gate_fails_naming_the_case_and_pass_k_is_reported(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(SUITE))
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    proc = subprocess.run([sys.executable, "-m", "evalharness", "run", "config.yaml", "--out", "run"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert ("gate FAIL: pass_rate [default] = 0 (n=8) (want each case >= 0.75) 1 of 2 cases fail:\n"
            "  flaky/never 0/4 (0.0%)\n") in proc.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["totals"]["errors"] == 0
    [gate] = summary["gates"]
    assert gate["failing_cases"] == [{"case": "flaky/never", "successes": 0, "n": 4, "value": 0.0}]
    metrics = summary["cells"][0]["metrics"]
    # anything: 4/4 passes, never: 0/4; at k = the 4 repeats, both estimators average 1 and 0.
    for name in ("pass_at_k", "pass_hat_k"):
        assert metrics[name]["k"] == 4 and metrics[name]["value"] == 0.5
    html = unescape((tmp_path / "run" / "report.html").read_text())
    assert "<th>pass@k</th><th>pass^k</th>" in html and "<li>flaky/never 0/4 (0.0%)</li>" in html
