"""`evalharness probe` against the real bundled server: its verdicts must match what this server is known to do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CONFIG = """\
name: probe-local
target: {kind: local}
suites: [suite.yaml]
run: {concurrency: 1, timeout_s: 120, max_retries: 1}
"""
SUITE = "name: s\ncases: [{id: a, prompt: Hi}]\n"


@pytest.fixture(scope="module")
def probed(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("probe")
    (folder / "config.yaml").write_text(CONFIG)
    (folder / "suite.yaml").write_text(SUITE)
    proc = subprocess.run([sys.executable, "-m", "evalharness", "probe", "config.yaml", "--out", "out"],
                          cwd=folder, capture_output=True, text=True, timeout=600)
    return proc, folder / "out"


def verdicts(out: Path) -> dict[str, dict[str, Any]]:
    doc = json.loads((out / "probe.json").read_text())
    assert doc["target"]["kind"] == "local" and doc["target"]["base_url"].startswith("http://127.0.0.1:")
    return {r["parameter"]: r for r in doc["results"]}


def test_probe_succeeds_and_writes_json_html_and_a_table(probed: tuple[subprocess.CompletedProcess[str], Path]
                                                         ) -> None:
    proc, out = probed
    assert proc.returncode == 0, proc.stderr
    header = next(line for line in proc.stdout.splitlines() if line.startswith("parameter"))
    assert header.split() == ["parameter", "verdict", "evidence"]
    assert "<table>" in (out / "probe.html").read_text()
    assert (out / "server.log").exists()
    found = verdicts(out)
    assert all(r["verdict"] in {"honored", "ignored", "rejected", "inconclusive"} and r["evidence"]
               for r in found.values())


@pytest.mark.parametrize(("parameter", "verdict", "evidence"), [
    ("seed", "honored", "identical"),
    ("temperature", "honored", "byte-identically"),
    ("max_tokens", "honored", "5 completion tokens, finish_reason length"),
    ("stop", "honored", "ended the output at"),
    ("top_k", "honored", "greedy output"),
    ("response_format.json_object", "honored", "strict JSON"),
    # llama-cpp-python's request model allows only 'text' and 'json_object'.
    ("response_format.json_schema", "rejected", "Input should be 'text' or 'json_object'"),
    ("logprobs", "honored", "log-probabilities"),
    ("logit_bias", "honored", "banning token"),
    ("tool_choice", "honored", "get_weather"),
    ("frequency_penalty", "honored", "changed the greedy output"),
    ("presence_penalty", "honored", "changed the greedy output"),
    # Its name for it is repeat_penalty; the reference's name does nothing there.
    ("repetition_penalty", "ignored", "repeat_penalty (via extra_body) does change it"),
    ("max_completion_tokens", "ignored", "completion tokens"),
])
def test_verdicts_match_what_this_server_does(probed: tuple[subprocess.CompletedProcess[str], Path],
                                              parameter: str, verdict: str, evidence: str) -> None:
    proc, out = probed
    assert proc.returncode == 0, proc.stderr
    found = verdicts(out)[parameter]
    assert (found["verdict"], evidence in found["evidence"]) == (verdict, True), found
