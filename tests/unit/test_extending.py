"""docs/extending.md runs as written: its metric, check and backend, then an evaluation that uses all three."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalharness.scoring import catalogue, registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text(encoding="utf-8"), flags=re.S | re.M)


@pytest.fixture
def docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
         ) -> Iterator[dict[str, Any]]:
    """The page's namespace after running every Python block in order, in a folder holding its suite
    (``printed``: what the blocks printed)."""
    [suite] = blocks("yaml")
    (tmp_path / "suite.yaml").write_text(suite, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "extending_docs"}
    try:
        for code in blocks("python"):
            exec(compile(code, str(DOC), "exec"), namespace)
        namespace["printed"] = capsys.readouterr().out
        yield namespace
    finally:
        if catalogue.get("short_answer_rate"):
            catalogue.unregister("short_answer_rate")
        registry._REGISTRY.pop("at_most_words", None)


def test_the_page_has_a_metric_a_check_a_backend_and_a_run() -> None:
    assert len(blocks("python")) == 4 and len(blocks("yaml")) == 1


def test_the_run_on_the_page_passes_with_the_new_metric_and_check(docs: dict[str, Any]) -> None:
    assert docs["printed"].strip() == "True 1.0 2"
    run = docs["run"]
    assert run.summary["target"]["kind"] == "python"
    assert run.summary["cells"][0]["checks"]["at_most_words"]["passed"] == 2
    assert "<th>short</th>" in (run.run_dir / "report.html").read_text()  # a column of the metrics table


def test_the_same_pieces_fail_a_long_answer(docs: dict[str, Any]) -> None:
    evalharness = docs["evalharness"]
    config = {"name": "long", "target": {"base_url": "http://127.0.0.1:9/v1", "model": "canned"},
              "suites": ["suite.yaml"], "repeats": 2, "gates": [{"metric": "short_answer_rate", "min": 1.0}]}
    run = evalharness.run(config, backend=docs["Canned"]("Paris is the capital of France."))
    assert run.passed is False
    assert run.cells[0].metric("short_answer_rate").value == 0.0
    assert run.cells[0].metric("pass_rate").value == 0.0
    assert "6 words, want at most 3" in run.cases[0].message
