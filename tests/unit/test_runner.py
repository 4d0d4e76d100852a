"""Runner against an in-process MockTransport: retries, fatal errors, budget, cost, and the stored records."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import evalharness.runner as runner_mod
from evalharness.client import ChatClient
from evalharness.config import Pricing, RunOptions
from evalharness.errors import BudgetExhausted, RunInterrupted, SystematicFailure, TargetCrashed
from evalharness.plan import WorkItem
from evalharness.ratelimit import RateLimiter
from evalharness.runner import Runner, RunState
from evalharness.store import RESULTS, ResultWriter

BASE_URL = "http://mock.test/v1"
KEY_ENV = "WCODE_API_KEY"

Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries happen at once: full-jitter backoff drawn from [0, 0]."""
    monkeypatch.setattr(runner_mod, "BACKOFF_BASE_S", 0.0)


def make_items(n: int, **params: Any) -> list[WorkItem]:
    return [WorkItem(item_id=f"c-test/suite/case{i}/0", cell_id="c-test", suite="suite", case_id=f"case{i}",
                     repeat=0, messages=[{"role": "user", "content": f"q{i}"}], params=dict(params))
            for i in range(n)]


def prompt_of(request: httpx.Request) -> str:
    content: str = json.loads(request.content)["messages"][0]["content"]
    return content


def ok_response(usage: dict[str, Any] | None = None, content: str = "fine") -> httpx.Response:
    data: dict[str, Any] = {"id": "r1", "choices": [{"index": 0, "finish_reason": "stop",
                                                     "message": {"role": "assistant", "content": content}}]}
    if usage is not None:
        data["usage"] = usage
    return httpx.Response(200, json=data)


def error_response(status: int, message: str = "nope") -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message}})


class Server:
    """A MockTransport handler that counts requests per prompt and answers via ``respond(prompt, n)``."""

    def __init__(self, respond: Callable[[str, int], httpx.Response]) -> None:
        self.respond = respond
        self.calls: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def __call__(self, request: httpx.Request) -> httpx.Response:
        prompt = prompt_of(request)
        self.calls[prompt] += 1
        return self.respond(prompt, self.calls[prompt])


def run(handler: Handler, items: list[WorkItem], run_dir: Path, *, options: RunOptions,
        pricing: Pricing | None = None, api_key_env: str | None = KEY_ENV, spent: float = 0.0,
        setup: Callable[[Runner], None] | None = None) -> RunState:
    async def go() -> RunState:
        writer = ResultWriter(run_dir)
        try:
            async with ChatClient(BASE_URL, api_key="sk-test",
                                  transport=httpx.MockTransport(handler)) as chat:
                runner = Runner(chat, model="m", options=options, pricing=pricing or Pricing(),
                                writer=writer, api_key_env=api_key_env)
                if setup:
                    setup(runner)
                # A hung run fails the test instead of hanging it.
                return await asyncio.wait_for(runner.run(items, total=len(items), spent=spent), 20)
        finally:
            writer.close()
    return asyncio.run(go())


def stored_lines(run_dir: Path) -> list[bytes]:
    raw = (run_dir / RESULTS).read_bytes()
    assert raw == b"" or raw.endswith(b"\n"), "results.jsonl ends with a torn line"
    return raw.splitlines()


def stored(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stored_lines(run_dir)]


# --- retries ------------------------------------------------------------------------------------------

def test_transient_503s_are_retried_and_one_record_is_written_per_item(tmp_path: Path) -> None:
    server = Server(lambda prompt, n: error_response(503, "busy") if n <= 2 else ok_response(content=prompt))
    items = make_items(3)
    state = run(server, items, tmp_path, options=RunOptions(concurrency=2, stream=False))
    records = stored(tmp_path)
    assert sorted(r["item_id"] for r in records) == sorted(i.item_id for i in items)
    assert server.calls == {"q0": 3, "q1": 3, "q2": 3}
    for rec in records:
        assert rec["ok"] is True and rec["error"] is None
        assert [a["status"] for a in rec["attempts"]] == [503, 503, 200]
        assert rec["content"] == f"q{rec['case_id'].removeprefix('case')}"
    assert state.done == 3 and state.errors == 0


@pytest.mark.parametrize("max_retries", [0, 2])
def test_max_retries_bounds_attempts_on_a_permanent_503(tmp_path: Path, max_retries: int) -> None:
    server = Server(lambda prompt, n: error_response(503, "down for maintenance") if prompt == "q0"
                    else ok_response())
    state = run(server, make_items(2), tmp_path,
                options=RunOptions(concurrency=1, stream=False, max_retries=max_retries))
    assert server.calls["q0"] == max_retries + 1
    failed = next(r for r in stored(tmp_path) if r["case_id"] == "case0")
    assert failed["ok"] is False
    assert len(failed["attempts"]) == max_retries + 1
    assert failed["http_status"] == 503 and failed["error_kind"] == "http_error"
    assert "down for maintenance" in failed["error"]
    assert state.errors == 1 and state.done == 2


# --- fatal errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "advice"), [("sk-wrong", "to a valid key"), (None, "it is not set")])
def test_401_is_not_retried_and_the_error_names_the_key_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 key: str | None, advice: str) -> None:
    if key:
        monkeypatch.setenv(KEY_ENV, key)
    else:
        monkeypatch.delenv(KEY_ENV, raising=False)
    server = Server(lambda prompt, n: error_response(401, "invalid api key") if prompt == "q0"
                    else ok_response())
    run(server, make_items(3), tmp_path, options=RunOptions(concurrency=1, stream=False, max_retries=3))
    assert server.calls["q0"] == 1
    rejected = next(r for r in stored(tmp_path) if r["case_id"] == "case0")
    assert rejected["ok"] is False and rejected["http_status"] == 401
    assert len(rejected["attempts"]) == 1
    assert f"the API key was rejected; set {KEY_ENV}" in rejected["error"]
    assert advice in rejected["error"]


def test_every_request_401_stops_the_run_early(tmp_path: Path) -> None:
    server = Server(lambda prompt, n: error_response(401, "invalid api key"))
    items = make_items(20)
    with pytest.raises(SystematicFailure) as info:
        run(server, items, tmp_path, options=RunOptions(concurrency=2, stream=False))
    assert runner_mod.SYSTEMATIC_AFTER <= server.total < len(items)
    assert all(n == 1 for n in server.calls.values())  # never retried
    assert len(stored(tmp_path)) == server.total  # every request that was sent is on record
    assert KEY_ENV in str(info.value)


class DyingServer:
    """Answers ``lives`` requests, then dies: connections are refused, and its check says it crashed."""

    def __init__(self, lives: int) -> None:
        self.lives = lives
        self.calls = 0
        self.checks = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls > self.lives:
            raise httpx.ConnectError("connection refused")
        return ok_response()

    async def check(self) -> None:
        self.checks += 1
        if self.calls > self.lives:
            raise TargetCrashed("the local server (pid 1) was killed by SIGSEGV while serving requests")


@pytest.mark.parametrize("concurrency", [1, 3])
def test_a_dead_local_server_stops_the_run_at_once_as_a_crash(tmp_path: Path, concurrency: int) -> None:
    server = DyingServer(lives=4)
    items = make_items(20)

    def watch(runner: Runner) -> None:
        runner.check_target = server.check

    with pytest.raises(TargetCrashed, match="SIGSEGV"):
        run(server, items, tmp_path, options=RunOptions(concurrency=concurrency, stream=False, max_retries=3),
            setup=watch)
    # Not retried, not five failures in a row first: each worker's first refused request ends it.
    assert server.calls <= server.lives + concurrency
    records = stored(tmp_path)
    assert len(records) == server.lives and all(r["ok"] for r in records)  # what finished; no failed record


def test_a_live_server_check_lets_transient_failures_be_retried(tmp_path: Path) -> None:
    refused = {"q0"}

    def handler(request: httpx.Request) -> httpx.Response:
        if prompt_of(request) in refused:
            refused.clear()
            raise httpx.ConnectError("connection refused")
        return ok_response()

    checks: list[int] = []

    async def alive() -> None:
        checks.append(1)

    def watch(runner: Runner) -> None:
        runner.check_target = alive

    run(handler, make_items(2), tmp_path, options=RunOptions(concurrency=1, stream=False), setup=watch)
    assert len(checks) == 1
    assert [len(r["attempts"]) for r in stored(tmp_path)] == [2, 1] and all(r["ok"] for r in stored(tmp_path))


# --- budget and cost ------------------------------------------------------------------------------------

@pytest.mark.parametrize("concurrency", [1, 4])
def test_budget_stops_before_a_request_could_overspend(tmp_path: Path, concurrency: int) -> None:
    # Each request may cost up to 1000 tokens × 1.0/1k = 1.0, and the server does use them all.
    server = Server(lambda prompt, n: ok_response(usage={"prompt_tokens": 0, "completion_tokens": 1000,
                                                         "total_tokens": 1000}))
    items = make_items(6, max_tokens=1000)
    with pytest.raises(BudgetExhausted):
        run(server, items, tmp_path, options=RunOptions(concurrency=concurrency, stream=False, budget=2.5),
            pricing=Pricing(currency="CNY", input_per_1k=0.0, output_per_1k=1.0))
    assert 1 <= server.total <= 2
    records = stored(tmp_path)  # complete, parseable JSON lines only
    assert len(records) == server.total
    assert sum(r["cost"] for r in records) <= 2.5


def test_budget_holds_when_the_server_reports_no_usage(tmp_path: Path) -> None:
    server = Server(lambda prompt, n: ok_response(usage=None))
    with pytest.raises(BudgetExhausted):
        run(server, make_items(6, max_tokens=1000), tmp_path,
            options=RunOptions(concurrency=1, stream=False, budget=2.5),
            pricing=Pricing(input_per_1k=0.0, output_per_1k=1.0))
    assert server.total <= 2
    # Each is charged its worst case (1000 tokens × 1.0/1k), since the server did not say what it used.
    assert [r["budget_charge"] for r in stored(tmp_path)] == [pytest.approx(1.0)] * server.total


def test_a_retried_attempt_that_may_have_been_billed_is_charged_too(tmp_path: Path) -> None:
    def respond(prompt: str, n: int) -> httpx.Response:
        if prompt == "q0" and n == 1:
            raise httpx.ReadTimeout("the server went quiet mid-answer")
        return ok_response(usage=None)

    server = Server(respond)
    with pytest.raises(BudgetExhausted):
        run(server, make_items(3, max_tokens=1000), tmp_path,
            options=RunOptions(concurrency=1, stream=False, budget=2.5),
            pricing=Pricing(input_per_1k=0.0, output_per_1k=1.0))
    # q0 took two attempts, each possibly billed at 1.0: a third request could overspend, so it is not sent.
    assert server.calls == {"q0": 2}
    (rec,) = stored(tmp_path)
    assert [a["error_kind"] for a in rec["attempts"]] == ["timeout", None]
    assert rec["budget_charge"] == pytest.approx(2.0)


def test_rejected_attempts_are_not_charged(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 0, "completion_tokens": 100, "total_tokens": 100}
    server = Server(lambda prompt, n: error_response(503) if n <= 2 else ok_response(usage=usage))
    state = run(server, make_items(2, max_tokens=1000), tmp_path,
                options=RunOptions(concurrency=1, stream=False, budget=1.25),
                pricing=Pricing(input_per_1k=0.0, output_per_1k=1.0))
    # A 503 is turned away before generation; only the answers' 100 tokens (0.1 each) are charged.
    assert server.total == 6 and state.done == 2
    assert state.spent == pytest.approx(0.2)
    assert all(r["budget_charge"] == pytest.approx(0.1) for r in stored(tmp_path))


def test_a_resumed_run_counts_what_it_already_spent(tmp_path: Path) -> None:
    server = Server(lambda prompt, n: ok_response(usage=None))
    with pytest.raises(BudgetExhausted, match=r"raise run\.budget"):
        run(server, make_items(2, max_tokens=1000), tmp_path,
            options=RunOptions(concurrency=1, stream=False, budget=2.5), spent=2.0,
            pricing=Pricing(input_per_1k=0.0, output_per_1k=1.0))
    assert server.total == 0


def test_record_cost_comes_from_usage_and_pricing(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    server = Server(lambda prompt, n: ok_response(usage=usage) if prompt == "q0" else ok_response(usage=None))
    state = run(server, make_items(2), tmp_path, options=RunOptions(concurrency=1, stream=False),
                pricing=Pricing(currency="CNY", input_per_1k=0.5, output_per_1k=2.0))
    by_case = {r["case_id"]: r for r in stored(tmp_path)}
    # 100/1000 × 0.5 + 50/1000 × 2.0
    assert by_case["case0"]["cost"] == pytest.approx(0.15)
    assert by_case["case0"]["usage"] == usage
    assert by_case["case1"]["cost"] is None
    # Without usage the budget counts the worst case: the prompt estimate and 4096 (no max_tokens) tokens out.
    assert by_case["case1"]["budget_charge"] == pytest.approx(17 / 1000 * 0.5 + 4096 / 1000 * 2.0)
    assert state.spent == pytest.approx(0.15 + by_case["case1"]["budget_charge"])


def test_streamed_record_carries_timings_and_sent_params(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]},
                  {"choices": [{"index": 0, "delta": {"content": "Par"}}]},
                  {"choices": [{"index": 0, "delta": {"content": "is"}, "finish_reason": "stop"}]},
                  {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 2}}]
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=body)

    run(handler, make_items(1, temperature=0.0, max_tokens=8), tmp_path,
        options=RunOptions(concurrency=1, stream=True), pricing=Pricing(output_per_1k=1.0))
    (rec,) = stored(tmp_path)
    assert sent[0]["temperature"] == 0.0 and sent[0]["max_tokens"] == 8
    assert sent[0]["stream_options"] == {"include_usage": True}
    assert rec["params"] == {"temperature": 0.0, "max_tokens": 8}
    assert rec["content"] == "Paris" and rec["finish_reason"] == "stop"
    timings = rec["timings"]
    assert len(timings["chunk_times"]) == 2
    assert 0 < timings["ttft_s"] <= timings["e2e_s"]
    assert timings["queue_s"] is not None and timings["queue_s"] >= 0
    assert rec["cost"] == pytest.approx(0.002)


# --- interruption ---------------------------------------------------------------------------------------

def test_ctrl_c_lets_the_in_flight_request_finish_and_schedules_nothing_more(tmp_path: Path) -> None:
    runner_box: list[Runner] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        runner_box[0].interrupt()  # Ctrl-C while this request is in flight
        await asyncio.sleep(0)
        return ok_response(content=prompt_of(request))

    with pytest.raises(RunInterrupted, match="interrupted after 1 of 3"):
        run(handler, make_items(3), tmp_path, options=RunOptions(concurrency=1, stream=False),
            setup=runner_box.append)
    (rec,) = stored(tmp_path)
    assert rec["ok"] and rec["content"] == "q0"


def test_a_second_ctrl_c_cancels_in_flight_requests_and_records_nothing_half_done(tmp_path: Path) -> None:
    runner_box: list[Runner] = []
    sent: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(prompt_of(request))
        if len(sent) == 2:
            runner_box[0].interrupt()
            runner_box[0].interrupt()
        await asyncio.Event().wait()  # a response that never comes
        raise AssertionError("unreachable")

    with pytest.raises(RunInterrupted, match="cancelled"):
        run(handler, make_items(4), tmp_path, options=RunOptions(concurrency=2, stream=False),
            setup=runner_box.append)
    assert sorted(sent) == ["q0", "q1"]
    assert stored(tmp_path) == []  # a resume sends both again


def test_ctrl_c_during_a_long_retry_after_stops_at_once_and_leaves_the_item_for_resume(tmp_path: Path) -> None:
    runner_box: list[Runner] = []

    def respond(prompt: str, n: int) -> httpx.Response:
        if prompt == "q1":
            asyncio.get_running_loop().call_later(0.05, runner_box[0].interrupt)
            return httpx.Response(429, headers={"Retry-After": "60"}, json={"error": {"message": "slow down"}})
        return ok_response(content=prompt)

    server = Server(respond)
    # run() gives up after 20 s, so waiting out the 60 s Retry-After would fail the test.
    with pytest.raises(RunInterrupted):
        run(server, make_items(3), tmp_path, options=RunOptions(concurrency=1, stream=False),
            setup=runner_box.append)
    assert server.calls == {"q0": 1, "q1": 1}
    assert [r["case_id"] for r in stored(tmp_path)] == ["case0"]


# --- rate limits ----------------------------------------------------------------------------------------

class FakeTime:
    """A clock that only moves when the rate limiter sleeps; each sleep also yields for real, briefly."""

    def __init__(self, real_pause_s: float = 0.0) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.real_pause_s = real_pause_s

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(self.real_pause_s)


def test_rpm_spaces_requests_and_the_wait_counts_as_queue_time(tmp_path: Path) -> None:
    fake = FakeTime(real_pause_s=0.05)

    def setup(runner: Runner) -> None:
        runner.limiter = RateLimiter(rpm=60, clock=fake.clock, sleep=fake.sleep)

    run(Server(lambda prompt, n: ok_response()), make_items(3), tmp_path,
        options=RunOptions(concurrency=3, stream=False, rpm=60), setup=setup)
    # 60 a minute is one a second: the first goes at once, the next two wait a second each.
    assert fake.sleeps == [pytest.approx(1.0), pytest.approx(1.0)]
    queued = sorted(r["timings"]["queue_s"] for r in stored(tmp_path))
    assert queued[0] < 0.05 <= queued[1] and queued[2] >= 0.1


def test_tpm_is_settled_with_the_usage_the_server_reports(tmp_path: Path) -> None:
    fake = FakeTime()
    limiter = RateLimiter(tpm=6000, clock=fake.clock, sleep=fake.sleep)  # 100 tokens a second
    usage = {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}
    run(Server(lambda prompt, n: ok_response(usage=usage)), make_items(3, max_tokens=83), tmp_path,
        options=RunOptions(concurrency=1, stream=False, tpm=6000), setup=lambda r: setattr(r, "limiter", limiter))
    # Each request reserves 100 tokens (17 for the prompt estimate + 83) but uses 10, which leaves room for
    # the next one after a tenth of a second instead of a whole second.
    assert fake.sleeps == [pytest.approx(0.1), pytest.approx(0.1)]


@pytest.mark.parametrize("usage", [{"prompt_tokens": "many", "completion_tokens": 3}, [1, 2], "lots",
                                   {"prompt_tokens": True, "completion_tokens": None}])
def test_malformed_usage_is_treated_as_no_usage(tmp_path: Path, usage: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}],
                                         "usage": usage})

    state = run(handler, make_items(1, max_tokens=1000), tmp_path,
                options=RunOptions(concurrency=1, stream=False, budget=5.0), pricing=Pricing(output_per_1k=1.0))
    (rec,) = stored(tmp_path)
    assert rec["ok"] and rec["usage"] is None and rec["cost"] is None
    assert state.spent == pytest.approx(1.0)  # charged the worst case, as if the server had sent no usage


def test_a_lone_surrogate_in_an_answer_is_stored_and_read_back(tmp_path: Path) -> None:
    from evalharness.store import ResultWriter, read_records

    writer = ResultWriter(tmp_path)
    writer.write({"item_id": "a", "content": "broken \ud800 text"})
    writer.write({"item_id": "b", "content": "fine"})
    writer.close()
    assert [r["content"] for r in read_records(tmp_path)] == ["broken \ud800 text", "fine"]


def test_resume_sets_failed_records_aside_so_they_are_sent_again(tmp_path: Path) -> None:
    from evalharness.store import read_records, read_superseded, set_aside_failures

    writer = ResultWriter(tmp_path)
    for item_id, ok in (("a", True), ("b", False), ("c", True)):
        writer.write({"item_id": item_id, "ok": ok, "budget_charge": 0.5})
    writer.close()
    kept = set_aside_failures(tmp_path)
    assert [r["item_id"] for r in kept] == ["a", "c"]
    assert [r["item_id"] for r in read_records(tmp_path)] == ["a", "c"]
    assert [r["item_id"] for r in read_superseded(tmp_path)] == ["b"]
    assert set_aside_failures(tmp_path) == kept  # nothing failed any more: nothing moves
    assert len(read_superseded(tmp_path)) == 1


def test_records_finished_in_one_loop_turn_are_on_disk_by_the_next(tmp_path: Path) -> None:
    from evalharness.store import read_records

    async def go() -> list[list[str]]:
        writer = ResultWriter(tmp_path)
        seen = []
        for item_id in ("a", "b", "c"):
            writer.write({"item_id": item_id})
        seen.append([r["item_id"] for r in read_records(tmp_path)])  # still this turn: pending
        await asyncio.sleep(0)
        seen.append([r["item_id"] for r in read_records(tmp_path)])  # next turn: written
        writer.write({"item_id": "d"})
        writer.close()  # a stop writes what is pending at once
        seen.append([r["item_id"] for r in read_records(tmp_path)])
        return seen

    assert asyncio.run(go()) == [[], ["a", "b", "c"], ["a", "b", "c", "d"]]


def test_without_an_event_loop_a_record_is_written_at_once(tmp_path: Path) -> None:
    from evalharness.store import read_records

    writer = ResultWriter(tmp_path)
    writer.write({"item_id": "a"})
    assert [r["item_id"] for r in read_records(tmp_path)] == ["a"]
    writer.close()
