"""Shards: a stable, balanced split of the plan; ``merge`` joins shards into the run one machine would have made,
and refuses shards that are missing, doubled or of another plan."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import evalharness
from evalharness.cli import main
from evalharness.config import load_config
from evalharness.errors import EvalHarnessError, UsageError
from evalharness.plan import WorkItem, make_plan
from evalharness.scoring import bycell
from evalharness.shards import Layout, Shard

SUITE = """\
name: s
cases:
  - {id: a, prompt: 'Say {"x": 1}', expect: {json_valid: true}}
  - {id: b, prompt: Say Paris, expect: {contains: Paris}}
  - {id: c, prompt: Say Rome, expect: {contains: Rome}, extract: {regex: '(\\w+)'}}
  - {id: d, prompt: Say Oslo, expect: {contains: Oslo}}
  - {id: e, prompt: Say Lima, expect: {contains: Lima}}
"""
CONFIG = """\
name: sharded
target: {base_url: http://127.0.0.1:9/v1, model: m}
pricing: {currency: USD, input_per_1k: 1.0, output_per_1k: 2.0}
suites: [suite.yaml]
grid:
  temperature: [0, 1]
  seed: [null, 42]
repeats: 4
run: {concurrency: 3, max_retries: 0}
gates:
  - {metric: pass_rate, min: 0.1}
  - {metric: pass_rate, per_case: true, min: 0.0}
"""


class Varied:
    """Answers that vary from call to call (seeded): right, wrong, JSON or not, failed now and then; the
    latencies vary too. Nothing depends on which shard a request is in, only on the order of the calls."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    async def complete(self, body: dict[str, Any]) -> evalharness.Outcome:
        prompt = body["messages"][-1]["content"]
        roll = self.rng.random()
        if roll < 0.05:
            return evalharness.Outcome(ok=False, status=400, error_kind="http_400", error="bad luck")
        content = prompt.removeprefix("Say ") if roll < 0.7 else f"{prompt} {self.rng.randint(0, 2)}"
        e2e = 0.01 + self.rng.random()
        return evalharness.Outcome(ok=True, status=200, content=content, finish_reason="stop", e2e_s=e2e,
                                   ttft_s=e2e / 3, ttfc_s=e2e / 2, chunk_times=[e2e / 3, e2e / 2, e2e],
                                   usage={"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10})

    async def aclose(self) -> None:
        pass


class ByPrompt(Varied):
    """The same answer and timings for the same request body, whoever sends it when."""

    async def complete(self, body: dict[str, Any]) -> evalharness.Outcome:
        self.rng = random.Random(json.dumps(body, sort_keys=True))
        return await super().complete(body)


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    return write_config(CONFIG, SUITE)


def _select(shard: Shard, config: Path) -> list[WorkItem]:
    loaded = load_config(config)
    plan = make_plan(loaded)
    return shard.select(plan.items, Layout.of_plan(loaded, plan))


def test_every_item_is_in_exactly_one_shard_and_each_cell_and_case_is_split_evenly(config: Path) -> None:
    plan = make_plan(load_config(config))
    for count in (1, 2, 3, 7, 80, 81):
        shards = [_select(Shard(k, count), config) for k in range(1, count + 1)]
        ids = [i.item_id for s in shards for i in s]
        assert sorted(ids) == sorted(i.item_id for i in plan.items)
        sizes = [len(s) for s in shards]
        assert max(sizes) - min(sizes) <= 1
        for cell in plan.cells:
            per_cell = [sum(i.cell_id == cell.cell_id for i in s) for s in shards]
            assert max(per_cell) - min(per_cell) <= 1
            for case in "abcde":  # its 4 repeats over the shards
                per_case = [sum(i.cell_id == cell.cell_id and i.case_id == case for i in s) for s in shards]
                assert max(per_case) - min(per_case) <= 1


def test_the_split_is_the_same_whatever_the_order_of_the_plan(config: Path) -> None:
    loaded = load_config(config)
    plan = make_plan(loaded)
    shuffled = list(plan.items)
    random.Random(5).shuffle(shuffled)
    layout = Layout.of_plan(loaded, plan)
    for k in (1, 2, 3):
        assert {i.item_id for i in Shard(k, 3).select(shuffled, layout)} == \
               {i.item_id for i in _select(Shard(k, 3), config)}
    # The first items of the canonical order: cell 1's case a, repeats 0-3, dealt 1, 2, 3, 1.
    first = plan.cells[0].cell_id
    assert [i.repeat for i in _select(Shard(1, 3), config) if i.cell_id == first and i.case_id == "a"] == [0, 3]


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_a_bad_shard_is_a_usage_error(config: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(config), "--shard", text]) == 2
    assert "--shard" in capsys.readouterr().err


def _shards(config: Path, tmp_path: Path, backend: Callable[[int], Any]) -> list[Path]:
    dirs = []
    for k in (1, 2, 3):
        run = evalharness.run(config, out=tmp_path / f"shard{k}", shard=f"{k}/3", backend=backend(k))
        assert run.complete
        dirs.append(run.run_dir)
    return dirs


def _cells(summary: dict[str, Any]) -> dict[str, Any]:
    return {c["cell_id"]: c for c in summary["cells"]}


def test_a_shard_is_a_run_of_its_part_of_the_plan(config: Path, tmp_path: Path) -> None:
    run = evalharness.run(config, out=tmp_path / "one", shard="2/3", backend=Varied(1))
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert manifest["shard"] == {"index": 2, "count": 3, "requests": run.summary["totals"]["requests"],
                                 "plan_requests": 80}
    assert manifest["plan"]["requests"] == run.summary["totals"]["requests"] == len(run.records)
    assert sorted(r["item_id"] for r in run.records) == sorted(i.item_id for i in _select(Shard(2, 3), config))


def test_merged_shards_score_as_one_run_of_the_same_records(config: Path, tmp_path: Path) -> None:
    dirs = _shards(config, tmp_path, Varied)
    assert main(["merge", *map(str, dirs), "--out", str(tmp_path / "merged")]) == 0
    merged = evalharness.load_run(tmp_path / "merged")
    assert merged.complete and merged.summary["totals"]["requests"] == 80
    # The same records as one unsharded run: its folder, its records replaced by the shards', in another order.
    alone = evalharness.run(config, out=tmp_path / "alone", backend=Varied(9))
    lines = [line for d in dirs for line in (d / "results.jsonl").read_bytes().splitlines(keepends=True)]
    random.Random(3).shuffle(lines)
    (alone.run_dir / "results.jsonl").write_bytes(b"".join(lines))
    rescored = evalharness.api.rescore(alone.run_dir)
    assert _cells(merged.summary) == _cells(rescored.summary)
    assert merged.summary["totals"] == rescored.summary["totals"]
    assert merged.summary["gates"] == rescored.summary["gates"]
    assert merged.summary["comparisons"] == rescored.summary["comparisons"]
    assert [(c.case, c.cell_id, c.passed, c.failed) for c in merged.cases] == \
           [(c.case, c.cell_id, c.passed, c.failed) for c in rescored.cases]


def test_merged_shards_equal_an_unsharded_run_of_a_deterministic_target(config: Path, tmp_path: Path) -> None:
    dirs = _shards(config, tmp_path, ByPrompt)
    merged = evalharness.merge(dirs, out=tmp_path / "merged")
    alone = evalharness.run(config, out=tmp_path / "alone", backend=ByPrompt(0))
    for cell_id, cell in _cells(alone.summary).items():
        other = _cells(merged.summary)[cell_id]["metrics"]
        for name, value in cell["metrics"].items():
            if name != "queue_s":  # the runner's own wait for a slot: the one figure the backend does not set
                assert other[name] == value, name


def test_a_missing_shard_is_refused_unless_partial_is_allowed(config: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _shards(config, tmp_path, Varied)
    assert main(["merge", str(dirs[0]), str(dirs[2]), "--out", str(tmp_path / "m")]) == 2
    assert "shard 2/3 missing" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    assert main(["merge", str(dirs[0]), str(dirs[2]), "--out", str(tmp_path / "m"), "--allow-partial"]) == 3
    partial = evalharness.load_run(tmp_path / "m")
    assert not partial.complete and "2/3 missing" in str(partial.summary["stop_reason"])
    assert partial.summary["totals"]["requests"] < 80 == partial.summary["totals"]["planned"]


def test_a_doubled_or_foreign_shard_is_refused(config: Path, tmp_path: Path, write_config: Callable[..., Path],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    dirs = _shards(config, tmp_path, Varied)
    assert main(["merge", *map(str, dirs), str(dirs[1]), "--out", str(tmp_path / "m")]) == 2
    assert "shard 2/3 is given 2 times" in capsys.readouterr().err
    # A copy of a shard's records in another shard: the same items twice.
    lines = (dirs[0] / "results.jsonl").read_bytes()
    (dirs[1] / "results.jsonl").write_bytes((dirs[1] / "results.jsonl").read_bytes() + lines)
    assert main(["merge", *map(str, dirs), "--out", str(tmp_path / "m")]) == 2
    assert "is also in another shard" in capsys.readouterr().err
    other = write_config(CONFIG.replace("repeats: 4", "repeats: 3"), SUITE, name="other.yaml")
    foreign = evalharness.run(other, out=tmp_path / "foreign", shard="2/3", backend=Varied(1)).run_dir
    assert main(["merge", str(dirs[0]), str(foreign), str(dirs[2]), "--out", str(tmp_path / "m")]) == 2
    assert "shards of different plans" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "alone-not-there"), "--out", str(tmp_path / "m")]) == 2


def test_a_run_that_is_not_a_shard_is_refused(config: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    whole = evalharness.run(config, out=tmp_path / "whole", backend=Varied(1)).run_dir
    assert main(["merge", str(whole), "--out", str(tmp_path / "m")]) == 2
    assert "is not a shard" in capsys.readouterr().err


def test_a_shard_resumes_as_the_shard_it_was(config: Path, tmp_path: Path) -> None:
    run = evalharness.run(config, out=tmp_path / "s", shard="1/3", backend=Varied(1))
    path = run.run_dir / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:5]))  # as if killed after five records
    resumed = evalharness.run(config, resume=run.run_dir, backend=Varied(2))
    assert resumed.complete
    ids = Counter(r["item_id"] for r in resumed.records)
    assert sorted(ids) == sorted(i.item_id for i in _select(Shard(1, 3), config))
    assert set(ids.values()) == {1}
    with pytest.raises(UsageError, match="cannot be resumed as shard 2/3"):
        evalharness.run(config, resume=run.run_dir, shard="2/3", backend=Varied(2))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_run_scored_cell_by_cell_has_the_summary_of_one_scored_whole(config: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       workers: str) -> None:
    whole = evalharness.run(config, out=tmp_path / "run", backend=Varied(4))
    whole_csv = sorted((whole.run_dir / "results.csv").read_text().splitlines())
    monkeypatch.setattr(bycell, "STREAM_ABOVE", 10)  # 80 records: above it, as a million would be
    monkeypatch.setenv("EVALHARNESS_SCORE_WORKERS", workers)  # "2": the cells are scored in forked processes
    assert bycell.score_workers(4) == int(workers), threading.enumerate()
    streamed = evalharness.api.rescore(whole.run_dir)
    sampled = streamed.summary.pop("sampled_reports")  # type: ignore[typeddict-item]
    assert sampled["of"] == 80 and sampled["records"] == 4 * 5 * 3  # 3 of each case's 4 repeats in each cell
    assert streamed.summary["cells"] == whole.summary["cells"]
    assert streamed.summary["gates"] == whole.summary["gates"]
    assert streamed.summary["comparisons"] == whole.summary["comparisons"]
    assert streamed.summary["totals"] == whole.summary["totals"]
    csv_rows = (whole.run_dir / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 81
    assert sorted(csv_rows) == whole_csv  # the same rows, cell by cell in the plan's order
    assert "seeded sample of 3 records" in (whole.run_dir / "summary.md").read_text()
    assert not [p for p in whole.run_dir.iterdir() if p.name.startswith(".")]  # the cells' csv parts are gone


def test_cells_are_scored_in_this_process_where_forking_is_not_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALHARNESS_SCORE_WORKERS", "4")
    assert bycell.score_workers(40) == 4
    assert bycell.score_workers(3) == 3  # at most one a cell
    monkeypatch.setenv("EVALHARNESS_SCORE_WORKERS", "many")
    assert bycell.score_workers(40) == 1
    monkeypatch.setenv("EVALHARNESS_SCORE_WORKERS", "4")
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:  # a thread of this process could hold a lock a forked child would wait on for ever
        assert bycell.score_workers(40) == 1
    finally:
        done.set()
        other.join()
    assert bycell.score_workers(40) == 4


def test_tqdms_monitor_thread_is_stopped_rather_than_given_up_for(monkeypatch: pytest.MonkeyPatch) -> None:
    tqdm = pytest.importorskip("tqdm")  # installed with the test extra's datasets
    monkeypatch.setenv("EVALHARNESS_SCORE_WORKERS", "2")
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 10)
    with tqdm.tqdm(total=1, disable=False, file=io.StringIO()):
        assert any(t.name == "tqdm_monitor" for t in threading.enumerate())
        assert bycell.score_workers(4) == 2
        assert not any(t.name == "tqdm_monitor" and t.is_alive() for t in threading.enumerate())


def test_a_scoring_worker_that_dies_is_a_clear_error_and_loses_nothing(config: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    whole = evalharness.run(config, out=tmp_path / "run", backend=Varied(4))
    records = (whole.run_dir / "results.jsonl").read_bytes()
    monkeypatch.setattr(bycell, "STREAM_ABOVE", 10)
    monkeypatch.setenv("EVALHARNESS_SCORE_WORKERS", "2")
    part = bycell._cell_part

    def dies_on_the_third_cell(job: Any, position: int) -> Any:
        if position == 2:
            os._exit(9)  # as the kernel's out-of-memory killer would end it
        return part(job, position)

    monkeypatch.setattr(bycell, "_cell_part", dies_on_the_third_cell)  # the forked workers inherit it
    with pytest.raises(EvalHarnessError, match="EVALHARNESS_SCORE_WORKERS=1"):
        evalharness.api.rescore(whole.run_dir)
    assert (whole.run_dir / "results.jsonl").read_bytes() == records
    assert not [p for p in whole.run_dir.iterdir() if p.name.startswith(".")]
    monkeypatch.setenv("EVALHARNESS_SCORE_WORKERS", "1")
    monkeypatch.setattr(bycell, "_cell_part", part)
    assert evalharness.api.rescore(whole.run_dir).summary["cells"] == whole.summary["cells"]


def test_ctrl_c_while_cells_are_scored_stops_handing_them_out(tmp_path: Path, write_config: Callable[..., Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    eight_cells = write_config(CONFIG.replace("temperature: [0, 1]", "temperature: [0, 0.5, 1, 1.5]")
                               .replace("repeats: 4", "repeats: 1"), SUITE)
    whole = evalharness.run(eight_cells, out=tmp_path / "run", backend=Varied(4))
    monkeypatch.setattr(bycell, "STREAM_ABOVE", 10)
    monkeypatch.setenv("EVALHARNESS_SCORE_WORKERS", "2")
    part = bycell._cell_part
    begun = tmp_path / "begun"
    begun.mkdir()

    def slow(job: Any, position: int) -> Any:
        (begun / str(position)).touch()
        time.sleep(1.5)
        return part(job, position)

    def ctrl_c(*_: Any) -> None:  # as a terminal's Ctrl-C: SIGINT to the command and its workers
        for worker in multiprocessing.active_children():
            os.kill(worker.pid, signal.SIGINT)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(bycell, "_cell_part", slow)
    previous = signal.signal(signal.SIGALRM, ctrl_c)
    signal.setitimer(signal.ITIMER_REAL, 0.5)  # while the first two cells are being scored
    try:
        with pytest.raises(KeyboardInterrupt):
            evalharness.api.rescore(whole.run_dir)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # The two being scored finish, with the few the pool had queued for its workers (its queue holds 3);
    # the rest of the 8 are never begun.
    assert 2 <= len(list(begun.iterdir())) <= 5
    assert multiprocessing.active_children() == []  # and the workers are gone
    assert not [p for p in whole.run_dir.iterdir() if p.name.startswith(".")]


def test_the_end_of_a_large_run_scores_its_cells_in_workers(config: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bycell, "STREAM_ABOVE", 10)
    monkeypatch.setenv("EVALHARNESS_SCORE_WORKERS", "2")
    used: list[int] = []
    parts = bycell._parts
    monkeypatch.setattr(bycell, "_parts", lambda job, workers: used.append(workers) or parts(job, workers))
    streamed = evalharness.run(config, out=tmp_path / "run", backend=Varied(4))
    assert used == [2]  # nothing the run left running (threads) kept it from forking
    monkeypatch.setattr(bycell, "STREAM_ABOVE", 200_000)
    whole = evalharness.api.rescore(streamed.run_dir)  # the same records, scored whole in this process
    assert used == [2]
    assert streamed.summary["cells"] == whole.summary["cells"]
    assert streamed.summary["comparisons"] == whole.summary["comparisons"]


def test_a_dry_run_of_a_shard_says_its_share(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(config), "--dry-run", "--shard", "3/3"]) == 0
    assert "4 cells × 5 cases × 4 repeats = 80 requests; shard 3/3: 26 of them" in capsys.readouterr().out
