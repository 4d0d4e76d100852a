"""The flow end to end: config → plan → run → store → score → gate → report."""

from __future__ import annotations

import gc
import hashlib
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from evalharness import __version__
from evalharness.client import ChatClient
from evalharness.config import LoadedConfig, load_config
from evalharness.console import format_comparison, format_outcome, format_plan
from evalharness.errors import RunAborted, UsageError
from evalharness.local import TargetCheck, open_target
from evalharness.plan import Plan, make_plan
from evalharness.progress import Progress
from evalharness.regress import Population, compare_runs, load_baselines, load_run, stored_baseline
from evalharness.report import write_reports
from evalharness.runner import Runner
from evalharness.scoring.metrics import CaseSpec
from evalharness.store import (
    MANIFEST,
    SUMMARY,
    ResultWriter,
    new_run_id,
    open_run_dir,
    read_json,
    read_records,
    read_superseded,
    set_aside_failures,
    write_json,
)
from evalharness.summary import build_summary
from evalharness.tokens import TokenCounter
from evalharness.transport import run_async


def build_manifest(loaded: LoadedConfig, plan: Plan, run_id: str, target: dict[str, Any]) -> dict[str, Any]:
    """The run's manifest: config (no secrets: header values are dropped), plan, version, target, time."""
    config = loaded.config.model_dump(mode="json", exclude_none=False)
    config["target"]["headers"] = {name: "<redacted>" for name in config["target"].get("headers", {})}
    cases = {}
    for suite in loaded.suites:
        for case in suite.cases:
            spec = CaseSpec(expect=case.expect, schema=suite.schemas.get(case.id), extract=case.extract)
            cases[f"{suite.name}/{case.id}"] = spec.to_manifest()
    return {
        "run_id": run_id, "harness_version": __version__,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_path": str(loaded.path), "config": config, "target": target,
        "plan": {"requests": len(plan.items), "repeats": plan.repeats, "cases": plan.cases,
                 "cells": [{"cell_id": c.cell_id, "label": c.label, "params": c.params} for c in plan.cells],
                 "item_ids_digest": _digest(i.item_id for i in plan.items)},
        "cases": cases,
    }


def _digest(ids: Iterable[str]) -> str:
    """One fingerprint of the planned item ids: a resume must be of the same plan."""
    h = hashlib.sha1()
    for item_id in ids:
        h.update(item_id.encode() + b"\n")
    return h.hexdigest()




def finish(run_dir: Path, *, complete: bool, stop_reason: str | None = None, gates: bool = True,
           baseline: str | None = None, records: list[dict[str, Any]] | None = None,
           population: Population = "suite") -> dict[str, Any]:
    """Score the stored records, write summary.json and every report (``baseline``: ``run --baseline``,
    judged for ``population``)."""
    manifest = read_json(run_dir / MANIFEST)
    if records is None:
        records = read_records(run_dir, compact=True)
    baselines = load_baselines(manifest, run_dir, baseline) if gates else None
    # The records (and baselines) live until the reports are written: the collector need not walk them
    # again and again meanwhile. Unfrozen afterwards, so nothing stays exempt once they are dropped.
    gc.freeze()
    try:
        summary = build_summary(manifest, records, complete=complete, stop_reason=stop_reason,
                                gates_enabled=gates, baselines=baselines, population=population)
        write_json(run_dir / SUMMARY, summary)
        summary["_reports"] = [str(p) for p in write_reports(run_dir, manifest, summary, records)]
    finally:
        gc.unfreeze()
    return summary


def exit_code(summary: dict[str, Any]) -> int:
    if not summary["complete"]:
        return 3
    return 0 if summary["passed"] else 1


def run(config_path: str, *, out: str | None = None, dry_run: bool = False, resume: str | None = None,
        gates: bool = True, baseline: str | None = None, population: Population = "suite",
        stdout: TextIO | None = None) -> int:
    """``evalharness run``: returns the exit code."""
    stdout = stdout or sys.stdout
    if baseline:
        open_run_dir(Path(baseline))  # a wrong --baseline is a usage error before anything is spent
    loaded = load_config(config_path)
    cfg = loaded.config
    plan = make_plan(loaded)
    if dry_run:
        estimate = plan.estimate(cfg.pricing.input_per_1k, cfg.pricing.output_per_1k)
        print(format_plan(cfg.name, plan, estimate, cfg.pricing.currency), file=stdout)
        return 0
    if resume:
        run_dir = open_run_dir(Path(resume))
        manifest = read_json(run_dir / MANIFEST)
        if manifest["plan"]["item_ids_digest"] != _digest(i.item_id for i in plan.items):
            raise UsageError(f"{run_dir} was planned from a different config (cells, cases or repeats "
                             f"differ); resume it with the config it was started with")
    else:
        run_dir = Path(out) if out else Path("reports") / cfg.name / new_run_id()
        run_dir.mkdir(parents=True, exist_ok=True)
    # A resume sends again what failed before (e.g. after fixing an API key); what succeeded is never re-sent.
    records = set_aside_failures(run_dir) if resume else read_records(run_dir)
    done = {r["item_id"] for r in records}
    todo = [item for item in plan.items if item.item_id not in done]
    # A resumed run's budget counts what its earlier parts were charged, failed attempts included.
    spent = sum(r.get("budget_charge", r.get("cost")) or 0.0 for r in records + read_superseded(run_dir))
    stop_reason = None
    try:
        with open_target(loaded.config.target, run_dir / "server.log") as (target, check_target):
            if resume:
                manifest["target"] = target
                manifest.setdefault("resumed_at", []).append(datetime.now(UTC).isoformat(timespec="seconds"))
            else:
                manifest = build_manifest(loaded, plan, run_dir.name, target)
            write_json(run_dir / MANIFEST, manifest)
            print(f"Running {cfg.name}: {len(todo)} requests"
                  + (f" ({len(done)} already done)" if done else "")
                  + f" against {target['model']} at {target['base_url']}", file=stdout, flush=True)
            run_async(_execute(loaded, target, run_dir, todo, spent=spent, check_target=check_target))
    except RunAborted as exc:
        stop_reason = str(exc)
        if not (run_dir / MANIFEST).exists():
            raise
    except KeyboardInterrupt:
        stop_reason = "interrupted"
        if not (run_dir / MANIFEST).exists():
            raise RunAborted("interrupted before the run started") from None
    summary = finish(run_dir, complete=stop_reason is None, stop_reason=stop_reason, gates=gates, baseline=baseline,
                     population=population)
    print(format_outcome(summary, str(run_dir), summary.pop("_reports")), file=stdout)
    if stop_reason:
        print(f"The run stopped early: {stop_reason}\nResume it with: evalharness run {config_path} "
              f"--resume {run_dir}", file=sys.stderr)
    return exit_code(summary)


async def _execute(loaded: LoadedConfig, target: dict[str, Any], run_dir: Path, todo: list[Any], *,
                   spent: float = 0.0, check_target: TargetCheck | None = None) -> None:
    cfg = loaded.config
    writer = ResultWriter(run_dir)
    key = loaded.api_key()
    counter = TokenCounter(cfg.target.tokenizer_url or target["base_url"], target["model"], timeout_s=cfg.run.timeout_s,
                           headers={**cfg.target.headers, **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        async with ChatClient(target["base_url"], api_key=key, headers=cfg.target.headers,
                              timeout_s=cfg.run.timeout_s, max_connections=cfg.run.concurrency) as chat:
            runner = Runner(chat, model=target["model"], options=cfg.run, pricing=cfg.pricing, writer=writer,
                            api_key_env=cfg.target.api_key_env, progress=Progress(), counter=counter,
                            check_target=check_target)
            await runner.run(todo, total=len(todo), spent=spent)
    finally:
        writer.close()
        await counter.aclose()


def report(run_dir_arg: str, stdout: TextIO | None = None) -> int:
    """``evalharness report RUN_DIR``: re-score and re-render from stored records only."""
    stdout = stdout or sys.stdout
    run_dir = open_run_dir(Path(run_dir_arg))
    previous = read_json(run_dir / SUMMARY) if (run_dir / SUMMARY).exists() else {}
    manifest = read_json(run_dir / MANIFEST)
    records = read_records(run_dir, compact=True)
    complete = len(records) >= manifest["plan"]["requests"]
    stop_reason = None if complete else (previous.get("stop_reason") or
                                         f"{len(records)} of {manifest['plan']['requests']} requests stored")
    summary = finish(run_dir, complete=complete, stop_reason=stop_reason, baseline=stored_baseline(previous),
                     records=records, population=(previous.get("baseline") or {}).get("population", "suite"))
    print(format_outcome(summary, str(run_dir), summary.pop("_reports")), file=stdout)
    return exit_code(summary)


def compare(base_run: str, new_run: str, *, rate_tolerance: float, latency_tolerance: float,
            population: Population = "suite", json_out: str | None = None, stdout: TextIO | None = None) -> int:
    """``evalharness compare BASE_RUN NEW_RUN``: exit 1 when anything regressed, else 0."""
    result = compare_runs(load_run(base_run), load_run(new_run), rate_tolerance=rate_tolerance,
                          latency_tolerance=latency_tolerance, population=population)
    if not result["cells"]:
        raise UsageError(f"no cell of {new_run} has the same params as a cell of {base_run}; "
                         "compare runs of the same grid")
    if json_out:
        write_json(Path(json_out), result)
    print(format_comparison(result), file=stdout or sys.stdout)
    return 0 if result["passed"] else 1


def validate(config_path: str, stdout: TextIO | None = None) -> int:
    """``evalharness validate CONFIG``."""
    loaded = load_config(config_path)
    plan = make_plan(loaded)
    print(f"{config_path}: valid — {len(loaded.suites)} suites, {plan.cases} cases, {len(plan.cells)} cells, "
          f"{len(plan.items)} requests", file=stdout or sys.stdout)
    return 0
