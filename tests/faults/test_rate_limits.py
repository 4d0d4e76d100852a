"""Rate limits as servers and gateways say them, injected by the proxy into a real ``evalharness run``:
every common header is waited out (no longer than ``run.max_retry_wait_s``) and on record.

The first attempt at one item gets a 429; its record must name the header, the wait it asked for and the
wait taken, and the retry's ``queue_s`` must hold that wait (sleeps never end early; the upper bound only
guards against waiting far too long, with room for a busy machine).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import check_records, run_cli, write_config
from tests.faults.proxy import CannedChat, FaultProxy, on_first_attempt

SLACK_S = 10.0


def retried_attempts(run_dir: Path, config: Path, proxy: FaultProxy) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two attempts of the one item that was rate-limited."""
    records = check_records(run_dir, config, proxy.attempts_by_prompt())
    (record,) = [r for r in records.values() if len(r["attempts"]) == 2]
    assert all(r["ok"] for r in records.values())
    assert record["timings"]["queue_s"] == record["attempts"][1]["queue_s"]
    first, second = record["attempts"]
    return first, second


@pytest.mark.parametrize(("fault", "header", "asked"), [
    ("429", "retry-after", 1.0),
    ("429-date", "retry-after", None),  # an HTTP-date about 2 s ahead, to the second
    ("429-ms", "retry-after-ms", 1.5),
    ("429-reset-requests", "x-ratelimit-reset-requests", 1.2),  # not the 6m0s of the tokens, not exhausted
    ("429-reset-tokens", "x-ratelimit-reset-tokens", 0.8),
    ("429-litellm", "llm_provider-retry-after", 1.0),
])
def test_each_rate_limit_header_is_waited_out_and_recorded(
        tmp_path: Path, canned: CannedChat, fault: str, header: str, asked: float | None) -> None:
    with FaultProxy(canned.base_url, on_first_attempt(fault)) as proxy:
        config = write_config(tmp_path, proxy.base_url, run="{concurrency: 1, max_retries: 1, max_retry_wait_s: 5}")
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err
    first, second = retried_attempts(tmp_path / "run", config, proxy)
    assert first["status"] == 429 and first["retry_after_header"] == header
    if asked is None:
        assert 0.5 <= first["retry_after_s"] <= 2.5
    else:
        assert first["retry_after_s"] == pytest.approx(asked)
    assert first["wait_s"] == pytest.approx(first["retry_after_s"], abs=1e-3)
    assert first["wait_s"] - 0.01 <= second["queue_s"] <= first["wait_s"] + SLACK_S


def test_a_wait_longer_than_the_cap_is_cut_to_it_and_both_are_recorded(tmp_path: Path, canned: CannedChat) -> None:
    with FaultProxy(canned.base_url, on_first_attempt("429-long")) as proxy:
        config = write_config(tmp_path, proxy.base_url, run="{concurrency: 1, max_retries: 1, max_retry_wait_s: 1.5}")
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err
    first, second = retried_attempts(tmp_path / "run", config, proxy)
    assert (first["retry_after_s"], first["wait_s"]) == (600.0, 1.5)
    assert 1.49 <= second["queue_s"] <= 1.5 + SLACK_S


def test_a_gateways_rate_limit_in_front_of_the_real_model_is_waited_out(
        tmp_path: Path, local_model: tuple[str, Path]) -> None:
    base_url, _ = local_model
    with FaultProxy(base_url, on_first_attempt("429-litellm", bodies=3)) as proxy:
        config = write_config(tmp_path, proxy.base_url, run="{concurrency: 2, max_retries: 1, timeout_s: 60}")
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err
    records = check_records(tmp_path / "run", config, proxy.attempts_by_prompt())
    for record in records.values():
        first, second = record["attempts"]
        assert (first["retry_after_header"], first["wait_s"]) == ("llm_provider-retry-after", 1.0)
        assert "Model rpm limit reached" in first["error"]
        assert second["queue_s"] >= 0.99 and record["ok"] and record["content"]
