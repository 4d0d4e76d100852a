"""Regression verdicts of each run against the run before it, for the history, cached on disk.

A verdict needs both runs' records (the per-case exact tests read each case's repeats), so it costs a read of
two results.jsonl files and the statistics; a history of a thousand runs would redo that on every rebuild.
The cache keeps each pair's verdicts under the two runs' folders, and is trusted only while the files the
verdict was computed from are unchanged (size and modification time of manifest, records and summary), the
harness version is the same and the comparison asks the same question at the same tolerances.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import orjson

from evalharness import __version__
from evalharness.console import format_case, format_regression
from evalharness.plan import canonical
from evalharness.regress import Population, compare_runs
from evalharness.runs import RunData, load_run
from evalharness.store import MANIFEST, RESULTS, SUMMARY
from evalharness.types import HistoryRegression

CACHE = "history-cache.json"


def cell_key(params: dict[str, Any]) -> str:
    """A cell's name across runs: a digest of its params (the same params in any run, the same key)."""
    return "c-" + hashlib.sha256(canonical(params).encode("utf-8")).hexdigest()[:10]


#: Pairs judged by one worker in a row (each run's records read once within it).
CHAIN = 25


@dataclass(frozen=True)
class Question:
    """What a pair's comparison asks (part of the cache key): ``compare``'s population and tolerances."""

    population: Population = "suite"
    rate_tolerance: float = 0.0
    latency_tolerance: float = 1.0

    def key(self) -> str:
        return f"{self.population}:{self.rate_tolerance!r}:{self.latency_tolerance!r}"


@dataclass
class PairVerdict:
    """One run against the run before it: the regressions found, and how many cells matched."""

    regressions: list[HistoryRegression]
    matched: int

    def to_json(self) -> dict[str, Any]:
        return {"regressions": self.regressions, "matched": self.matched}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairVerdict:
        return cls(cast(list[HistoryRegression], data["regressions"]), int(data["matched"]))


def fingerprint(run_dir: Path) -> list[list[int]]:
    """Size and modification time of the files a verdict is computed from."""
    out = []
    for name in (MANIFEST, RESULTS, SUMMARY):
        try:
            st = (run_dir / name).stat()
            out.append([st.st_size, st.st_mtime_ns])
        except OSError:
            out.append([-1, -1])
    return out


def judge_pair(base: RunData, new: RunData, question: Question) -> PairVerdict:
    """``new`` against ``base`` by the verdicts of ``evalharness compare`` (regress.compare_runs)."""
    result = compare_runs(base, new, rate_tolerance=question.rate_tolerance,
                          latency_tolerance=question.latency_tolerance, population=question.population)
    against = base.run_id
    key_of = {c["cell_id"]: cell_key(c["params"]) for c in result["cells"]}
    regressions: list[HistoryRegression] = []
    for cell in result["cells"]:
        for m in cell["metrics"]:
            if m.get("verdict") != "regressed":
                continue
            regressions.append({"key": key_of[cell["cell_id"]], "cell": cell["label"], "metric": m["metric"],
                                "against": against, "before": m["before"], "after": m["after"],
                                "change": m.get("change"), "ci": m.get("ci"), "level": m["level"],
                                "message": format_regression(cell["label"], m)})
    for case in result["case_regressions"]:
        regressions.append({"key": key_of.get(case["cell_id"], ""), "cell": case["cell"], "metric": case["metric"],
                            "against": against, "case": case["case"], "counts": case["counts"],
                            "p_adjusted": case["p_adjusted"], "message": format_case(case)})
    return PairVerdict(regressions, len(result["cells"]))


class PairCache:
    """Pair verdicts by the two runs' folders, and what the history keeps of each run's summary, in ``CACHE``
    in the history's output folder."""

    def __init__(self, path: Path, question: Question) -> None:
        self.path = path
        self.question = question
        self.entries: dict[str, Any] = {}
        self.runs: dict[str, Any] = {}
        self.hits = 0
        self.misses = 0
        with contextlib.suppress(OSError, ValueError):
            data = orjson.loads(path.read_bytes())
            if isinstance(data, dict) and data.get("version") == __version__:
                self.entries = data.get("pairs", {})
                self.runs = data.get("runs", {})
        self._used: dict[str, Any] = {}
        self._runs_used: dict[str, Any] = {}

    def lookup_run(self, run_dir: Path, metrics: Sequence[str]) -> dict[str, Any] | None:
        """What the history keeps of a run's summary, as stored by ``store_run`` while the run is unchanged: a
        rebuild then reads no summary at all."""
        key, stamp = str(run_dir.resolve()), [list(metrics), fingerprint(run_dir)]
        entry = self.runs.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp and isinstance(entry.get("run"), dict):
            self._runs_used[key] = entry
            return dict(entry["run"])
        return None

    def store_run(self, run_dir: Path, metrics: Sequence[str], digest: dict[str, Any]) -> None:
        key = str(run_dir.resolve())
        self._runs_used[key] = {"stamp": [list(metrics), fingerprint(run_dir)], "run": digest}
        self.misses += 1

    def _key(self, base_dir: Path, new_dir: Path) -> tuple[str, list[Any]]:
        return (f"{base_dir.resolve()}\n{new_dir.resolve()}",
                [self.question.key(), fingerprint(base_dir), fingerprint(new_dir)])

    def lookup(self, base_dir: Path, new_dir: Path) -> PairVerdict | None:
        """The cached verdict of ``new_dir`` against ``base_dir``, if neither run changed since."""
        key, stamp = self._key(base_dir, new_dir)
        entry = self.entries.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                found = PairVerdict.from_json(entry["verdict"])
                self.hits += 1
                self._used[key] = entry
                return found
        return None

    def store(self, base_dir: Path, new_dir: Path, verdict: PairVerdict) -> None:
        key, stamp = self._key(base_dir, new_dir)
        self.misses += 1
        self._used[key] = {"stamp": stamp, "verdict": verdict.to_json()}

    def save(self) -> None:
        """Write the runs and pairs used in this build (those no longer in the history are dropped)."""
        if self.misses or set(self._used) != set(self.entries) or set(self._runs_used) != set(self.runs):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_bytes(orjson.dumps({"version": __version__, "runs": self._runs_used, "pairs": self._used}))
            os.replace(tmp, self.path)


def _judge_chain(chain: list[Path], question: Question) -> list[PairVerdict]:
    """Each run of ``chain`` after the first against the one before it, each run's records read once (a run is
    the new side of one pair and the base of the next)."""
    out = []
    before = load_run(chain[0])
    for run_dir in chain[1:]:
        after = load_run(run_dir)
        out.append(judge_pair(before, after, question))
        before = after
    return out


def chains(pairs: list[tuple[Path, Path]]) -> list[list[Path]]:
    """Consecutive pairs joined into runs of folders: (a, b), (b, c), (d, e) → [a, b, c], [d, e]."""
    out: list[list[Path]] = []
    for base, new in pairs:
        if out and out[-1][-1] == base:
            out[-1].append(new)
        else:
            out.append([base, new])
    return out


def judge_pairs(pairs: list[tuple[Path, Path]], question: Question, *, jobs: int = 1
                ) -> dict[tuple[Path, Path], PairVerdict]:
    """The verdicts of every (base, new) pair, over ``jobs`` processes when there are many (the statistics of
    a pair take a good part of a second for a grid of 40 cells)."""
    work = [c[i:i + CHAIN] for c in chains(pairs) for i in range(0, len(c) - 1, CHAIN - 1)]
    work = [w for w in work if len(w) > 1]
    if jobs > 1 and len(pairs) >= 2 * jobs:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(_judge_chain, work, [question] * len(work)))
    else:
        results = [_judge_chain(w, question) for w in work]
    return {(w[i], w[i + 1]): v for w, verdicts in zip(work, results, strict=True) for i, v in enumerate(verdicts)}
