"""A whole evaluation against a backend written in Python: config → plan → run → store → score → gate → report,
with no HTTP server and no HTTP client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import evalharness
from evalharness import backend as kinds
from evalharness import runner as runner_mod

SUITE = """\
name: echo
cases:
  - id: paris
    prompt: Paris is the capital of France.
    expect: {contains: Paris}
  - id: json
    prompt: '{"answer": 42}'
    expect: {json_schema: {type: object, required: [answer]}}
  - id: berlin
    prompt: Berlin
    expect: {contains: Paris}
"""
# Nothing listens on port 9 (discard): a request that went over HTTP would fail, not pass.
CONFIG: dict[str, Any] = {
    "name": "echo", "target": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "echo-1"},
    "suites": ["suite.yaml"], "repeats": 2, "grid": {"temperature": [0, 1.0]},
    "pricing": {"currency": "USD", "input_per_1k": 1.0, "output_per_1k": 2.0},
    "run": {"concurrency": 2, "max_retries": 2},
    "gates": [{"metric": "pass_rate", "min": 0.6}, {"metric": "error_rate", "max": 0.0}],
}


class Echo:
    """Answers with the prompt; when ``flaky``, the first request for each prompt and temperature is a 503."""

    def __init__(self, *, flaky: bool = False, status: int | None = None) -> None:
        self.flaky = flaky
        self.status = status  # every answer an HTTP error with this status
        self.bodies: list[dict[str, Any]] = []
        self.closed = 0

    async def complete(self, body: dict[str, Any]) -> evalharness.Outcome:
        self.bodies.append(body)
        prompt = body["messages"][-1]["content"]
        if self.status is not None:
            return evalharness.Outcome(ok=False, status=self.status, error_kind=kinds.HTTP,
                                       error=f"HTTP {self.status}: no key")
        if self.flaky and [(b["messages"][-1]["content"], b["temperature"]) for b in self.bodies].count(
                (prompt, body["temperature"])) == 1:
            return evalharness.Outcome(ok=False, status=503, error_kind=kinds.HTTP, error="HTTP 503: busy")
        return evalharness.Outcome(ok=True, status=200, content=prompt, finish_reason="stop", e2e_s=0.02,
                                   usage={"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})

    async def aclose(self) -> None:
        self.closed += 1


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_mod, "BACKOFF_BASE_S", 0.0)


def run(tmp_path: Path, backend: Echo, **overrides: Any) -> evalharness.Run:
    (tmp_path / "suite.yaml").write_text(SUITE, encoding="utf-8")
    return evalharness.run(CONFIG, base_dir=tmp_path, out=tmp_path / "run", backend=backend,
                           overrides=overrides or None)


def test_a_python_backend_runs_a_whole_evaluation(tmp_path: Path) -> None:
    echo = Echo(flaky=True)
    result = run(tmp_path, echo)
    # Every planned request reached the backend, retried through the seam like any target's.
    assert len(echo.bodies) == 2 * 3 * 2 + 6 and echo.closed == 1
    assert {b["model"] for b in echo.bodies} == {"echo-1"}
    assert sorted({b["temperature"] for b in echo.bodies}) == [0, 1.0]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] is True and summary["stop_reason"] is None
    assert summary["target"] == {"kind": "python", "base_url": "python:tests.unit.test_backend.Echo",
                                 "model": "echo-1"}
    assert summary["totals"]["requests"] == 12 and summary["totals"]["errors"] == 0
    assert summary["totals"]["cost"] == pytest.approx(12 * (10 * 1.0 + 5 * 2.0) / 1000)
    for cell in summary["cells"]:
        metrics = cell["metrics"]
        assert metrics["pass_rate"]["value"] == pytest.approx(4 / 6)  # berlin never says Paris
        assert metrics["schema_valid_rate"]["value"] == 1.0
        assert metrics["retries"]["value"] == 3 and metrics["error_rate"]["value"] == 0.0
    assert summary["passed"] is True and result.passed
    markdown = (tmp_path / "run" / "summary.md").read_text()
    assert "against **echo-1**: 12/12 requests, 0 errors" in markdown and "✅ passed" in markdown
    html = (tmp_path / "run" / "report.html").read_text()
    assert "target <b>echo-1</b> at python:tests.unit.test_backend.Echo" in html
    assert not (tmp_path / "run" / "server.log").exists()


def test_a_backend_that_refuses_everything_stops_the_run_with_the_usual_reason(tmp_path: Path) -> None:
    echo = Echo(status=401)
    result = run(tmp_path, echo, run={"concurrency": 1})
    assert not result.complete and echo.closed == 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"].startswith("the first 5 requests all failed the same way: HTTP 401: no key — "
                                             "the API key was rejected")
    assert summary["totals"]["requests"] == 5


def test_a_budget_stop_reads_as_before(tmp_path: Path) -> None:
    # Each request reserves its worst case (a high prompt estimate + max_tokens): 0.1 USD is one request.
    result = run(tmp_path, Echo(), run={"concurrency": 1, "budget": 0.1}, defaults={"max_tokens": 40})
    assert not result.complete
    assert result.stop_reason is not None
    assert result.stop_reason.startswith("budget: the next request could push spend past the budget of 0.1 USD")
    assert result.stop_reason.endswith("raise run.budget to go on")
