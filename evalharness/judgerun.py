"""Calling the judges after the target has answered: judgements.jsonl, appended and flushed per call.

Only judgements not stored yet are requested (a resumed run, or one whose judge failed before, asks for the
rest); identical requests are sent once. A judge that fails is recorded as such and its checks are
``unjudged``, never passed. ``evalharness report`` never gets here: it scores from the stored judgements.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson

from evalharness.backend import Backend, Outcome
from evalharness.client import ChatClient
from evalharness.config import Endpoint, Judge, LoadedConfig, Pricing, Target
from evalharness.errors import ConfigError
from evalharness.judgeconfig import judge_template, judged_target
from evalharness.judging import JUDGEMENTS, JudgeRequest, judge_params, judges_of, record_requests
from evalharness.local import MODEL_ALIAS, open_target
from evalharness.pairwise import pairs
from evalharness.progress import Progress
from evalharness.proxy import route_for
from evalharness.types import Judgement, Manifest, Record, TargetInfo
from evalharness.usage import cost_of

#: A target of the run as a judge reuses it: where it is, its config, and the backend a caller gave for it.
Reached = tuple[TargetInfo, Target, Backend | None]
_T = TypeVar("_T")

#: Error kinds worth another attempt (the runner's view, for the judge's calls).
_RETRY = {"timeout", "connect_error", "stream_broken", "stream_incomplete"}


def manifest_judges(loaded: LoadedConfig, targets: Mapping[str, TargetInfo]) -> dict[str, Any]:
    """What the manifest keeps of each judge: enough to build its requests again, and where it was.
    ``targets``: where each target of the run is, by name."""
    out: dict[str, Any] = {}
    for name, judge in loaded.config.judges.items():
        where: dict[str, str | None]
        if judge.target is not None:
            model, where = _reused(loaded, name, targets)["model"], {"target": judge.target}
        else:
            model = judge.model or MODEL_ALIAS
            where = {"kind": judge.kind, "base_url": judge.base_url}
        out[name] = {"model": model, **where, "repeats": judge.repeats,
                     "params": judge_params(judge.params.model_dump(exclude_unset=True)),
                     "template": judge_template(judge, loaded.folder), "template_path": judge.template}
    return out


def _reused(loaded: LoadedConfig, name: str, targets: Mapping[str, _T]) -> _T:
    """What ``targets`` holds for the target judge ``name`` reuses; a target left out of the run (optional,
    its key unset) cannot judge."""
    judge = loaded.config.judges[name]
    spec = judged_target(loaded.config, judge)
    if spec is None or spec.label not in targets:
        raise ConfigError(f"the judge {name} reuses the target {judge.target}, which this run does not reach",
                          file=str(loaded.path) if loaded.path else None, key=f"judges.{name}.target",
                          hint="give the judge an endpoint of its own, or make that target reachable")
    return targets[spec.label]


def judge_api_key(loaded: LoadedConfig, name: str) -> str | None:
    """The API key of judge ``name`` (its target's for ``target: target``) from the environment; a variable
    named but unset is a config error, raised before anything is sent."""
    judge = loaded.config.judges[name]
    if judge.target is not None:
        return loaded.api_key(judged_target(loaded.config, judge))
    env = judge.api_key_env
    key = os.environ.get(env) if env else None
    if env and not key and judge.kind != "local":
        raise ConfigError(f"{env} is not set in this environment (or is empty), so the requests to the judge "
                          f"{name} ({judge.model} at {judge.base_url}) would carry no API key",
                          file=str(loaded.path) if loaded.path else None, key=f"judges.{name}.api_key_env",
                          hint=f"export {env}=<its key>; for a judge that needs no key, write api_key_env: null")
    return key or None


def read_judgements(run_dir: Path) -> dict[str, Judgement]:
    """The stored judgements by key; a later line for a key wins unless it failed where an earlier one
    succeeded. A torn last line (a run killed mid-write) is skipped."""
    path = run_dir / JUDGEMENTS
    found: dict[str, Judgement] = {}
    if not path.exists():
        return found
    with path.open("rb") as f:
        for raw in f:
            try:
                line: Judgement = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            old = found.get(line["key"])
            if old is None or line["ok"] or not old["ok"]:
                found[line["key"]] = line
    return found


def pending(manifest: Manifest, records: list[Record], stored: dict[str, Judgement]) -> list[JudgeRequest]:
    """The judge calls the records need that are not stored (or stored as failed), each once."""
    judges = judges_of(manifest)
    todo: dict[str, JudgeRequest] = {}
    for record in records:
        for _, calls in record_requests(manifest, record, judges):
            for call in calls:
                done = stored.get(call.key)
                if (done is None or not done["ok"]) and call.key not in todo:
                    todo[call.key] = call
    for _, _, a_first, b_first in pairs(manifest, records):
        for call in (*a_first, *b_first):
            done = stored.get(call.key)
            if (done is None or not done["ok"]) and call.key not in todo:
                todo[call.key] = call
    return list(todo.values())


class _Writer:
    """judgements.jsonl, opened for appending; each line written and handed to the OS as it completes."""

    def __init__(self, run_dir: Path) -> None:
        path = run_dir / JUDGEMENTS
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with path.open("ab") as f:  # a torn last line stays behind as its own, unreadable line
                f.write(b"\n")
        self._fh = path.open("ab", buffering=0)

    def write(self, line: Judgement) -> None:
        self._fh.write(orjson.dumps(line) + b"\n")  # unbuffered: in the OS's hands when this returns

    def close(self) -> None:
        self._fh.close()


async def _call(backend: Backend, call: JudgeRequest, pricing: Pricing, max_retries: int) -> Judgement:
    started = datetime.now(UTC).isoformat(timespec="milliseconds")
    outcome = Outcome(ok=False)
    attempts = 0
    for attempt in range(max_retries + 1):
        attempts += 1
        outcome = await backend.complete(call.body)
        retry = outcome.error_kind in _RETRY or (outcome.status or 0) in (429, 500, 502, 503, 504)
        if outcome.ok or not retry or attempt == max_retries:
            break
        await asyncio.sleep(min(8.0, 0.5 * 2 ** attempt))
    return {"key": call.key, "judge": call.judge, "repeat": call.repeat, "request": call.body,
            "started_at": started, "ok": outcome.ok, "http_status": outcome.status, "error_kind": outcome.error_kind,
            "error": outcome.error, "content": outcome.content, "usage": outcome.usage,
            "cost": cost_of(outcome.usage, pricing), "e2e_s": outcome.e2e_s, "attempts": attempts}


@contextlib.contextmanager
def _endpoint(judge: Judge, run_dir: Path, name: str) -> Iterator[TargetInfo]:
    with open_target(judge, run_dir / f"judge-{name}-server.log") as (info, _):
        yield info


async def judge_run(loaded: LoadedConfig, manifest: Manifest, run_dir: Path, records: list[Record], *,
                    targets: Mapping[str, Reached], progress: Progress) -> int:
    """Ask the judges for every judgement the records need and the run dir lacks; return how many were asked.

    A judge with ``target: NAME`` is sent its requests the way that target's are (``targets[NAME]``: where it
    is, its config, and the backend a caller gave for it, if any); any other judge is reached at its own
    endpoint (a bundled one started for it).
    """
    stored = read_judgements(run_dir)
    todo = pending(manifest, records, stored)
    if not todo:
        return 0
    cfg = loaded.config
    progress.announce(f"Judging: {len(todo)} judge requests" + (f" ({len(stored)} already stored)" if stored else ""))
    writer = _Writer(run_dir)
    try:
        with contextlib.ExitStack() as stack:
            backends: dict[str, tuple[Backend, Pricing]] = {}
            for name in {c.judge for c in todo}:
                judge = cfg.judges[name]
                pricing = judge.pricing or cfg.pricing if judge.target else judge.pricing or Pricing()
                source: Endpoint = judge
                if judge.target is not None:
                    info, source, given = _reused(loaded, name, targets)
                    if given is not None:
                        backends[name] = (given, pricing)
                        continue
                else:
                    info = stack.enter_context(_endpoint(judge, run_dir, name))
                # The judge is reached as its target is: directly or through the proxy its config names.
                headers = source.headers
                route = route_for(info["base_url"], source.proxy, local=info["kind"] == "local")
                key = judge_api_key(loaded, name)
                backends[name] = (ChatClient(info["base_url"], api_key=key, headers=headers,
                                             timeout_s=cfg.run.timeout_s, max_connections=cfg.run.concurrency,
                                             route=route),
                                  pricing)
            slots = asyncio.Semaphore(cfg.run.concurrency)

            async def one(call: JudgeRequest) -> None:
                async with slots:
                    backend, pricing = backends[call.judge]
                    writer.write(await _call(backend, call, pricing, cfg.run.max_retries))

            try:
                await asyncio.gather(*(one(c) for c in todo))
            finally:
                for backend, _ in backends.values():
                    if all(backend is not given for _, _, given in targets.values()):
                        await backend.aclose()
    finally:
        writer.close()
    return len(todo)
