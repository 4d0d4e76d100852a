"""Checks of your own against the bundled model: one by file path beside the suite and one an installed
package offers through the ``evalharness.checks`` entry point group, both in summary.json, report.html and
junit.xml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from html import unescape
from pathlib import Path

SUITE = """\
name: own
cases:
  - id: hello
    prompt: Say hello.
    expect: {python: "checks.py:judged", check: answered}
  - id: colour
    prompt: Name a colour.
    expect: {python: {fn: "checks.py:judged", args: {fail: true}}, check: answered}
"""

CHECKS = """\
import evalharness

def judged(answer, case):
    # Deterministic whatever the model says: the colour case always fails, with a reason.
    if case.args.get("fail"):
        return evalharness.CheckResult(False, reason=f"{case.case_id} is marked to fail")
    return True
"""

CONFIG = """\
name: own-checks
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 8, temperature: 0}
repeats: 2
run: {concurrency: 2, stream: true, timeout_s: 60, max_retries: 1}
"""


def _package(site: Path) -> None:
    """An installed distribution (as pip leaves one) whose entry point offers the check ``answered``."""
    (site / "answered_check").mkdir(parents=True)
    (site / "answered_check" / "__init__.py").write_text(
        "def answered(answer, case):\n"
        "    return 1.0 if isinstance(answer, str) and case.content is not None else 0.0\n")
    info = site / "answered_check-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: answered-check\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[evalharness.checks]\nanswered = answered_check:answered\n")


def test_a_file_check_and_an_entry_point_check_show_in_every_output(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(textwrap.dedent(SUITE))
    (tmp_path / "checks.py").write_text(CHECKS)
    (tmp_path / "config.yaml").write_text(textwrap.dedent(CONFIG))
    _package(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path / "site"),
                                                                      os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-m", "evalharness", "run", "config.yaml", "--out", "run"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = tmp_path / "run"

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["totals"]["errors"] == 0
    [cell] = summary["cells"]
    assert {name: (t["kind"], t["runs"], t["passed"], t["errors"]) for name, t in cell["checks"].items()} == {
        "checks.py:judged": ("python", 4, 2, 0), "answered": ("check", 4, 4, 0)}
    assert cell["metrics"]["pass_rate"]["value"] == 0.5
    by_name = {c["check"]: c for c in summary["checks"]}
    assert by_name["checks.py:judged"]["path"] == str((tmp_path / "checks.py").resolve())
    assert by_name["answered"]["source"] == "entry point answered_check:answered of answered-check 0.1"
    assert all(c["status"] == "ok" for c in summary["checks"])

    html = unescape((run_dir / "report.html").read_text())
    assert "Checks of your own" in html and "entry point answered_check:answered" in html
    assert "checks.py:judged: colour is marked to fail" in html
    junit = unescape((run_dir / "junit.xml").read_text())
    assert 'message="2 of 2 samples failed: checks.py:judged: colour is marked to fail"' in junit

    # report re-scores on its own, in a process that has neither the package nor the suite loaded.
    proc = subprocess.run([sys.executable, "-m", "evalharness", "report", "run"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    again = json.loads((run_dir / "summary.json").read_text())
    assert again["cells"][0]["checks"] == cell["checks"]
