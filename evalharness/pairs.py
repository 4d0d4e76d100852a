"""Regression verdicts of each run against the run before it, for the history, cached on disk.

A verdict needs both runs' records (the per-case exact tests read each case's repeats), so it costs a read of
two results.jsonl files and the statistics; a history of a thousand runs would redo that on every rebuild.
The cache keeps each pair's verdicts under the two runs' folders, and is trusted only while the files the
verdict was computed from are unchanged (size and modification time of manifest, records and summary), the
harness version is the same and the comparison asks the same question at the same tolerances.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from evalharness import __version__
from evalharness.console import format_case, format_regression
from evalharness.plan import canonical
from evalharness.regress import Population, compare_runs
from evalharness.runs import RunData, load_run
from evalharness.store import MANIFEST, RESULTS, SUMMARY, write_json
from evalharness.types import HistoryRegression

CACHE = "history-cache.json"


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
    """One run against the run before it: the regressions found, and each matched cell's verdict per metric
    (by cell key), so the page can tell a regression from an improvement."""

    regressions: list[HistoryRegression]
    verdicts: dict[str, dict[str, str | None]]
    matched: int

    def to_json(self) -> dict[str, Any]:
        return {"regressions": self.regressions, "verdicts": self.verdicts, "matched": self.matched}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PairVerdict:
        return cls(cast(list[HistoryRegression], data["regressions"]), data["verdicts"], int(data["matched"]))


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
    key_of = {c["cell_id"]: canonical(c["params"]) for c in result["cells"]}
    regressions: list[HistoryRegression] = []
    verdicts: dict[str, dict[str, str | None]] = {}
    for cell in result["cells"]:
        verdicts[key_of[cell["cell_id"]]] = {m["metric"]: m.get("verdict") for m in cell["metrics"]}
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
    return PairVerdict(regressions, verdicts, len(result["cells"]))


class PairCache:
    """Pair verdicts by the two runs' folders, in ``CACHE`` in the history's output folder."""

    def __init__(self, path: Path, question: Question) -> None:
        self.path = path
        self.question = question
        self.entries: dict[str, Any] = {}
        self.hits = 0
        self.misses = 0
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == __version__:
                self.entries = data.get("pairs", {})
        self._used: dict[str, Any] = {}

    def get(self, base_dir: Path, new_dir: Path, compute: Callable[[], PairVerdict]) -> PairVerdict:
        key = f"{base_dir.resolve()}\n{new_dir.resolve()}"
        stamp = [self.question.key(), fingerprint(base_dir), fingerprint(new_dir)]
        entry = self.entries.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                found = PairVerdict.from_json(entry["verdict"])
                self.hits += 1
                self._used[key] = entry
                return found
        self.misses += 1
        verdict = compute()
        self._used[key] = {"stamp": stamp, "verdict": verdict.to_json()}
        return verdict

    def save(self) -> None:
        """Write the pairs used in this build (pairs of runs no longer in the history are dropped)."""
        if self.misses or set(self._used) != set(self.entries):
            write_json(self.path, {"version": __version__, "pairs": self._used})


class RunLoader:
    """Loads runs' records for pair verdicts only when a pair is not cached, keeping the last run loaded:
    a run is the new side of one pair and the base of the next."""

    def __init__(self) -> None:
        self._last: tuple[Path, RunData] | None = None

    def __call__(self, run_dir: Path) -> RunData:
        if self._last and self._last[0] == run_dir:
            return self._last[1]
        data = load_run(run_dir)
        self._last = (run_dir, data)
        return data
