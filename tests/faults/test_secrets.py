"""The API key stays in the environment and the request header: it reaches no file, log or output.

The key is recognisable (``FAKE_KEY``); every file of the run directory, the server's log and everything
the command printed are searched for it, after a rejected key (a server that echoes it back) and after a
successful run.
"""

from __future__ import annotations

from pathlib import Path

from tests.faults.harness import FAKE_KEY, KEY_ENV, CliResult, run_cli, write_config
from tests.faults.proxy import CannedChat, FaultProxy, always

RUN = "{concurrency: 1, max_retries: 2}"


def assert_no_key(result: CliResult, *places: Path) -> None:
    files = [p for place in places for p in ([place] if place.is_file() else sorted(place.rglob("*")))
             if p.is_file()]
    assert any(p.name == "results.jsonl" for p in files) and any(p.name == "report.html" for p in files)
    leaked = [str(p) for p in files if FAKE_KEY.encode() in p.read_bytes()]
    assert leaked == [], f"the API key was written to {leaked}"
    assert FAKE_KEY not in result.out and FAKE_KEY not in result.err


def test_a_rejected_key_is_named_by_its_variable_and_never_stored(tmp_path: Path, canned: CannedChat) -> None:
    with FaultProxy(canned.base_url, always("401")) as proxy:
        config = write_config(tmp_path, proxy.base_url, run=RUN)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert proxy.seen and all(s.authorization == f"Bearer {FAKE_KEY}" for s in proxy.seen)  # it was sent
    assert len(proxy.seen) == 3  # one attempt each: a 401 is not retried
    assert result.code == 3
    assert f"the API key was rejected; set {KEY_ENV}" in result.err
    assert_no_key(result, tmp_path / "run")


def test_a_successful_run_stores_no_key(tmp_path: Path, canned: CannedChat) -> None:
    with FaultProxy(canned.base_url) as proxy:
        config = write_config(tmp_path, proxy.base_url, run=RUN)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    assert all(s.authorization == f"Bearer {FAKE_KEY}" for s in proxy.seen)
    assert_no_key(result, tmp_path / "run")


def test_a_run_against_the_real_server_leaves_no_key_in_its_log(tmp_path: Path,
                                                                 local_model: tuple[str, Path]) -> None:
    base_url, server_log = local_model
    config = write_config(tmp_path, base_url, run=RUN)
    result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    assert_no_key(result, tmp_path / "run", server_log)
