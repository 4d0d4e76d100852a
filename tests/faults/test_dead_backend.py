"""The backend behind a gateway dies in the middle of a run: the run ends within seconds, says why, resumes.

The gateway here is the fault proxy, which answers ``HTTP 500 … Connection error.`` once its upstream is
gone, as LiteLLM's proxy does (tests/integration/test_gateway.py does the same through LiteLLM itself).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from evalharness import runner
from tests.faults.harness import run_cli, stored_records, write_config
from tests.faults.proxy import CannedChat, FaultProxy, Seen

CASES = 40
SUITE = "name: many\ncases:\n" + "".join(f"  - {{id: c{i}, prompt: Question {i}.}}\n" for i in range(CASES))
RUN = "{concurrency: 2, stream: true, timeout_s: 5, max_retries: 3}"
ANSWERED = 6  # requests the backend answers before it dies


def test_a_backend_that_dies_mid_run_ends_it_with_exit_3_naming_the_cause_and_resume_finishes(
        tmp_path: Path) -> None:
    backend = CannedChat(chunk_delay_s=0.01).start()
    died_at: list[float] = []

    def kill_after_some(seen: Seen) -> None:
        if seen.index == ANSWERED:
            died_at.append(time.monotonic())
            threading.Thread(target=backend.stop).start()

    with FaultProxy(backend.base_url, kill_after_some) as gateway:
        config = write_config(tmp_path, gateway.base_url, suite=SUITE, run=RUN)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
        ended = time.monotonic()
        assert result.code == 3, result.out + result.err
        assert died_at and ended - died_at[0] < 10, "the run went on long after the backend died"
        assert "target unreachable" in result.err and "Connection error" in result.err
        assert "--resume" in result.err
        assert "INCOMPLETE: target unreachable" in result.out
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["complete"] is False and "target unreachable" in summary["stop_reason"]
        records = stored_records(tmp_path / "run")
        assert len(records) < CASES
        # Far fewer requests than every item's retries: the run stopped instead of retrying each item.
        assert len(gateway.seen) < ANSWERED + 20

        with CannedChat() as revived:
            gateway.point_at(revived.base_url)
            resumed = run_cli("run", str(config), "--resume", str(tmp_path / "run"))
    assert resumed.code == 0, resumed.out + resumed.err
    records = stored_records(tmp_path / "run")
    assert len(records) == CASES and all(r["ok"] for r in records)
    assert len({r["item_id"] for r in records}) == CASES


def test_a_short_outage_that_passes_before_the_check_does_not_stop_the_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "BACKOFF_BASE_S", 0.01)  # six retries of one item need not take seconds
    with CannedChat() as backend, FaultProxy(backend.base_url) as gateway:
        # Five requests in a row are cut off (a restart), then the gateway answers again, the check too.
        gateway.script = lambda seen: "reset" if 2 <= seen.index < 7 else None
        config = write_config(tmp_path, gateway.base_url, suite=SUITE, run="{concurrency: 1, max_retries: 6}")
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err
    records = stored_records(tmp_path / "run")
    assert len(records) == CASES and all(r["ok"] for r in records)
    assert any(s.prompt == "Say OK." for s in gateway.seen), "the target was never checked"
