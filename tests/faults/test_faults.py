"""Each fault a real API throws, injected by a proxy into a real ``evalharness run``: the run rides it out.

Retryable faults hit the first attempt at two of three items; those items must end ok after one retry,
with the fault on record. Faults that are not worth retrying become one error record with its kind. In
every case results.jsonl holds exactly the planned items, none lost, none duplicated, and each item's
attempts match the requests that reached the proxy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.faults.harness import check_records, run_cli, write_config
from tests.faults.proxy import CannedChat, FaultProxy, Seen, on_first_attempt

# timeout_s bounds the 'slow' fault; the canned server answers in milliseconds.
RUN = "{concurrency: 2, stream: true, timeout_s: 2, max_retries: 2}"


@pytest.mark.parametrize(("fault", "kind", "status", "says"), [
    ("429", "http_error", 429, "rate limited"),
    ("429-date", "http_error", 429, "rate limited"),
    ("500", "http_error", 500, "bad moment"),
    ("502-html", "http_error", 502, "HTML page"),
    ("503", "http_error", 503, "bad moment"),
    ("reset", "stream_broken", None, "connection lost"),
    ("slow", "timeout", None, "timed out"),
    ("disconnect", "stream_broken", 200, "connection lost"),
    ("no-done", "stream_incomplete", 200, "without [DONE]"),
])
def test_a_transient_fault_is_retried_and_every_item_ends_ok(
        tmp_path: Path, canned: CannedChat, fault: str, kind: str, status: int | None, says: str) -> None:
    with FaultProxy(canned.base_url, on_first_attempt(fault, bodies=2)) as proxy:
        config = write_config(tmp_path, proxy.base_url, run=RUN)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err
    records = check_records(tmp_path / "run", config, proxy.attempts_by_prompt())
    assert all(r["ok"] for r in records.values())
    retried = [r for r in records.values() if len(r["attempts"]) == 2]
    assert len(retried) == 2 and len(records) == 3
    for record in retried:
        first, last = record["attempts"]
        assert (first["error_kind"], first["status"]) == (kind, status), first
        assert says in first["error"]
        assert last["error_kind"] is None and last["status"] == 200
        assert record["content"].startswith("echo: Name")
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] is True and summary["totals"]["errors"] == 0


@pytest.mark.parametrize(("fault", "wait_min", "wait_max"), [("429", 1.0, 1.0), ("429-date", 0.5, 2.5)])
def test_retry_after_is_honoured_in_seconds_and_as_an_http_date(
        tmp_path: Path, canned: CannedChat, fault: str, wait_min: float, wait_max: float) -> None:
    with FaultProxy(canned.base_url, on_first_attempt(fault)) as proxy:
        config = write_config(tmp_path, proxy.base_url, run="{concurrency: 1, max_retries: 1}")
        assert run_cli("run", str(config), "--out", str(tmp_path / "run")).code == 0
    records = check_records(tmp_path / "run", config, proxy.attempts_by_prompt())
    (waited,) = [r["attempts"][0]["wait_s"] for r in records.values() if len(r["attempts"]) == 2]
    # Without Retry-After the first backoff is drawn from [0, 0.5] s.
    assert wait_min <= waited <= wait_max


@pytest.mark.parametrize(("fault", "says"), [("bad-json", "not JSON"), ("html-200", "HTML page")])
def test_a_garbled_answer_is_one_error_record_counted_by_kind_in_the_report(
        tmp_path: Path, canned: CannedChat, fault: str, says: str) -> None:
    with FaultProxy(canned.base_url, on_first_attempt(fault)) as proxy:
        config = write_config(tmp_path, proxy.base_url, run=RUN)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err  # bad answers are data: the run completes
    records = check_records(tmp_path / "run", config, proxy.attempts_by_prompt())
    (bad,) = [r for r in records.values() if not r["ok"]]
    assert bad["error_kind"] == "invalid_json" and says in bad["error"]
    assert len(bad["attempts"]) == 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["totals"]["errors_by_kind"] == {"invalid_json": 1}
    html = (tmp_path / "run" / "report.html").read_text()
    assert "errors by kind" in html.lower() and "invalid_json × 1" in html
    assert "invalid_json × 1" in result.out


def test_a_server_that_always_fails_stops_the_run_early_and_it_resumes(tmp_path: Path, canned: CannedChat) -> None:
    suite = "name: many\ncases:\n" + "".join(f"  - {{id: c{i}, prompt: Question {i}.}}\n" for i in range(8))
    with FaultProxy(canned.base_url, lambda seen: "503") as proxy:
        config = write_config(tmp_path, proxy.base_url, suite=suite,
                              run="{concurrency: 1, max_retries: 1, timeout_s: 5}")
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 3
    assert "failed the same way" in result.err and "--resume" in result.err
    stopped = len((tmp_path / "run" / "results.jsonl").read_text().splitlines())
    assert stopped < 8
    with FaultProxy(canned.base_url) as healed:
        config = write_config(tmp_path, healed.base_url, suite=suite, run="{concurrency: 1, max_retries: 1}")
        assert run_cli("run", str(config), "--resume", str(tmp_path / "run")).code == 0
    # The resume sends the failed items again and the rest for the first time: each of the 8 once.
    assert sum(healed.attempts_by_prompt().values()) == 8
    merged = proxy.attempts_by_prompt() + healed.attempts_by_prompt()
    records = check_records(tmp_path / "run", config, merged)
    assert all(r["ok"] for r in records.values())
    superseded = (tmp_path / "run" / "superseded.jsonl").read_text().splitlines()
    assert len(superseded) == stopped


def test_the_real_model_rides_out_faults_behind_the_proxy(tmp_path: Path, local_model: tuple[str, Path]) -> None:
    base_url, _ = local_model
    faults = {0: "disconnect", 1: "503", 2: "no-done"}

    def script(seen: Seen) -> str | None:
        return faults.get(seen.body_no) if seen.attempt == 1 else None

    with FaultProxy(base_url, script) as proxy:
        config = write_config(tmp_path, proxy.base_url, run="{concurrency: 1, timeout_s: 60, max_retries: 2}")
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err
    records = check_records(tmp_path / "run", config, proxy.attempts_by_prompt())
    kinds = sorted(r["attempts"][0]["error_kind"] for r in records.values())
    assert kinds == ["http_error", "stream_broken", "stream_incomplete"]
    assert all(r["ok"] and r["content"] for r in records.values())
