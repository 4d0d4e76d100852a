"""The API key stays in the environment and the request header: it reaches no file, log or output; nor does
the password of a proxy, which comes from the proxy's URL and goes into its Proxy-Authorization header only.

The key is recognisable (``FAKE_KEY``); every file of the run directory, the server's log and everything
the command printed are searched for it, after a rejected key (a server that echoes it back) and after a
successful run.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.faults.forward_proxy import ONLY_THE_PROXY_KNOWS, ForwardProxy
from tests.faults.harness import FAKE_KEY, KEY_ENV, CliResult, run_cli, stored_records, write_config
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


PROXY_PASSWORD = "proxy-PASSWORD-0123456789"


def assert_no_proxy_password(result: CliResult, run_dir: Path) -> None:
    """Neither the proxy's password nor its Basic token is in any file of the run or in the output."""
    token = base64.b64encode(f"user:{PROXY_PASSWORD}".encode())
    files = [p for p in sorted(run_dir.rglob("*")) if p.is_file()]
    assert any(p.name == "manifest.json" for p in files) and any(p.name == "results.jsonl" for p in files)
    leaked = [str(p) for p in files if PROXY_PASSWORD.encode() in p.read_bytes() or token in p.read_bytes()]
    assert leaked == [], f"the proxy's password was written to {leaked}"
    for text in (result.out, result.err):
        assert PROXY_PASSWORD not in text and token.decode() not in text


@pytest.mark.parametrize("where", ["environment", "config"])
def test_a_proxys_credentials_come_from_its_url_and_are_never_stored(tmp_path: Path, canned: CannedChat,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     where: str) -> None:
    with ForwardProxy(auth=("user", PROXY_PASSWORD)) as proxy:
        base_url = f"http://{ONLY_THE_PROXY_KNOWS}:{canned.port}/v1"
        config = write_config(tmp_path, base_url, run=RUN)
        if where == "config":
            config.write_text(config.read_text().replace("api_key_env:", f'proxy: "{proxy.url}", api_key_env:'))
        else:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.err
    assert proxy.hops and all(hop.credentials == f"user:{PROXY_PASSWORD}" for hop in proxy.hops)
    assert "through the proxy http://user:***@127.0.0.1:" in result.out
    assert_no_proxy_password(result, tmp_path / "run")


def test_a_proxy_that_wants_credentials_says_so(tmp_path: Path, canned: CannedChat,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    with ForwardProxy(auth=("user", PROXY_PASSWORD)) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url_without_credentials)
        config = write_config(tmp_path, f"https://{ONLY_THE_PROXY_KNOWS}:{canned.port}/v1", run=RUN)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 3
    assert proxy.hops and not any(hop.allowed for hop in proxy.hops)
    errors = {record["error"] for record in stored_records(tmp_path / "run")}
    assert all("407" in e and "put them in the proxy URL" in e for e in errors), errors
