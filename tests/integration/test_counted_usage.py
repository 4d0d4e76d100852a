"""The bundled server sends no usage in streams: tokens and cost are counted with its own tokenizer.

The server is started here (not by the run), so that after the run the stored counts can be checked
against what its tokenizer says about the very texts the run stored.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from evalharness.local import MODEL_ALIAS, local_server

SUITE = """\
name: mini
cases:
  - id: capital
    system: Answer in one word.
    prompt: What is the capital of France?
  - id: sea
    prompt: Write one sentence about the sea.
"""

CONFIG = """\
name: counted
target: {{base_url: "{base_url}", model: {model}}}
pricing: {{currency: CNY, input_per_1k: 0.0005, output_per_1k: 0.00175}}
suites: [suite.yaml]
defaults: {{max_tokens: 16, temperature: 0}}
repeats: 2
run: {{concurrency: 2, stream: true, timeout_s: 60, max_retries: 1}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    with local_server(log) as local:
        yield local.base_url


@pytest.fixture(scope="module")
def counted_run(server: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("counted")
    (folder / "suite.yaml").write_text(textwrap.dedent(SUITE))
    (folder / "config.yaml").write_text(CONFIG.format(base_url=server, model=MODEL_ALIAS))
    proc = subprocess.run([sys.executable, "-m", "evalharness", "run", str(folder / "config.yaml"),
                           "--out", str(folder / "run")], cwd=folder, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return folder / "run", proc.stdout


def records(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def tokenize(server: str, text: str) -> list[int]:
    root = server.removesuffix("/v1")
    response = httpx.post(root + "/extras/tokenize", json={"input": text, "model": MODEL_ALIAS}, timeout=30)
    response.raise_for_status()
    tokens: list[int] = response.json()["tokens"]
    return tokens


def test_every_record_has_counted_usage(counted_run: tuple[Path, str]) -> None:
    rows = records(counted_run[0])
    assert len(rows) == 4 and all(r["ok"] for r in rows)
    for r in rows:
        assert r["usage_source"] == "counted"
        assert r["usage"]["prompt_tokens"] > 0 and r["usage"]["completion_tokens"] > 0
        assert r["usage_count"] == {"endpoint": "/extras/tokenize/count", "prompt_estimated": True}
        assert r["cost"] == pytest.approx(r["usage"]["prompt_tokens"] / 1000 * 0.0005
                                          + r["usage"]["completion_tokens"] / 1000 * 0.00175)


def test_counted_completion_tokens_are_what_the_server_tokenizer_says(server: str,
                                                                       counted_run: tuple[Path, str]) -> None:
    bos = len(tokenize(server, ""))  # the endpoint starts every text as a prompt; generated text has no BOS
    for r in records(counted_run[0]):
        assert r["usage"]["completion_tokens"] == len(tokenize(server, r["content"])) - bos


def test_summary_and_reports_mark_the_figures_as_counted(counted_run: tuple[Path, str]) -> None:
    run_dir, stdout = counted_run
    summary = json.loads((run_dir / "summary.json").read_text())
    totals = summary["totals"]
    assert totals["usage_source"] == "counted" and totals["prompt_tokens_estimated"] is True
    assert totals["completion_tokens"] > 0 and totals["cost"] > 0
    [cell] = summary["cells"]
    for name in ("prompt_tokens", "completion_tokens", "cost", "cost_per_1k_requests"):
        assert cell["metrics"][name]["source"] == "counted", name
    assert cell["metrics"]["tpot_s"]["source"] == "counted"  # it divides by the counted tokens
    assert "counted with the server's tokenizer" in stdout and "(counted)" in stdout
    assert "counted with the server" in (run_dir / "summary.md").read_text()
    assert "(counted)" in (run_dir / "report.html").read_text()
    csv_header, first = (run_dir / "results.csv").read_text().splitlines()[:2]
    assert "usage_source" in csv_header.split(",") and ",counted," in first
