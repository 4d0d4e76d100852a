"""Suites from CSV and Parquet files run against the bundled model, and a broken row is named by file and line
before anything is sent."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROWS = [{"id": "france", "q": "What is the capital of France?", "ref": "Paris"},
        {"id": "italy", "q": "What is the capital of Italy?", "ref": "Rome"}]
SUITE = """\
name: {name}
dataset: {{path: {path}}}
case:
  id: "{{{{ row.id }}}}"
  prompt: "{{{{ row.q }}}} One word."
  expect: {{contains: "{{{{ row.ref }}}}"}}
"""
CONFIG = """\
name: from-files
target: {kind: local}
suites: [csv_suite.yaml, parquet_suite.yaml]
defaults: {max_tokens: 4, temperature: 0}
run: {concurrency: 1, max_retries: 0}
"""


def evalharness(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "evalharness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_csv_and_parquet_suites_run_with_a_case_per_row(tmp_path: Path) -> None:
    with (tmp_path / "rows.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "q", "ref"])
        writer.writeheader()
        writer.writerows(ROWS)
    pq.write_table(pa.Table.from_pylist(ROWS), tmp_path / "rows.parquet")
    (tmp_path / "csv_suite.yaml").write_text(SUITE.format(name="from_csv", path="rows.csv"))
    (tmp_path / "parquet_suite.yaml").write_text(SUITE.format(name="from_parquet", path="rows.parquet"))
    (tmp_path / "config.yaml").write_text(CONFIG)

    proc = evalharness("run", "config.yaml", "--out", "run", cwd=tmp_path)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 1: no gates here, so only a crash fails it
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert sorted((r["suite"], r["case_id"]) for r in records) == [
        ("from_csv", "france"), ("from_csv", "italy"), ("from_parquet", "france"), ("from_parquet", "italy")]
    assert all(r["ok"] for r in records), [r["error"] for r in records]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    # Each row's template became the case the model was asked and checked against.
    assert manifest["cases"]["from_parquet/italy"]["expect"]["contains"] == "Rome"
    assert (tmp_path / "run" / "report.html").is_file()


def test_a_row_that_breaks_its_template_is_named_by_file_and_line(tmp_path: Path) -> None:
    lines = [json.dumps(ROWS[0]), json.dumps({"id": "broken", "question": "no q field"})]
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "csv_suite.yaml").write_text(SUITE.format(name="from_jsonl", path="rows.jsonl"))
    (tmp_path / "config.yaml").write_text(CONFIG.replace("suites: [csv_suite.yaml, parquet_suite.yaml]",
                                                         "suites: [csv_suite.yaml]"))
    proc = evalharness("run", "config.yaml", "--out", "run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "rows.jsonl" in proc.stderr and "line 2" in proc.stderr, proc.stderr
    assert not (tmp_path / "run" / "results.jsonl").exists()  # nothing was sent
