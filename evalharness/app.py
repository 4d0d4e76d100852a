"""The commands ``run``, ``merge``, ``report``, ``compare`` and ``validate``: the Python API, printed for a terminal.

Each calls ``api.py``, prints what it returns and gives the exit code (README): 0 every gate passed, 1 a
gate failed or something regressed, 3 the run could not complete. Errors propagate to ``cli.main``.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from evalharness import api
from evalharness.config import load_config
from evalharness.console import format_comparison, format_outcome, format_plan
from evalharness.plan import make_plan
from evalharness.progress import Progress
from evalharness.regress import Population
from evalharness.results import Run
from evalharness.shards import Layout, Shard
from evalharness.store import write_json


def exit_code(run: Run) -> int:
    """3 when the run did not complete, else 0 when every gate passed and 1 when one failed."""
    if not run.complete:
        return 3
    return 0 if run.passed else 1


def _outcome(run: Run) -> str:
    return format_outcome(run.summary, str(run.run_dir), [str(p) for p in run.reports])


def run(config_path: str, *, out: str | None = None, dry_run: bool = False, resume: str | None = None,
        gates: bool = True, baseline: str | None = None, population: Population = "suite",
        stdout: TextIO | None = None, shard: Shard | None = None) -> int:
    """``evalharness run``: returns the exit code."""
    stdout = stdout or sys.stdout
    if dry_run:
        loaded = load_config(config_path)
        cfg = loaded.config
        plan = make_plan(loaded)
        total = len(plan.items)
        if shard:  # the estimate is the shard's
            plan = replace(plan, items=shard.select(plan.items, Layout.of_plan(loaded, plan)))
        estimate = plan.estimate(cfg.pricing.input_per_1k, cfg.pricing.output_per_1k)
        text = format_plan(cfg.name, plan, estimate, cfg.pricing.currency)
        if shard:
            text = text.replace(f"= {estimate.requests} requests",
                                f"= {total} requests; shard {shard}: {estimate.requests} of them", 1)
        print(text, file=stdout)
        return 0
    result = api.run(config_path, out=out, resume=resume, gates=gates, baseline=baseline, population=population,
                     progress=Progress(announce=stdout), shard=shard)
    print(_outcome(result), file=stdout)
    if result.stop_reason:
        print(f"The run stopped early: {result.stop_reason}\nResume it with: evalharness run {config_path} "
              f"--resume {result.run_dir}", file=sys.stderr)
    return exit_code(result)


def merge(shard_dirs: list[str], *, out: str, allow_partial: bool = False, gates: bool = True,
          stdout: TextIO | None = None) -> int:
    """``evalharness merge SHARD_DIR... --out DIR``: exit 2 when shards are missing, doubled or of another plan."""
    result = api.merge(shard_dirs, out=out, allow_partial=allow_partial, gates=gates)
    print(_outcome(result), file=stdout or sys.stdout)
    if result.stop_reason:
        print(f"The merged run is incomplete: {result.stop_reason}", file=sys.stderr)
    return exit_code(result)


def report(run_dir: str, stdout: TextIO | None = None) -> int:
    """``evalharness report RUN_DIR``: re-score and re-render from stored records only."""
    result = api.rescore(run_dir)
    print(_outcome(result), file=stdout or sys.stdout)
    for own in result.summary.get("checks", []):  # a check file edited or gone since the run changes the scores
        if own["note"]:
            print(f"note: check {own['check']}: {own['note']}", file=sys.stderr)
    return exit_code(result)


def compare(base_run: str, new_run: str, *, rate_tolerance: float, latency_tolerance: float,
            population: Population = "suite", json_out: str | None = None, stdout: TextIO | None = None) -> int:
    """``evalharness compare BASE_RUN NEW_RUN``: exit 1 when anything regressed, else 0."""
    result = api.compare(base_run, new_run, population=population, max_drop=rate_tolerance,
                         max_slowdown=latency_tolerance)
    if json_out:
        write_json(Path(json_out), result.result)
    print(format_comparison(result.result), file=stdout or sys.stdout)
    return 0 if result.passed else 1


def validate(config_path: str, stdout: TextIO | None = None) -> int:
    """``evalharness validate CONFIG``."""
    loaded = load_config(config_path)
    plan = make_plan(loaded)
    print(f"{config_path}: valid — {len(loaded.suites)} suites, {plan.cases} cases, {len(plan.cells)} cells, "
          f"{len(plan.items)} requests", file=stdout or sys.stdout)
    return 0
