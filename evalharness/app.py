"""The commands ``run``, ``merge``, ``report``, ``compare`` and ``validate``: the Python API, printed for a terminal.

Each calls ``api.py``, prints what it returns and gives the exit code (README): 0 every gate passed, 1 a
gate failed or something regressed, 3 the run could not complete. Errors propagate to ``cli.main``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from evalharness import api
from evalharness.config import LoadedConfig, load_config
from evalharness.console import format_comparison, format_outcome, format_plan
from evalharness.errors import UsageError
from evalharness.github import comment_from_cli
from evalharness.history import default_out, write_history
from evalharness.judgeconfig import judge_plan_line
from evalharness.pairs import Question
from evalharness.plan import make_plan
from evalharness.progress import Progress
from evalharness.regress import Population
from evalharness.report.compare_md import comparison_markdown
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
        stdout: TextIO | None = None, shard: Shard | None = None, overrides: dict[str, Any] | None = None) -> int:
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
        _say_skipped(loaded, stdout)
        if judged := judge_plan_line(loaded, len(plan.items), len(plan.cells)):
            print(judged, file=stdout)
        return 0
    result = api.run(config_path, out=out, resume=resume, gates=gates, baseline=baseline, population=population,
                     progress=Progress(announce=stdout), shard=shard, overrides=overrides)
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
            population: Population = "suite", json_out: str | None = None, fmt: str = "text",
            stdout: TextIO | None = None, match_target: tuple[str, str] | None = None) -> int:
    """``evalharness compare BASE_RUN NEW_RUN``: exit 1 when anything regressed, else 0."""
    result = api.compare(base_run, new_run, population=population, max_drop=rate_tolerance,
                         max_slowdown=latency_tolerance, match_target=match_target)
    if json_out:
        write_json(Path(json_out), result.result)
    if fmt == "json":
        text = json.dumps(result.result, indent=2, ensure_ascii=False, default=str)
    elif fmt == "markdown":
        text = comparison_markdown(result.result).rstrip("\n")
    else:
        text = format_comparison(result.result)
    print(text, file=stdout or sys.stdout)
    return 0 if result.passed else 1


def history(dirs: list[str], *, out: str | None = None, last: int | None = None, jobs: int = 1,
            rate_tolerance: float = 0.0,
            latency_tolerance: float = 1.0, population: Population = "suite", stdout: TextIO | None = None) -> int:
    """``evalharness history DIR...``: writes history.html and history.json; exit 0 (it judges nothing new)."""
    if last is not None and last < 1:
        raise UsageError("--last: want a number of runs >= 1")
    folder = Path(out) if out else default_out(dirs)
    if jobs < 1:
        raise UsageError("--jobs: want a number of processes >= 1")
    written, paths = write_history(dirs, folder, last=last, jobs=jobs, question=Question(population, rate_tolerance,
                                                                             latency_tolerance))
    stdout = stdout or sys.stdout
    runs = written["runs"]
    for s in written["skipped"]:
        print(f"skipped {s['run_dir']}: {s['reason']}", file=sys.stderr)
    regressed = [r for r in runs if r["regressions"]]
    print(f"{len(runs)} runs, {sum(not r['passed'] for r in runs)} with a failed gate, {len(regressed)} with a "
          "regression against the run before", file=stdout)
    for r in regressed:
        more = len(r["regressions"]) - 1
        print(f"  {r['run_id']}: {r['regressions'][0]['message']}" + (f" (and {more} more)" if more else ""),
              file=stdout)
    for p in paths:
        print(f"  {p}", file=stdout)
    return 0


def github_comment(body_file: str, *, repo: str | None, number: int | None, token_env: str,
                   api_url: str | None, stdout: TextIO | None = None) -> int:
    """``evalharness github-comment BODY_FILE``: creates or updates the pull request's comment."""
    posted = comment_from_cli(body_file, repo=repo, number=number, token_env=token_env, api_url=api_url)
    print(f"{posted.action} comment {posted.comment_id} {posted.url}".rstrip(), file=stdout or sys.stdout)
    return 0


def validate(config_path: str, stdout: TextIO | None = None) -> int:
    """``evalharness validate CONFIG``."""
    loaded = load_config(config_path)
    plan = make_plan(loaded)
    print(f"{config_path}: valid — {len(loaded.suites)} suites, {plan.cases} cases, {len(plan.cells)} cells, "
          f"{len(plan.items)} requests", file=stdout or sys.stdout)
    _say_skipped(loaded, stdout or sys.stdout)
    return 0


def _say_skipped(loaded: LoadedConfig, stdout: TextIO) -> None:
    """A line for each optional target this environment leaves out (its key or address unset)."""
    for target in loaded.config.targets:
        why = loaded.skipped(target)
        if why:
            print(f"target {target.label} {why}", file=stdout)
