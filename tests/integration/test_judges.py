"""A JSONL-driven suite graded by the bundled model as its own judge: judgements stored as they come, a run
killed while judging resumes without asking again for what was judged, `report` re-scores from the stored
judgements alone, an unparsable verdict is never a pass, and the judge's agreement is reported.

The bundled model is a weak judge; these tests check the mechanics, not its verdicts.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalharness.judging import attach_judged
from evalharness.scoring.catalogue.builtin import passed
from evalharness.scoring.metrics import CaseSpec
from evalharness.store import read_records
from tests.integration.test_resume import finish, kill_server_on, server_port, start

ROWS = [{"id": "capital", "q": "What is the capital of France?", "ref": "Paris", "judge": "default"},
        {"id": "sum", "q": "What is 2 + 2?", "ref": "4", "judge": "default"},
        {"id": "colour", "q": "What colour is the sky on a clear day?", "ref": "blue", "judge": "default"},
        {"id": "opposite", "q": "What is the opposite of hot?", "ref": "cold", "judge": "chatty"}]
SUITE = """\
name: graded
dataset: {path: rows.jsonl}
case:
  id: "{{ row.id }}"
  prompt: "{{ row.q }} Answer in a few words."
  expect: {judge: {rubric: "The answer says {{ row.ref }}.", judge: "{{ row.judge }}"}}
"""
# Short replies fit in 16 tokens; "chatty" is asked for prose, so none of its replies is a JSON verdict.
JUDGE = ('Question: {{ question }}\nAnswer: {{ answer }}\nRubric: {{ rubric }}\n'
         'Reply {"pass": true} or {"pass": false}.\n')
CHATTY = "Question: {{ question }}\nAnswer: {{ answer }}\nSay in one short sentence what you think of it.\n"
CONFIG = """\
name: judged
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 8, temperature: 0}
repeats: 2
run: {concurrency: 1, stream: true, timeout_s: 60, max_retries: 1}
judges:
  default: {target: target, repeats: 3, template: judge.j2, params: {temperature: 1, max_tokens: 16}}
  chatty: {target: target, repeats: 3, template: chatty.j2, params: {max_tokens: 8, response_format: null}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (tmp_path / "suite.yaml").write_text(SUITE)
    (tmp_path / "judge.j2").write_text(JUDGE)
    (tmp_path / "chatty.j2").write_text(CHATTY)
    (tmp_path / "config.yaml").write_text(CONFIG)
    yield tmp_path
    if (tmp_path / "run" / "manifest.json").exists():  # whatever happened, leave no server behind
        kill_server_on(server_port(tmp_path / "run"))


def lines(path: Path) -> list[bytes]:
    raw = path.read_bytes() if path.exists() else b""
    return raw[: raw.rfind(b"\n") + 1].splitlines()


def posts(log: bytes) -> int:
    return log.count(b"POST /v1/chat/completions")


def test_judged_run_killed_while_judging_resumes_and_report_rescores_without_calls(project: Path) -> None:
    run_dir, config = project / "run", project / "config.yaml"
    judgements = run_dir / "judgements.jsonl"
    proc = start("run", str(config), "--out", str(run_dir), cwd=project)
    deadline = time.monotonic() + 240
    while len(lines(judgements)) < 3:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before judging three answers: {finish(proc)[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no three judgements within 240 s")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    kill_server_on(server_port(run_dir))
    before = lines(judgements)
    assert len(lines(run_dir / "results.jsonl")) == 8  # the target had answered everything

    log_before = (run_dir / "server.log").stat().st_size
    code, output = finish(start("run", str(config), "--resume", str(run_dir), cwd=project))
    assert code in (0, 1), output
    after = lines(judgements)
    assert after[: len(before)] == before  # what was judged before the kill is untouched
    keys = [json.loads(x)["key"] for x in after]
    assert len(keys) == len(set(keys))  # no judgement was asked for twice
    # The resumed run sent nothing to the target, and to the judge only what was not stored.
    assert posts((run_dir / "server.log").read_bytes()[log_before:]) == len(after) - len(before)

    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = summary["cells"][0]["metrics"]
    assert summary["judges"]["requests"] == len(after) and summary["judges"]["prompt_tokens"] > 0
    assert summary["totals"]["requests"] == 8  # judge calls are not the target's requests
    agreement, kappa = metrics["judge_agreement"], metrics["judge_kappa"]
    assert agreement["n"] == 8 and 0.0 <= agreement["value"] <= 1.0
    assert kappa["value"] is not None or "one category" in kappa["reason"]

    # The chatty judge never gives a JSON verdict: each of its samples is unparsable, and fails.
    manifest = json.loads((run_dir / "manifest.json").read_text())
    records = read_records(run_dir)
    attach_judged(manifest, records, {json.loads(x)["key"]: json.loads(x) for x in after})
    spec = CaseSpec.from_manifest(manifest["cases"]["graded/opposite"])
    chatty = [r for r in records if r["case_id"] == "opposite"]
    assert [r["judged"][0]["verdict"] for r in chatty] == ["unparsable", "unparsable"]
    assert [passed(r, spec) for r in chatty] == [0.0, 0.0]

    stored, log_size = judgements.read_bytes(), (run_dir / "server.log").stat().st_size
    done = subprocess.run([sys.executable, "-m", "evalharness", "report", str(run_dir)], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    rescored = json.loads((run_dir / "summary.json").read_text())
    assert rescored["cells"][0]["metrics"]["pass_rate"] == metrics["pass_rate"]
    assert rescored["cells"][0]["metrics"]["judge_kappa"] == kappa
    assert judgements.read_bytes() == stored and (run_dir / "server.log").stat().st_size == log_size
    assert "Judges:" in (run_dir / "summary.md").read_text()
