"""Plain view models for the reports: every number formatted here, so templates hold no logic."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from evalharness.judging import judges_line
from evalharness.report.boxes import latency_boxes
from evalharness.report.charts import Point, Series, cdf_chart, colour, interval_bar, pareto_front, scatter_chart
from evalharness.report.checks_view import checks_view
from evalharness.report.comparisons import comparisons_view
from evalharness.report.drilldown import determinism_view, drilldown_view
from evalharness.report.fmt import (
    cached_note,
    case_count,
    fmt,
    fmt_duration,
    fmt_interval,
    gate_bound,
    gate_subject,
    gate_value,
    provenance_note,
    source_mark,
    source_title,
    usage_note,
)
from evalharness.report.heatmap import build_heatmaps
from evalharness.report.load import load_view
from evalharness.report.outcomes import Outcomes
from evalharness.report.ranking import (
    BestSetting,
    Criterion,
    best_cell,
    best_setting,
    no_best_reason,
    primary_criterion,
    rank_cells,
    ranking,
)
from evalharness.report.targets_view import targets_view
from evalharness.scoring import catalogue
from evalharness.types import CellSummary, GateVerdict, Manifest, MetricValue, Record, Summary

__all__ = ["best_cell", "build_view", "cell_value", "fmt"]

MAX_LEADERBOARD = 10
STANDING_TEXT = {"leader": "leader", "overlaps": "≈ overlaps", "worse": "clearly worse", "not measured": "not measured"}
MAX_CDF_SERIES = 12
MAX_TABLE_ROWS = 2000
# More passing gates than this fold away under a summary line; failing ones always show.
MAX_OPEN_GATES = 6
# Failing gates named in the verdict header; the rest are in the gates section.
MAX_HEADER_GATES = 5


def cell_value(metric: MetricValue | None, field: str, kind: str) -> dict[str, str]:
    """A metric field as text, its interval, a tooltip (interval, n, or why it is missing) and a sort key."""
    if not metric:
        return {"text": "–", "interval": "", "title": "", "sort": ""}
    value = metric.get(field)
    if value is None:
        return {"text": "–", "interval": "", "title": str(metric.get("reason", "")), "sort": ""}
    fields: Mapping[str, Any] = metric
    ci = fields.get("ci95") if field == "value" else fields.get(f"{field}_ci95")
    interval = fmt_interval(ci, kind)
    title = f"95% interval {interval}" if interval else ""
    if "n" in metric:
        title += f" (n={metric['n']})"
    title = f"{title} {source_title(metric)}" if source_title(metric) else title
    approx = "≈" if metric.get("prompt_estimated") else ""
    return {"text": approx + fmt(value, kind) + source_mark(metric), "interval": interval, "title": title.strip(),
            "sort": f"{value:.6g}"}


def pass_k_note(cells: list[CellSummary]) -> str:
    """What pass@k and pass^k mean in this run, with its k; "" when no cell measured them."""
    ks = sorted({m["k"] for c in cells if (m := c["metrics"].get("pass_at_k")) and m.get("value") is not None})
    if not ks:
        return ""
    k = ", ".join(map(str, ks))
    return (f"pass@k: chance that at least one of k repeats of a case passes; pass^k: that all k pass "
            f"(k = {k}; unbiased estimates from each case's repeats, averaged over cases).")


def build_view(manifest: Manifest, summary: Summary, records: list[Record],
               outcomes: Outcomes) -> dict[str, Any]:
    """Everything report.html shows, as strings, lists and pre-built SVG."""
    cells = summary["cells"]
    keys = {c["cell_id"]: f"#{i + 1}" for i, c in enumerate(cells)}
    labels = {c["cell_id"]: c["label"] for c in cells}
    index = {c["cell_id"]: i for i, c in enumerate(cells)}
    primary = primary_criterion(cells)
    best = best_setting(cells)
    return {
        "name": summary["name"], "run_id": summary["run_id"], "target": summary["target"],
        "description": manifest.get("config", {}).get("description") or "",
        "started_at": summary["started_at"], "passed": summary["passed"], "complete": summary["complete"],
        "stop_reason": summary.get("stop_reason") or "",
        "verdict": _verdict(summary, records),
        "best": _best(best, keys) if best else None,
        "no_best": "" if best else no_best_reason(cells),
        "leaderboard": _leaderboard(cells, best, keys, index, summary["gates"]),
        "gates": _gate_sections(summary["gates"]),
        "table": _table(cells, keys),
        "pass_k_note": pass_k_note(cells),
        "heatmaps": build_heatmaps(cells, keys, primary),
        "latency": _latency(cells, records, keys, index, best),
        "cost_quality": _cost_quality(cells, keys, index),
        "determinism": determinism_view(outcomes, keys, labels),
        "comparisons": comparisons_view(summary, keys),
        "drilldown": drilldown_view(outcomes, keys, labels),
        "checks": checks_view(summary, keys),
        "load": load_view(summary, keys),
        "targets": targets_view(summary),
    }


def run_time(records: list[Record]) -> float | None:
    """Seconds from the first request's start to the last response's end (a resumed run includes its pause)."""
    stamps = [(r["started_at"], (r.get("timings") or {}).get("e2e_s") or 0.0) for r in records if r.get("started_at")]
    if not stamps:
        return None
    first, last = min(s for s, _ in stamps), max(s for s, _ in stamps)
    longest = max(e for _, e in stamps)
    # The runner writes one fixed-width UTC format, so text order is time order; then only the records that
    # started within the longest request of the last start can be the last to end, and only those are parsed.
    cutoff = (datetime.fromisoformat(last) - timedelta(seconds=longest)).isoformat(timespec="milliseconds")
    if all(len(s) == len(cutoff) and s.endswith("+00:00") for s, _ in stamps):
        stamps = [(s, e) for s, e in stamps if s >= cutoff]
    end = max(datetime.fromisoformat(s) + timedelta(seconds=e) for s, e in stamps)
    return (end - datetime.fromisoformat(first)).total_seconds()


def _verdict(summary: Summary, records: list[Record]) -> dict[str, Any]:
    totals = summary["totals"]
    gates = summary["gates"]
    failed = [g for g in gates if not g["passed"]]
    items = [("requests", f"{totals['requests']:,} of {totals['planned']:,}"),
             ("errors", f"{totals['errors']:,}" + (f" ({fmt(totals['errors'] / totals['requests'], 'rate')})"
                                                   if totals["requests"] else "")),
             ("gates", f"{len(gates) - len(failed)} of {len(gates)} passed" if gates else "none configured")]
    if totals["requests"] and not totals.get("usage_reported", True):
        items.append(("tokens and cost", "not reported by the server"))
    else:
        note = usage_note(totals)
        mark = " (counted)" if totals.get("usage_source") == "counted" else " (partly counted)" if note else ""
        approx = "≈" if totals.get("prompt_tokens_estimated") else ""
        items += [("tokens in / out", f"{approx}{totals['prompt_tokens']:,} / {totals['completion_tokens']:,}{mark}"),
                  ("cost", f"{approx}{totals['cost']:.4g} {totals['currency']}{mark}")]
        if note:
            items.append(("token counts", note))
        if provenance_note(totals):
            items.append(("usage", provenance_note(totals)))
        if cached_note(totals):
            items.append(("prompt cache", cached_note(totals)))
    if judges := summary.get("judges"):
        items.append(("judges", judges_line(judges)))
    items.append(("run time", fmt_duration(run_time(records))))
    return {"items": items, "failed_gates": _gates(failed[:MAX_HEADER_GATES]),
            "more_failed_gates": max(0, len(failed) - MAX_HEADER_GATES),
            "errors_by_kind": sorted(totals.get("errors_by_kind", {}).items(), key=lambda kv: -kv[1])}


def _gates(gates: list[GateVerdict]) -> list[dict[str, Any]]:
    rows = []
    for g in gates:
        failing = [case_count(c) for c in g.get("failing_cases") or []]
        rows.append({"metric": g["metric"], "cell": gate_subject(g), "value": gate_value(g), "bound": gate_bound(g),
                     "passed": g["passed"],
                     # A per_case failure names its cases in a list of their own, not in the reason.
                     "reason": f"{len(failing)} of {g['cases_checked']} cases" if failing else g.get("reason", ""),
                     "cases": failing, "cases_text": ", ".join(failing)})
    return sorted(rows, key=lambda r: r["passed"])  # failures first


def _gate_sections(gates: list[GateVerdict]) -> dict[str, Any]:
    rows = _gates(gates)
    passed = [g for g in rows if g["passed"]]
    return {"any": bool(rows), "failed": [g for g in rows if not g["passed"]], "passed": passed,
            "fold": len(passed) > MAX_OPEN_GATES}


def _ci_text(criterion: Criterion, cell: CellSummary) -> str:
    return fmt_interval(criterion.interval(cell), criterion.kind)


def _best(best: BestSetting, keys: dict[str, str]) -> dict[str, Any]:
    crit, leader = best.criterion, best.leader
    n = crit.n(leader)
    runner = best.runner_up
    runner_text = ""
    if runner is not None:
        runner_text = (f"{keys[runner['cell_id']]} {runner['label']}: {fmt(crit.value(runner), crit.kind)}"
                       + (f" ({_ci_text(crit, runner)})" if crit.interval(runner) else ""))
    if runner is None:
        verdict, message = "single", "Only one setting was measured, so there is nothing to compare it with."
    elif crit.interval(leader) is None:
        verdict, message = "unclear", (f"There is no interval for {crit.heading}, so the data do not show that it "
                                       f"beats the next best ({runner_text}).")
    elif best.clearly_best:
        side = "above" if crit.higher_is_better else "below"
        verdict, message = "clear", (f"Clearly best on {crit.heading}: its 95% interval lies {side} every other "
                                     f"setting's (next best {runner_text}).")
    else:
        k = len(best.contenders)
        verdict, message = "unclear", (
            f"Not clearly better: {k} other setting{'s' if k != 1 else ''} "
            f"{'have intervals that overlap' if k != 1 else 'has an interval that overlaps'} its own "
            f"(next best {runner_text}). More repeats or cases would tell them apart.")
    return {"key": keys[leader["cell_id"]], "label": leader["label"], "metric": crit.heading,
            "value": fmt(crit.value(leader), crit.kind), "interval": _ci_text(crit, leader),
            "n": "" if n is None else str(n), "verdict": verdict, "message": message,
            "contenders": [f"{keys[c['cell_id']]} {c['label']}" for c in best.contenders]}


def _leaderboard(cells: list[CellSummary], best: BestSetting | None, keys: dict[str, str],
                 index: dict[str, int], gates: list[GateVerdict]) -> dict[str, Any]:
    """The top settings on the headline metric, each with its interval drawn on one shared scale."""
    ranked = rank_cells(cells)
    if not ranked or best is None:
        return {"rows": [], "metric": "", "others": [], "note": ""}
    crit = best.criterion
    others = [c for c in ranking() if c != crit and any(c.value(x) is not None for x in cells)][:3]
    values = [v for c in ranked for v in (crit.value(c), *(crit.interval(c) or ())) if v is not None]
    lo, hi = (0.0, 1.0) if crit.kind == "rate" else (min([0.0, *values]), max([0.0, *values]) * 1.05 or 1.0)
    contenders = {c["cell_id"] for c in best.contenders}
    failed_gates: dict[str, int] = defaultdict(int)
    for g in gates:
        if not g["passed"] and (cell_id := g.get("cell_id")):
            failed_gates[cell_id] += 1
    band = crit.interval(best.leader)
    rows = []
    for rank, cell in enumerate(ranked[:MAX_LEADERBOARD], start=1):
        lead = cell is best.leader
        standing = "leader" if lead else "overlaps" if cell["cell_id"] in contenders else "worse"
        if crit.value(cell) is None:
            standing = "not measured"
        rows.append({
            "rank": rank, "key": keys[cell["cell_id"]], "label": cell["label"], "lead": lead,
            "value": fmt(crit.value(cell), crit.kind), "interval": _ci_text(crit, cell),
            "bar": interval_bar(crit.value(cell), crit.interval(cell), lo, hi, standing, band),
            "standing": STANDING_TEXT[standing], "standing_class": standing.split()[0],
            "others": [fmt(o.value(cell), o.kind) for o in others],
            "failed_gates": failed_gates.get(cell["cell_id"], 0),
        })
    note = f"top {MAX_LEADERBOARD} of {len(ranked)} settings" if len(ranked) > MAX_LEADERBOARD else ""
    return {"rows": rows, "metric": crit.heading, "others": [o.heading for o in others], "note": note}


def _table(cells: list[CellSummary], keys: dict[str, str]) -> dict[str, Any]:
    """report.html's table of every metric the catalogue places in it (a column no cell measured is left out
    and listed with why)."""
    every = catalogue.table_columns()
    columns = [col for col in every if any((c["metrics"].get(col.metric) or {}).get(col.field) is not None
                                           for c in cells)]
    missing: dict[str, str] = {}
    for col in every:
        if col not in columns:
            reasons = {str((c["metrics"].get(col.metric) or {}).get("reason", "not measured")) for c in cells}
            missing.setdefault(col.metric, "; ".join(sorted(reasons)))
    best = best_cell(cells)
    shown = rank_cells(cells)[:MAX_TABLE_ROWS] if len(cells) > MAX_TABLE_ROWS else cells
    rows = [{"key": keys[c["cell_id"]], "label": c["label"], "n": c["n"], "best": c is best,
             "values": [cell_value(c["metrics"].get(col.metric), col.field, col.fmt) for col in columns]}
            for c in shown]
    groups: list[dict[str, Any]] = []
    for col in columns:
        if groups and groups[-1]["name"] == col.group:
            groups[-1]["span"] += 1
        else:
            groups.append({"name": col.group, "span": 1})
    return {"groups": groups, "columns": [col.heading for col in columns], "rows": rows,
            "missing": sorted(missing.items()),
            "note": f"the {MAX_TABLE_ROWS} best-ranked of {len(cells)} settings" if len(cells) > MAX_TABLE_ROWS
            else ""}


def _latency(cells: list[CellSummary], records: list[Record], keys: dict[str, str],
             index: dict[str, int], best: BestSetting | None) -> dict[str, Any]:
    """CDFs of TTFT and e2e latency for the best-ranked cells (every percentile is exact in the table)."""
    shown = [c["cell_id"] for c in rank_cells(cells)[:MAX_CDF_SERIES]]
    wanted = set(shown)
    samples: dict[str, dict[str, list[float]]] = {"ttft_s": defaultdict(list), "e2e_s": defaultdict(list)}
    for r in records:
        if r["ok"] and r["cell_id"] in wanted:
            timings = r["timings"]
            for name, by_cell in samples.items():
                value = cast(Mapping[str, float | None], timings).get(name)
                if value is not None:
                    by_cell[r["cell_id"]].append(value)
    lead = best.leader["cell_id"] if best else None
    labels = {c["cell_id"]: c["label"] for c in cells}
    charts = []
    for name, title in (("ttft_s", "Time to first token"), ("e2e_s", "End-to-end latency")):
        series = [Series(key=keys[cid], label=labels[cid], index=index[cid],
                         values=sorted(samples[name].get(cid, [])), emphasis=cid == lead) for cid in shown]
        chart = cdf_chart(series, f"{title}: cumulative distribution per setting", "seconds")
        if chart:
            charts.append({"id": f"cdf-{name.removesuffix('_s')}", "title": title, "svg": chart})
    legend = [{"key": keys[cid], "label": labels[cid], "colour": colour(index[cid]), "lead": cid == lead}
              for cid in shown]
    note = (f"the {MAX_CDF_SERIES} best-ranked of {len(cells)} settings are drawn"
            if len(cells) > MAX_CDF_SERIES else "")
    boxes = latency_boxes([keys[cid] for cid in shown], [samples["ttft_s"].get(cid, []) for cid in shown],
                          [samples["e2e_s"].get(cid, []) for cid in shown])
    return {"charts": charts, "legend": legend, "note": note, "boxes": boxes}


def cost_axis(cells: list[CellSummary]) -> tuple[Criterion, str]:
    """The cost to plot and, when it is a stand-in for money, why."""
    options = [Criterion("cost_per_1k_requests", "value", "cost per 1k requests", "money", False),
               Criterion("completion_tokens", "mean", "mean completion tokens per request", "num", False),
               Criterion("e2e_s", "p50", "median end-to-end latency", "sec", False)]
    for i, option in enumerate(options):
        if any(option.value(c) is not None for c in cells):
            if i == 0:
                currency = next((c["metrics"]["cost_per_1k_requests"].get("currency") for c in cells
                                 if option.value(c) is not None), "")
                counted = next((source_title(c["metrics"]["cost_per_1k_requests"]) for c in cells
                                if source_title(c["metrics"]["cost_per_1k_requests"])), "")
                return Criterion(option.metric, option.field, f"{option.heading} ({currency})".replace(" ()", ""),
                                 option.kind, False), (f"Cost from tokens {counted}." if counted else "")
            return option, (f"Cost is unknown (the server reported no token usage), so {option.heading} "
                            "stands in for it.")
    return options[-1], "No cost, token or latency figures were measured."


def _cost_quality(cells: list[CellSummary], keys: dict[str, str], index: dict[str, int]
                  ) -> dict[str, Any] | None:
    quality = next((c for c in ranking() if c.kind == "rate" and c.higher_is_better
                    and any(c.value(x) is not None for x in cells)), None)
    if quality is None:
        return None
    cost, why = cost_axis(cells)
    plotted = [c for c in cells if cost.value(c) is not None and quality.value(c) is not None]
    points = [Point(key=keys[c["cell_id"]], label=c["label"], index=index[c["cell_id"]],
                    cost=cost.value(c) or 0.0, quality=quality.value(c) or 0.0, interval=quality.interval(c))
              for c in plotted]
    front = pareto_front([(p.cost, p.quality) for p in points])
    svg = scatter_chart(points, front, cost.heading, cost.kind, quality.heading)
    if svg is None:
        return None
    on_front = sorted((points[i] for i in front), key=lambda p: p.cost)
    return {"svg": svg, "quality": quality.heading, "cost": cost.heading, "why": why,
            "front": [{"key": p.key, "label": p.label, "cost": fmt(p.cost, cost.kind),
                       "quality": fmt(p.quality, quality.kind)} for p in on_front]}
