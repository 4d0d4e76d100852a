"""Targets as an axis, against real servers: the bundled model started by the run (``kind: local``) and a
second server reached as an endpoint (``servers.SECOND_SERVERS``), plus a closed port for a target that is
down. One run of each kind, small: three cases, two repeats, eight tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from evalharness.cli import main
from evalharness.local import free_port
from tests.integration.servers import SECOND_SERVERS

ROOT = Path(__file__).resolve().parents[2]
SUITE = {"path": str(ROOT / "suites" / "determinism.yaml"), "cases": ["capital-france", "arithmetic", "color-sky"]}


@pytest.fixture(scope="module", params=list(SECOND_SERVERS))
def second_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[dict[str, Any]]:
    """A second model server for the module, as the target entry that reaches it."""
    with SECOND_SERVERS[request.param](tmp_path_factory.mktemp("second-server")) as target:
        yield target


def closed_port_target(**extra: Any) -> dict[str, Any]:
    """A target where nothing listens: every request is refused."""
    return {"name": "down", "base_url": f"http://127.0.0.1:{free_port()}/v1", "model": "nothing", **extra}


def write_config(folder: Path, targets: list[dict[str, Any]], gates: list[dict[str, Any]] | None = None) -> Path:
    path = folder / "targets.yaml"
    path.write_text(yaml.safe_dump({
        "name": "targets", "targets": targets, "suites": [SUITE],
        "defaults": {"max_tokens": 8, "temperature": 0, "seed": 42}, "repeats": 2,
        "run": {"concurrency": 1, "timeout_s": 60, "max_retries": 1}, "gates": gates or []}))
    return path


def records_of(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def most_in_flight(records: list[dict[str, Any]]) -> int:
    """The most requests of ``records`` that were in flight at one moment (from their start and e2e time)."""
    events = []
    for r in records:
        start = datetime.fromisoformat(r["started_at"])
        # started_at has millisecond resolution: an interval is trimmed by 2 ms so back-to-back ones do not touch.
        events += [(start + timedelta(milliseconds=2), 1), (start + timedelta(seconds=r["timings"]["e2e_s"]), -1)]
    peak = now = 0
    for _, step in sorted(events):
        now += step
        peak = max(peak, now)
    return peak


def test_two_servers_side_by_side_and_a_target_that_is_down(
        second_server: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = [{"name": "ref", "kind": "local", "n_threads": 1},
               {"name": "second", **second_server, "run": {"concurrency": 2}},
               closed_port_target()]
    gates = [{"metric": "error_rate", "where": {"target": "second"}, "max": 0.0},
             {"metric": "error_rate", "where": {"target": "down"}, "max": 0.0}]
    out = tmp_path / "run"
    code = main(["run", str(write_config(tmp_path, targets, gates)), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 3, printed  # a target that is not optional failed: the run is incomplete
    summary = json.loads((out / "summary.json").read_text())
    status = {t["name"]: t for t in summary["targets"]}
    assert (status["ref"]["status"], status["second"]["status"], status["down"]["status"]) == ("ok", "ok", "failed")
    assert "down" in summary["stop_reason"] and status["down"]["reason"]
    assert "target down: failed" in printed

    # Every grid point on every target; the working targets' cells are whole, the down one's only failed.
    records = records_of(out)
    by_target: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_target.setdefault(r["target"], []).append(r)
    assert [c["params"]["target"] for c in summary["cells"]] == ["ref", "second", "down"]
    assert len(by_target["ref"]) == len(by_target["second"]) == 6
    assert all(r["ok"] for r in by_target["ref"] + by_target["second"])
    assert not any(r["ok"] for r in by_target.get("down", []))

    # Each target's own concurrency: one request at a time on ref, two at once on second.
    assert most_in_flight(by_target["ref"]) == 1
    assert most_in_flight(by_target["second"]) == 2

    # The cross-target comparison: each target against the first, on the paired analysis of cells.
    compared = {c["target"]: c for c in summary["target_comparisons"]}
    assert set(compared) == {"second", "down"} and compared["second"]["reference_target"] == "ref"
    latency = compared["second"]["metrics"]["e2e_s"]
    assert latency["kind"] == "ratio" and latency["n"] > 0 and len(latency["ci95"]) == 2
    assert compared["down"]["metrics"]["error_rate"].get("after") in (None, 1.0)

    # Gates judge the cells of the target their where names, and only those.
    verdicts = {g["gate"]: g for g in summary["gates"]}
    assert verdicts[0]["passed"] and verdicts[0]["label"].startswith("target=second")
    assert not verdicts[1]["passed"]

    html = (out / "report.html").read_text()
    section = html[html.index('<section id="targets">'):html.index('<section id="best">')]
    assert all(name in section for name in ("ref", "second", "down")) and "failed" in section
    assert "second</b> vs ref" in section


def test_optional_targets_that_are_down_or_have_no_key_do_not_fail_the_run(
        second_server: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVALHARNESS_TEST_NO_SUCH_KEY", raising=False)
    targets = [{"name": "second", **second_server},
               closed_port_target(optional=True),
               {"name": "hosted", "base_url": "https://example.invalid/v1", "model": "m", "optional": True,
                "api_key_env": "EVALHARNESS_TEST_NO_SUCH_KEY"}]
    out = tmp_path / "run"
    code = main(["run", str(write_config(tmp_path, targets)), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Target hosted skipped: EVALHARNESS_TEST_NO_SUCH_KEY (its API key) is not set" in printed
    summary = json.loads((out / "summary.json").read_text())
    status = {t["name"]: t["status"] for t in summary["targets"]}
    assert status == {"second": "ok", "down": "failed", "hosted": "skipped"}
    assert summary["complete"] and {c["params"]["target"] for c in summary["cells"]} == {"second", "down"}
