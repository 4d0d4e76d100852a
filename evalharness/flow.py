"""The flow end to end, without a word to the console: config → plan → run → store → score → gate → report.

The Python API (``api.py``) and the command line (``app.py``) both run evaluations through here; what a run
prints is the caller's choice (``Progress``), and what it produced comes back as a ``Finished``. Requests go
to the config's target through ``client.ChatClient``, or to a ``Backend`` the caller gives (backend.py).
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evalharness import __version__, shards
from evalharness.backend import Backend
from evalharness.baselines import load_baselines, stored_baseline
from evalharness.config import LoadedConfig, Target
from evalharness.errors import RunAborted, UsageError
from evalharness.fanrun import Backends, Part, open_parts, own_backend, run_parts, skipped_statuses
from evalharness.judgerun import judge_api_key, judge_run, manifest_judges, read_judgements
from evalharness.judging import attach_judged, judge_totals
from evalharness.load.driver import LoadDriver
from evalharness.local import MODEL_ALIAS, TargetCheck, open_target
from evalharness.pairwise import comparisons
from evalharness.plan import Plan, make_plan
from evalharness.progress import Progress
from evalharness.proxy import Route, redact, route_for
from evalharness.rayrun import require_ray, run_on_ray
from evalharness.regress import Population
from evalharness.report import write_reports
from evalharness.scoring import bycell
from evalharness.scoring.metrics import CaseSpec
from evalharness.shards import Shard
from evalharness.store import (
    MANIFEST,
    SUMMARY,
    new_run_id,
    open_run_dir,
    read_json,
    read_records,
    read_superseded,
    set_aside_failures,
    write_json,
)
from evalharness.summary import build_summary
from evalharness.transport import run_async, transport_name
from evalharness.types import Manifest, Record, Summary, TargetInfo


@dataclass(frozen=True)
class Finished:
    """A scored run: its folder, summary.json's content, and the report files written beside it."""

    run_dir: Path
    summary: Summary
    reports: list[Path]


def build_manifest(loaded: LoadedConfig, plan: Plan, run_id: str, target: TargetInfo,
                   transport: dict[str, Any]) -> Manifest:
    """The run's manifest: config (no secrets: header values are dropped, a proxy's password masked), plan,
    version, target, the transport and proxy used, time."""
    config: dict[str, Any] = loaded.config.model_dump(mode="json", exclude_none=False)
    for written in [config["target"], *config.get("targets", []), *(config.get("judges") or {}).values()]:
        written["headers"] = {name: "<redacted>" for name in written.get("headers", {})}
        if written.get("proxy"):
            written["proxy"] = redact(written["proxy"])
    cases = {}
    for suite in loaded.suites:
        for case in suite.cases:
            own = suite.checks.get(case.id, [])
            # A judge is shown what the case asked, so the manifest keeps it for cases a judge grades too.
            shown = bool(own) or bool(case.expect and case.expect.judge_checks()) or bool(loaded.config.judge_compare)
            spec = CaseSpec(expect=case.expect, schema=suite.schemas.get(case.id), extract=case.extract,
                            checks=tuple(own), context={"suite": suite.name, "case_id": case.id, "vars": case.vars,
                                                        "messages": suite.messages[case.id]} if shown else {})
            cases[f"{suite.name}/{case.id}"] = spec.to_manifest()
    manifest: Manifest = {
        "run_id": run_id, "harness_version": __version__,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        # A config given as a mapping has no file; its paths (baseline gates) resolve against config_dir.
        "config_path": str(loaded.path) if loaded.path else None, "config_dir": str(loaded.folder),
        "config": config, "target": target,
        "transport": transport,
        "plan": {"requests": len(plan.items), "repeats": plan.repeats, "cases": plan.cases,
                 "cells": [{"cell_id": c.cell_id, "label": c.label, "params": c.params} for c in plan.cells],
                 "item_ids_digest": _digest(i.item_id for i in plan.items)},
        "cases": cases,
    }
    return manifest


def _digest(ids: Iterable[str]) -> str:
    """One fingerprint of the planned item ids: a resume must be of the same plan."""
    h = hashlib.sha1()
    for item_id in ids:
        h.update(item_id.encode() + b"\n")
    return h.hexdigest()


def finish(run_dir: Path, *, complete: bool, stop_reason: str | None = None, gates: bool = True,
           baseline: str | None = None, records: list[Record] | None = None,
           population: Population = "suite", stored: int | None = None) -> Finished:
    """Score the stored records, write summary.json and every report (``baseline``: ``run --baseline``,
    judged for ``population``; ``stored``: how many records results.jsonl holds, if counted already)."""
    manifest = read_json(run_dir / MANIFEST)
    baselines = load_baselines(manifest, run_dir, baseline) if gates else None
    if records is None and (stored if stored is not None else bycell.count_records(run_dir)) > bycell.STREAM_ABOVE:
        index = bycell.CellIndex.build(run_dir)
        summary, sampled = bycell.score_by_cell(run_dir, manifest, index, complete=complete, stop_reason=stop_reason,
                                                gates_enabled=gates, baselines=baselines, population=population)
        write_json(run_dir / SUMMARY, summary)
        return Finished(run_dir, summary, bycell.write_sampled_reports(run_dir, manifest, summary, sampled))
    if records is None:
        records = read_records(run_dir, compact=True)
    judgements = read_judgements(run_dir) if manifest.get("judges") else {}
    attach_judged(manifest, records, judgements)
    # The records (and baselines) live until the reports are written: the collector need not walk them
    # again and again meanwhile. Unfrozen afterwards, so nothing stays exempt once they are dropped.
    gc.freeze()
    try:
        summary = build_summary(manifest, records, complete=complete, stop_reason=stop_reason,
                                gates_enabled=gates, baselines=baselines, population=population)
        if manifest.get("judges"):
            summary["judges"] = judge_totals(judgements, records, summary["totals"]["currency"])
        if manifest["config"].get("judge_compare"):
            summary["judge_comparisons"] = comparisons(manifest, records, judgements)
        write_json(run_dir / SUMMARY, summary)
        reports = write_reports(run_dir, manifest, summary, records)
    finally:
        gc.unfreeze()
    return Finished(run_dir, summary, reports)


def execute(loaded: LoadedConfig, *, progress: Progress, out: str | os.PathLike[str] | None = None,
            resume: str | os.PathLike[str] | None = None, gates: bool = True,
            baseline: str | os.PathLike[str] | None = None,
            population: Population = "suite", backend: Backends = None,
            shard: Shard | None = None) -> Finished:
    """Run a loaded config (or finish the interrupted run in ``resume``), score it and write its reports.

    ``backend`` answers the requests instead of the config's target (which is then neither started nor
    called; the bodies name its model, or the bundled model's for ``kind: local``); the run closes it.

    ``shard`` runs only that shard's items (shards.py), into a normal run directory marked as a shard; a
    resumed shard stays the shard it was started as.

    A run that stops early (budget, interruption, a target that died mid-run) is still scored and reported,
    with ``complete`` false and its ``stop_reason`` in the summary; what fails before anything is stored
    raises (``RunAborted``, ``ConfigError``, ``UsageError``).
    """
    if baseline:
        open_run_dir(Path(baseline))  # a wrong baseline is a usage error before anything is spent
    cfg = loaded.config
    plan = make_plan(loaded)
    for target in loaded.active_targets():  # an unset key variable is a config error before anything is sent
        loaded.api_key(target)
    for name, judge in cfg.judges.items():
        if judge.target is None:  # the judges' keys too
            judge_api_key(loaded, name)
    if cfg.run.executor == "ray":
        require_ray()  # not installed: said before a server is started or a folder made
    if backend is not None and cfg.load is not None and cfg.load.workers > 1:
        raise UsageError(f"load.workers: {cfg.load.workers} sends requests from other processes to the target's "
                         "address; a Python backend cannot be given to it (use workers: 1)")
    if resume:
        run_dir = open_run_dir(Path(resume))
        manifest = read_json(run_dir / MANIFEST)
        if manifest["plan"]["item_ids_digest"] != _digest(i.item_id for i in plan.items):
            raise UsageError(f"{run_dir} was planned from a different config (cells, cases or repeats "
                             f"differ); resume it with the config it was started with")
        shard = shards.resumed(run_dir, manifest.get("shard"), shard)
    else:
        run_dir = Path(out) if out else Path("reports") / cfg.name / new_run_id()
        run_dir.mkdir(parents=True, exist_ok=True)
    # A resume sends again what failed before (e.g. after fixing an API key); what succeeded is never re-sent.
    records = set_aside_failures(run_dir) if resume else read_records(run_dir)
    done = {r["item_id"] for r in records}
    planned = shard.select(plan.items, shards.Layout.of_plan(loaded, plan)) if shard else plan.items
    todo = [item for item in planned if item.item_id not in done]
    # A resumed run's budget counts what its earlier parts were charged, failed attempts included.
    spent = sum(r.get("budget_charge", r.get("cost")) or 0.0 for r in records + read_superseded(run_dir))
    stop_reason = None
    parts: list[Part] = []
    try:
        with open_parts(loaded, run_dir, backend) as parts:
            first = parts[0]
            python = own_backend(backend, first.name) is not None
            transport = first.route.describe("python" if python else transport_name(first.route))
            if resume:
                manifest["target"] = first.info
                manifest["transport"] = transport
                manifest.setdefault("resumed_at", []).append(datetime.now(UTC).isoformat(timespec="seconds"))
            else:
                manifest = build_manifest(loaded, plan, run_dir.name, first.info, transport)
                if cfg.judges:
                    manifest["judges"] = manifest_judges(loaded, {p.name: p.info for p in parts})
                if shard:
                    shards.mark(manifest, shard, planned)
            manifest["targets"] = [p.describe() for p in parts] + skipped_statuses(loaded)
            write_json(run_dir / MANIFEST, manifest)
            for skipped in skipped_statuses(loaded):
                progress.announce(f"Target {skipped['name']} {skipped['reason']}")
            progress.announce(f"Running {cfg.name}" + (f" (shard {shard})" if shard else "")
                              + f": {len(todo)} requests"
                              + (f" ({len(done)} already done)" if done else "")
                              + " against " + "; ".join(f"{p.info['model']} at {p.info['base_url']}"
                                                        + (f" ({p.name})" if len(parts) > 1 else "")
                                                        + through(p.route) for p in parts))
            try:
                drive = LoadDriver(cfg.load, plan.levels) if cfg.load else None
                if cfg.run.executor == "ray":
                    run_async(run_on_ray(loaded, parts, run_dir, todo, progress, done=done, backends=backend))
                else:
                    run_async(run_parts(loaded, parts, run_dir, todo, progress, spent=spent, backends=backend,
                                        drive=drive))
            finally:
                manifest["targets"] = [p.describe() for p in parts] + skipped_statuses(loaded)
                write_json(run_dir / MANIFEST, manifest)
            if cfg.judges:  # then the judges grade what the targets said, while their servers are still up
                reached = {p.name: (p.info, p.target, own_backend(backend, p.name)) for p in parts}
                run_async(judge_run(loaded, manifest, run_dir, read_records(run_dir), targets=reached,
                                    progress=progress))
    except RunAborted as exc:
        stop_reason = str(exc)
        if not (run_dir / MANIFEST).exists():
            raise
    except KeyboardInterrupt:
        stop_reason = "interrupted"
        if not (run_dir / MANIFEST).exists():
            raise RunAborted("interrupted before the run started") from None
    return finish(run_dir, complete=stop_reason is None, stop_reason=stop_reason, gates=gates,
                  baseline=os.fspath(baseline) if baseline else None, population=population)


def rescore(run_dir: str | Path) -> Finished:
    """``evalharness report RUN_DIR``: score a stored run again and rewrite its reports, calling nothing."""
    run_dir = open_run_dir(Path(run_dir))
    previous: Summary | None = read_json(run_dir / SUMMARY) if (run_dir / SUMMARY).exists() else None
    manifest: Manifest = read_json(run_dir / MANIFEST)
    stored = bycell.count_records(run_dir)
    # A large run is scored cell by cell (scoring/bycell.py): finish reads its records itself.
    records = read_records(run_dir, compact=True) if stored <= bycell.STREAM_ABOVE else None
    complete = stored >= manifest["plan"]["requests"]
    stop_reason = None if complete else ((previous and previous.get("stop_reason")) or
                                         f"{stored} of {manifest['plan']['requests']} requests stored")
    return finish(run_dir, complete=complete, stop_reason=stop_reason, stored=stored,
                  baseline=stored_baseline(previous) if previous else None, records=records,
                  population=((previous and previous.get("baseline")) or {}).get("population", "suite"))


@contextlib.contextmanager
def open_target_or_backend(loaded: LoadedConfig, log_path: Path, backend: Backend | None,
                            spec: Target | None = None) -> Iterator[tuple[TargetInfo, TargetCheck | None]]:
    """The target as ``open_target`` gives it, or, for a backend given by the caller, what the manifest says
    of it: its class as the address, and the model the bodies name. ``spec``: which of the config's targets
    (default: the first)."""
    spec = spec or loaded.config.target
    if backend is None:
        with open_target(spec, log_path) as opened:
            yield opened
        return
    cls = type(backend)
    yield {"kind": "python", "base_url": f"python:{cls.__module__}.{cls.__qualname__}",
           "model": spec.model or MODEL_ALIAS}, None


def target_route(loaded: LoadedConfig, target: TargetInfo) -> Route:
    """How requests reach ``target`` (as ``open_target`` gives it): directly or through a proxy."""
    return route_for(target["base_url"], loaded.config.target.proxy, local=target["kind"] == "local")


def through(route: Route) -> str:
    """`` through the proxy URL`` (password masked) for a console line, or nothing when there is no proxy."""
    return f" through the proxy {route.shown}" if route.proxy is not None else ""
