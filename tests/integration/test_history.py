"""History against the real bundled model: four runs of one config, the third with a broken prompt (its
template reverses the word the case expects), and ``evalharness history`` marks that run and no other.

Kept lean: one server for all four runs, 6 cases × 2 repeats of at most 16 tokens at temperature 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import evalharness
from evalharness.local import MODEL_ALIAS, local_server

WORDS = ["banana", "apple", "orange", "river", "guitar", "window"]
SUITE = "name: echo\ncases:\n" + "".join(
    f"  - id: {w}\n    prompt: 'Repeat this word: {{{{ word{{FILTER}} }}}}'\n    vars: {{word: {w}}}\n"
    f"    expect: {{contains: {w}}}\n" for w in WORDS)


def config(base_url: str) -> dict[str, Any]:
    return {"name": "echo", "target": {"base_url": base_url, "model": MODEL_ALIAS}, "suites": ["suite.yaml"],
            "defaults": {"max_tokens": 16}, "grid": {"temperature": [0]}, "repeats": 2,
            "run": {"concurrency": 1, "stream": True, "timeout_s": 60, "max_retries": 1},
            "gates": [{"metric": "pass_rate", "min": 0.5}]}


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("history")
    for name, template in (("good", ""), ("bad", " | reverse")):
        (root / name).mkdir()
        (root / name / "suite.yaml").write_text(SUITE.replace("{FILTER}", template))
    folder = root / "reports" / "echo"
    with local_server(root / "server.log") as server:
        for k, suite in enumerate(["good", "good", "bad", "good"]):
            run = evalharness.run(config(server.base_url), base_dir=root / suite, out=folder / f"run-{k + 1}")
            assert run.complete and run.passed == (suite == "good"), [g.message for g in run.gates]
    made = cli("history", str(folder), cwd=root)
    assert made.returncode == 0, made.stdout + made.stderr
    compared = cli("compare", str(folder / "run-2"), str(folder / "run-3"), "--format", "markdown", cwd=root)
    return {"folder": folder, "stdout": made.stdout, "json": json.loads((folder / "history.json").read_text()),
            "markdown": compared}


def test_the_broken_run_is_the_one_marked(history: dict[str, Any]) -> None:
    runs = history["json"]["runs"]
    assert [Path(r["run_dir"]).name for r in runs] == ["run-1", "run-2", "run-3", "run-4"]
    assert [bool(r["regressions"]) for r in runs] == [False, False, True, False]
    [regression] = [r for r in runs[2]["regressions"] if not r.get("case")]
    assert (regression["metric"], regression["cell"], regression["before"], regression["after"]) == (
        "pass_rate", "temperature=0", 1.0, 0.0)
    assert regression["against"] == runs[1]["run_id"]
    assert [r["passed"] for r in runs] == [True, True, False, True]
    assert history["stdout"].startswith("4 runs, 1 with a failed gate, 1 with a regression against the run before")
    html = (history["folder"] / "history.html").read_text()
    assert html.count('<circle class="mark"') == 1 and 'href="run-3/report.html"' in html


def test_the_markdown_comparison_of_the_broken_run_fails_and_leads_with_it(history: dict[str, Any]) -> None:
    proc = history["markdown"]
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("### ❌ evalharness echo: ") and "regression" in lines[0]
    assert any(line.startswith("| temperature=0 | `pass_rate` | 100.0% | 0.0% | -100.0 pts |") for line in lines)
    assert proc.stdout.index("`pass_rate`") < proc.stdout.index("<details>")
    print(proc.stdout)  # docs/ci.md shows this comparison (pytest -s prints it)
