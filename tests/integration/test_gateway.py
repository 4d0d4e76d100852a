"""Through a real gateway: LiteLLM's proxy on loopback in front of the bundled model's server.

A run and a probe go through it; a wrong key, an rpm limit and a backend that dies behind it are what a
user of a gateway meets. The gateway's own key check needs no database: its master key is set.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalharness.local import LocalServer, local_server
from tests.faults.harness import CliResult, run_cli
from tests.integration.gateway import MASTER_KEY, Gateway, litellm_command

pytestmark = pytest.mark.skipif(litellm_command() is None, reason="needs the gateway extra: pip install -e "
                                                                  "'.[gateway]' (make test does)")

KEY_ENV = "EVALHARNESS_GATEWAY_KEY"
SUITE = """\
name: gw
cases:
  - {id: sea, prompt: Write one sentence about the sea.}
  - {id: capital, prompt: 'What is the capital of France? One word.'}
"""


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    with local_server(tmp_path_factory.mktemp("backend") / "server.log") as server:
        yield server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, backend: LocalServer) -> Iterator[Gateway]:
    with Gateway(tmp_path_factory.mktemp("gateway"), backend.base_url) as gw:
        yield gw


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, MASTER_KEY)


def write(folder: Path, gateway: Gateway, *, model: str = "smollm2", repeats: int = 2, run: str = "",
          suite: str = SUITE, target: str = "") -> Path:
    (folder / "suite.yaml").write_text(suite, encoding="utf-8")
    config = folder / "config.yaml"
    config.write_text(textwrap.dedent(f"""\
        name: gateway
        target: {{base_url: "{gateway.base_url}", model: {model}, api_key_env: {KEY_ENV}{target}}}
        suites: [suite.yaml]
        defaults: {{max_tokens: 16, temperature: 0}}
        repeats: {repeats}
        run: {run or "{concurrency: 2, stream: true, timeout_s: 60, max_retries: 1}"}
        """), encoding="utf-8")
    return config


def records(run_dir: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def test_a_run_through_the_gateway_completes_and_its_usage_is_checked_with_the_models_tokenizer(
        tmp_path: Path, gateway: Gateway, backend: LocalServer) -> None:
    # The gateway passes no tokenize endpoint on: the model server's own is named for the usage check.
    root = backend.base_url.removesuffix("/v1")
    config = write(tmp_path, gateway, target=f', tokenizer_url: "{root}"')
    result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err
    stored = records(tmp_path / "run")
    assert len(stored) == 4 and all(r["ok"] and r["content"] for r in stored)
    assert all(r["usage_source"] == "server" for r in stored)  # streamed usage, as the gateway sent it
    check = json.loads((tmp_path / "run" / "summary.json").read_text())["totals"]["usage_check"]
    assert check["sample"] == 4 and check["endpoint"] == "/extras/tokenize/count"
    # LiteLLM's streamed completion counts come within a few percent of the model's (its prompt counts do
    # not, but a prompt counted without the chat template cannot show that): nothing to flag here.
    assert check["completion_tokens"]["counted"] > 0
    assert ("usage looks estimated by a gateway" in result.out) is check["estimated_by_gateway"]


def test_without_a_tokenizer_behind_the_gateway_usage_is_not_checked(tmp_path: Path, gateway: Gateway) -> None:
    result = run_cli("run", str(write(tmp_path, gateway, repeats=1)), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["totals"]["usage_check"] is None
    assert "usage looks estimated" not in result.out


def test_a_probe_through_the_gateway_prints_as_many_rows_as_it_says(tmp_path: Path, gateway: Gateway) -> None:
    result = run_cli("probe", str(write(tmp_path, gateway)), "--out", str(tmp_path / "probe"))
    assert result.code == 0, result.out + result.err
    doc = json.loads((tmp_path / "probe" / "probe.json").read_text())
    rows = doc["results"]
    assert f"{len(rows)} parameters" in result.out
    table = result.out.split("evidence\n", 1)[1]
    assert sum(line.startswith(tuple(r["parameter"] + " " for r in rows)) for line in table.splitlines()) \
        == len(rows)
    (bias,) = [r for r in rows if r["parameter"] == "logit_bias"]
    # The gateway hides the backend's tokenizer: the probe says so and how to reach one.
    assert bias["verdict"] == "inconclusive" and "/extras/tokenize" in bias["evidence"]
    assert "target.tokenizer_url" in bias["evidence"]


def test_a_wrong_key_stops_the_run_with_what_the_gateway_said(tmp_path: Path, gateway: Gateway,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-wrong-key-0000000000")
    result = run_cli("run", str(write(tmp_path, gateway)), "--out", str(tmp_path / "run"))
    assert result.code == 3, result.out + result.err
    assert "No connected db" in result.err  # LiteLLM without a database says so for any key but its master key
    assert "target unreachable" not in result.err
    assert "sk-wrong-key-0000000000" not in (tmp_path / "run" / "results.jsonl").read_text()


def test_a_rate_limited_model_is_answered_with_429s_and_the_run_completes(tmp_path: Path, gateway: Gateway) -> None:
    suite = "name: rl\ncases:\n" + "".join(f"  - {{id: c{i}, prompt: Say {i}.}}\n" for i in range(4))
    # No retries: LiteLLM's 429 asks for 60 s, and this test is about the run going on, not the wait.
    config = write(tmp_path, gateway, model="limited", repeats=1, suite=suite,
                   run="{concurrency: 1, stream: true, timeout_s: 60, max_retries: 0}")
    result = run_cli("run", str(config), "--out", str(tmp_path / "run"))
    assert result.code == 0, result.out + result.err
    stored = records(tmp_path / "run")
    assert len(stored) == 4
    limited = [r for r in stored if not r["ok"]]
    assert limited and all(r["http_status"] == 429 for r in limited)
    assert any(r["ok"] for r in stored)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["complete"] is True and summary["totals"]["errors_by_kind"] == {"http_error": len(limited)}


def run_and_kill(config: Path, run_dir: Path, server: LocalServer, after: int) -> tuple[CliResult, float]:
    """Run ``config``; SIGKILL the backend once ``after`` records are stored. The result and the seconds from
    the kill to the run's end."""
    killed: list[float] = []

    def killer() -> None:
        results = run_dir / "results.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if results.exists() and len(results.read_bytes().splitlines()) >= after:
                server.proc.kill()
                killed.append(time.monotonic())
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=killer)
    watcher.start()
    result = run_cli("run", str(config), "--out", str(run_dir))
    ended = time.monotonic()
    watcher.join()
    assert killed, "the run ended before the backend could be killed: " + result.out + result.err
    return result, ended - killed[0]


def test_a_backend_killed_behind_the_gateway_ends_the_run_within_seconds_and_resume_finishes(
        tmp_path: Path, gateway: Gateway) -> None:
    suite = "name: long\ncases:\n" + "".join(f"  - {{id: c{i}, prompt: Name colour number {i}.}}\n"
                                             for i in range(24))
    config = write(tmp_path, gateway, model="fragile", repeats=2, suite=suite,
                   run="{concurrency: 2, stream: true, timeout_s: 60, max_retries: 3}")
    run_dir = tmp_path / "run"
    with local_server(tmp_path / "backend.log", port=gateway.fragile_port) as server:
        result, took = run_and_kill(config, run_dir, server, after=4)
    assert result.code == 3, result.out + result.err
    assert took < 15, f"the run went on {took:.1f} s after the backend died"
    assert "target unreachable" in result.err and "Connection error" in result.err
    assert f"--resume {run_dir}" in result.err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] is False and summary["stop_reason"].startswith("target unreachable")
    assert len(records(run_dir)) < 48

    # The backend is back where the gateway expects it: the resume sends the rest and the run passes.
    with local_server(tmp_path / "backend.log", port=gateway.fragile_port):
        resumed = run_cli("run", str(config), "--resume", str(run_dir))
        if resumed.code == 3 and gateway.exited() is not None:
            # LiteLLM itself died under the resume (seen once: a segfault inside its Python, exit -11), which
            # the run reported as the target unreachable. That is the gateway's fault, not the one tested
            # here: start it again and resume again, as a user would.
            assert "target unreachable" in resumed.err, resumed.out + resumed.err
            gateway.start()
            resumed = run_cli("run", str(config), "--resume", str(run_dir))
    assert resumed.code == 0, resumed.out + resumed.err
    stored = records(run_dir)
    assert len(stored) == 48 and all(r["ok"] for r in stored)
