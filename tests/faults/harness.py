"""Helpers for tests that run the real ``evalharness run`` against a proxy: write a config, run, check records."""

from __future__ import annotations

import contextlib
import io
import json
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalharness.cli import main
from evalharness.config import load_config
from evalharness.plan import make_plan
from evalharness.store import read_superseded

KEY_ENV = "EVALHARNESS_TEST_API_KEY"
FAKE_KEY = "sk-FAKE-KEY-abcdef0123456789abcdef"

SUITE = """\
name: faults
cases:
  - {id: alpha, prompt: Name a colour.}
  - {id: beta, prompt: Name a fruit.}
  - {id: gamma, prompt: Name an animal.}
"""


def write_config(folder: Path, base_url: str, *, run: str, extra: str = "", suite: str = SUITE) -> Path:
    """A config in ``folder`` aimed at ``base_url``, with the three-case suite beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "suite.yaml").write_text(textwrap.dedent(suite), encoding="utf-8")
    path = folder / "config.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: faults
        target: {{base_url: "{base_url}", model: smollm2-135m-instruct, api_key_env: {KEY_ENV}}}
        pricing: {{currency: CNY, input_per_1k: 0.001, output_per_1k: 0.002}}
        suites: [suite.yaml]
        defaults: {{max_tokens: 8, temperature: 0}}
        run: {run}
        """) + textwrap.dedent(extra), encoding="utf-8")
    return path


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    """``evalharness ARGS`` in this process, with its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return CliResult(code, out.getvalue(), err.getvalue())


def stored_records(run_dir: Path) -> list[dict[str, Any]]:
    raw = (run_dir / "results.jsonl").read_bytes()
    assert raw.endswith(b"\n"), "results.jsonl ends with a torn line"
    return [json.loads(line) for line in raw.splitlines()]


def prompts_by_item(config: Path) -> dict[str, str]:
    """Each planned item id and the prompt it sends."""
    return {item.item_id: str(item.messages[-1]["content"]) for item in make_plan(load_config(config)).items}


def check_records(run_dir: Path, config: Path, sent: Counter[str]) -> dict[str, dict[str, Any]]:
    """Exactly the planned items, each once, with as many attempts on record as requests reached the server.

    ``sent`` counts the requests that arrived per prompt. Returns the records by case id (the last repeat).
    """
    records = stored_records(run_dir)
    planned = prompts_by_item(config)
    ids = [r["item_id"] for r in records]
    duplicated = [i for i, n in Counter(ids).items() if n > 1]
    lost = sorted(set(planned) - set(ids))
    assert not duplicated, f"duplicated records: {duplicated}"
    assert not lost, f"lost records: {lost}"
    assert set(ids) == set(planned)
    # Repeats of a case send identical requests, so attempts are compared per prompt.
    recorded: Counter[str] = Counter()
    # Failed records a resume set aside (and sent again) still account for the requests they made.
    for record in records + read_superseded(run_dir):
        recorded[planned[record["item_id"]]] += len(record["attempts"])
    assert recorded == sent, "attempts on record differ from the requests that reached the server"
    return {r["case_id"]: r for r in records}
