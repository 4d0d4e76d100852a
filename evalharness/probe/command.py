"""``evalharness probe CONFIG [--out DIR]``: start or reach the target, run the experiments, write it down."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import jinja2

from evalharness import __version__
from evalharness.backend import Backend
from evalharness.client import ChatClient
from evalharness.config import LoadedConfig, Target, load_config
from evalharness.errors import RunAborted, UsageError
from evalharness.fanout import run_options
from evalharness.flow import open_target_or_backend
from evalharness.local import TargetCheck
from evalharness.probe.experiments import run_experiments
from evalharness.probe.prober import VERDICTS, Finding, Prober
from evalharness.probe.side_by_side import render_side_by_side, side_by_side_table
from evalharness.proxy import route_for
from evalharness.store import new_run_id, write_json
from evalharness.tokens import TokenCounter
from evalharness.transport import side_transport
from evalharness.types import TargetInfo, UsageCheck
from evalharness.usage import UsageSample, usage_check

_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Probe: {{ target }}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;
vertical-align:top}th{background:#f4f4f4}td.v{font-weight:600;white-space:nowrap}
.honored{color:#17692b}.ignored{color:#9a5b00}.rejected{color:#b00020}.inconclusive{color:#555}
code{font-size:13px}
</style></head><body>
<h1>Which parameters does this target honour?</h1>
<p><b>{{ target }}</b> · probed {{ started_at }} · {{ requests }} requests · evalharness {{ version }}</p>
<p>{% for verdict, n in counts %}<span class="{{ verdict }}">{{ n }} {{ verdict }}</span>{% if not loop.last %}
 · {% endif %}{% endfor %}</p>
{% if usage_note %}<p><b>Usage:</b> {{ usage_note }}</p>{% endif %}
<table><thead><tr><th>parameter</th><th>verdict</th><th>evidence</th></tr></thead><tbody>
{% for r in results %}<tr><td><code>{{ r.parameter }}</code></td><td class="v {{ r.verdict }}">{{ r.verdict }}</td>
<td>{{ r.evidence }}</td></tr>
{% endfor %}</tbody></table>
<p>honored: the output changed the way the parameter says · ignored: accepted, output as without it ·
rejected: the server answered with an error · inconclusive: the experiment could not tell.</p>
</body></html>
""")


def render_html(doc: dict[str, Any]) -> str:
    """The probe page, from the same dict as probe.json."""
    t = doc["target"]
    counts = [(v, sum(r["verdict"] == v for r in doc["results"])) for v in VERDICTS]
    return _HTML.render(target=f"{t['model']} at {t['base_url']}", started_at=doc["started_at"],
                        requests=doc["requests"], version=doc["harness_version"],
                        counts=[(v, n) for v, n in counts if n], results=doc["results"],
                        usage_note=(doc.get("usage_check") or {}).get("note") or "")


def format_table(results: list[dict[str, Any]], width: int = 110) -> str:
    """The console table: parameter, verdict, evidence (cut to ``width`` characters)."""
    w0 = max(len("parameter"), *(len(r["parameter"]) for r in results))
    w1 = max(len("verdict"), *(len(r["verdict"]) for r in results))
    lines = [f"{'parameter':<{w0}}  {'verdict':<{w1}}  evidence", f"{'-' * w0}  {'-' * w1}  {'-' * 8}"]
    for r in results:
        evidence = r["evidence"] if len(r["evidence"]) <= width else r["evidence"][:width - 1] + "…"
        lines.append(f"{r['parameter']:<{w0}}  {r['verdict']:<{w1}}  {evidence}")
    return "\n".join(lines)




async def check_usage(prober: Prober, counter: TokenCounter) -> UsageCheck | None:
    """The usage check (``usage.usage_check``) on the probe's first answers that carried usage; None without
    a tokenizer endpoint to count with."""
    records: list[UsageSample] = []
    for body, outcome in prober.answered:
        counted = await counter.count(body, outcome)
        if counted is None:
            return None
        records.append({"usage": outcome.usage, "usage_check": {**counted.usage, **counted.describe()}})
    return usage_check(records)


async def probe_target(loaded: LoadedConfig, target: TargetInfo, check_target: TargetCheck | None = None,
                       *, backend: Backend | None = None, spec: Target | None = None,
                       close_backend: bool = True) -> tuple[list[Finding], int, UsageCheck | None]:
    """Run every experiment against ``target``; the findings in table order, the number of requests, and the
    usage check.

    ``check_target`` (the bundled server's) raises ``TargetCrashed`` when a failed request finds it dead.
    ``backend`` answers the requests instead of an OpenAI-compatible client to ``target`` (the protocol the
    runner uses, backend.py); it has no tokenizer endpoint, so the usage check and the logit_bias experiment's
    token ids are left out, as for a server without one. It is closed when the probe is done. ``spec`` is the
    config's target probed (default: the first), whose headers, proxy, thinking and extra_body apply."""
    cfg = loaded.config
    spec = spec or cfg.target
    defaults = cfg.defaults.model_dump(exclude_unset=True)
    base = {k: defaults[k] for k in ("extra_body", "thinking") if defaults.get(k) is not None}
    if spec.extra_body:
        base["extra_body"] = {**spec.extra_body, **base.get("extra_body", {})}
    options = run_options(cfg, spec)
    counter: TokenCounter | None = None
    async with contextlib.AsyncExitStack() as stack:
        if backend is None:
            headers = dict(spec.headers)
            key = loaded.api_key(spec)
            if key:
                headers["Authorization"] = f"Bearer {key}"
            route = route_for(target["base_url"], spec.proxy, local=target["kind"] == "local")
            counter = TokenCounter(spec.tokenizer_url or target["base_url"], target["model"], headers,
                                   timeout_s=options.timeout_s, transport=side_transport(route))
            stack.push_async_callback(counter.aclose)
            backend = ChatClient(target["base_url"], api_key=key, headers=spec.headers,
                                 timeout_s=options.timeout_s, max_connections=options.concurrency, route=route)
        if close_backend or counter is not None:
            stack.push_async_callback(backend.aclose)
        # One request at a time whatever run.concurrency says: see Prober.
        prober = Prober(backend, target["model"], base, spec.thinking, max_retries=min(options.max_retries, 3),
                        tokenizer=counter, check_target=check_target)
        findings = await run_experiments(prober)
        usage = await check_usage(prober, counter) if counter is not None else None
    return findings, prober.requests, usage


def probe(config_path: str, *, out: str | None = None, stdout: TextIO | None = None,
          backend: Backend | None = None, target: str | None = None) -> int:
    """``evalharness probe CONFIG [--out DIR] [--target NAME]``: run the experiments on every target of the
    config (or the one named), print the table, write probe.json/.html.

    ``backend`` answers the requests instead of the config's target, which is then neither started nor
    called (as for ``evalharness.run``). With several targets, the table and probe.html have a column per
    target (``side_by_side.py``), and probe.json a ``targets`` list of each target's results."""
    stdout = stdout or sys.stdout
    loaded = load_config(config_path)
    cfg = loaded.config
    specs = [t for t in cfg.targets if target is None or t.label == target]
    if not specs:
        raise UsageError(f"{config_path} has no target {target!r}; its targets are "
                         f"{', '.join(t.label for t in cfg.targets)}")
    for spec in specs:
        if loaded.skipped(spec) is None:
            loaded.api_key(spec)  # an unset key variable is a config error before anything is created or sent
    out_dir = Path(out) if out else Path("reports") / cfg.name / f"probe-{new_run_id()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        docs = _probe_all(loaded, specs, out_dir, backend, stdout)
    finally:
        if backend is not None:
            asyncio.run(backend.aclose())
    if len(specs) == 1 and "target" in docs[0]:
        doc = {k: v for k, v in docs[0].items() if k != "name"}
        write_json(out_dir / "probe.json", doc)
        (out_dir / "probe.html").write_text(render_html(doc), encoding="utf-8")
        print(format_table(doc["results"]), file=stdout)
        usage = doc.get("usage_check")
        if usage and usage.get("estimated_by_gateway"):
            print(f"\nUsage: {usage['note']}", file=stdout)
        print(f"\n{len(doc['results'])} parameters in {doc['requests']} requests, {doc['duration_s']} s. Wrote "
              f"{out_dir / 'probe.json'} and {out_dir / 'probe.html'}", file=stdout)
        return 0
    combined = {"config_path": str(loaded.path), "harness_version": __version__, "targets": docs}
    write_json(out_dir / "probe.json", combined)
    (out_dir / "probe.html").write_text(render_side_by_side(combined), encoding="utf-8")
    print(side_by_side_table(docs), file=stdout)
    requests = sum(d.get("requests", 0) for d in docs)
    print(f"\n{len(docs)} targets in {requests} requests. Wrote {out_dir / 'probe.json'} and "
          f"{out_dir / 'probe.html'}", file=stdout)
    return 0


def _probe_all(loaded: LoadedConfig, specs: list[Target], out_dir: Path, backend: Backend | None,
               stdout: TextIO) -> list[dict[str, Any]]:
    """Probe each target in turn: its part of probe.json, or why it has none (skipped, failed)."""
    docs: list[dict[str, Any]] = []
    for spec in specs:
        skipped = loaded.skipped(spec)
        if skipped:
            print(f"Target {spec.label} {skipped}", file=stdout, flush=True)
            docs.append({"name": spec.label, "skipped": skipped, "results": []})
            continue
        log = out_dir / ("server.log" if len(specs) == 1 else f"server-{spec.label}.log")
        try:
            docs.append({"name": spec.label, **_probe_one(loaded, spec, log, out_dir, backend, stdout)})
        except RunAborted as exc:
            if len(specs) == 1:
                raise
            # One target down does not hide what the others honour: its column says why it is empty.
            print(f"Target {spec.label} failed: {exc}", file=stdout, flush=True)
            out_dir.mkdir(parents=True, exist_ok=True)
            docs.append({"name": spec.label, "failed": f"failed: {exc}", "results": []})
    return docs


def _probe_one(loaded: LoadedConfig, spec: Target, log: Path, out_dir: Path, backend: Backend | None,
               stdout: TextIO) -> dict[str, Any]:
    """Open one target, probe it, and return its part of probe.json."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.monotonic()
    try:
        with open_target_or_backend(loaded, log, backend, spec) as (target, check_target):
            # No count here: experiments report one or more parameters each, and the rows are counted below.
            print(f"Probing {target['model']} at {target['base_url']}", file=stdout, flush=True)
            # A backend given is the caller's for every target: closed once, when the probe is done.
            findings, requests, usage = asyncio.run(probe_target(loaded, target, check_target, backend=backend,
                                                                 spec=spec, close_backend=False))
    except BaseException:
        with contextlib.suppress(OSError):
            out_dir.rmdir()  # only when empty: a local server's log stays for the diagnosis
        raise
    return {"target": target, "config_path": str(loaded.path), "started_at": started,
            "harness_version": __version__, "requests": requests, "duration_s": round(time.monotonic() - t0, 1),
            "results": [asdict(f) for f in findings], "usage_check": usage}
