"""report.html's load section: per level the rates, latencies, lag and SLO attainment, the capacity found, and
charts of latency and throughput against the rate (or concurrency) per setting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evalharness.load.metrics import grid_point, level_of
from evalharness.plan import Plan, cell_label
from evalharness.report.charts import Line, colour, line_chart
from evalharness.report.fmt import fmt
from evalharness.types import CellSummary, Summary

#: The level table's columns: (heading, metric, field, format).
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("sent req/s", "achieved_rate_rps", "value", "num"), ("req/s", "throughput_rps", "value", "num"),
    ("goodput", "goodput_rps", "value", "num"), ("out tok/s", "output_tps", "value", "num"),
    ("SLO met", "slo_attainment", "value", "rate"), ("TTFT p50", "ttft_s", "p50", "sec"),
    ("TTFT p95", "ttft_s", "p95", "sec"), ("e2e p50", "e2e_s", "p50", "sec"), ("e2e p95", "e2e_s", "p95", "sec"),
    ("e2e p99", "e2e_s", "p99", "sec"), ("lag p50", "schedule_lag_s", "p50", "sec"),
    ("lag p99", "schedule_lag_s", "p99", "sec"), ("capped", "schedule_lag_s", "capped", "int"),
    ("in flight", "in_flight_mean", "value", "num"),
    ("identical repeats", "exact_match_rate", "value", "rate"), ("distinct outputs", "unique_outputs", "value", "num"),
)


def _get(cell: CellSummary, metric: str, fld: str) -> float | None:
    value = cell["metrics"].get(metric, {}).get(fld)
    return float(value) if isinstance(value, (int, float)) else None


def load_view(summary: Summary, keys: dict[str, str]) -> dict[str, Any] | None:
    """The load section's view model; None for a run without load levels."""
    levels = [(c, lv) for c in summary["cells"] if (lv := level_of(c)) is not None]
    if not levels:
        return None
    key = levels[0][1][0]
    points: dict[str, list[CellSummary]] = {}
    for cell, _ in levels:
        points.setdefault(cell_label(grid_point(cell)), []).append(cell)
    rows = []
    for label, cells in points.items():
        cells.sort(key=lambda c: float(c["params"][key]))
        for cell in cells:
            rows.append({"key": keys.get(cell["cell_id"], ""), "setting": label,
                         "level": fmt(cell["params"][key], "num"),
                         "values": [fmt(_get(cell, m, f), kind) for _, m, f, kind in COLUMNS]})
    x_label = "achieved rate (requests/s)" if key == "rate" else "concurrency (requests in flight)"

    def lines(metric: str, fld: str, dashed: bool = False) -> list[Line]:
        out = []
        for i, (label, cells) in enumerate(points.items()):
            xs = [_get(c, "achieved_rate_rps", "value") if key == "rate" else float(c["params"][key]) for c in cells]
            pts = [(x, y) for x, c in zip(xs, cells, strict=True)
                   if x is not None and (y := _get(c, metric, fld)) is not None]
            out.append(Line(label, f"{label} {metric} {fld}", i, pts, dashed))
        return out

    charts = [
        ("load-latency", "e2e p50 (solid) and p95 (dashed) against load",
         line_chart(lines("e2e_s", "p50") + lines("e2e_s", "p95", dashed=True), "e2e latency against load",
                    x_label, "num", "seconds", "sec")),
        ("load-ttft", "TTFT p50 (solid) and p95 (dashed) against load",
         line_chart(lines("ttft_s", "p50") + lines("ttft_s", "p95", dashed=True), "TTFT against load",
                    x_label, "num", "seconds", "sec")),
        ("load-throughput", "throughput (solid) and goodput (dashed) against load",
         line_chart(lines("throughput_rps", "value") + lines("goodput_rps", "value", dashed=True),
                    "throughput against load", x_label, "num", "requests/s", "num")),
    ]
    return {
        "level": key, "columns": [c[0] for c in COLUMNS], "rows": rows,
        "charts": [{"id": cid, "title": title, "svg": svg} for cid, title, svg in charts if svg is not None],
        "legend": [{"label": label, "colour": colour(i)} for i, label in enumerate(points)],
        "capacity": _capacity(summary),
        "notes": list(summary.get("load_notes") or ()),
    }


def _capacity(summary: Summary) -> list[dict[str, str]]:
    found: Sequence[Any] = summary.get("capacity") or ()
    return [{"setting": cell_label(c["params"]), "max_rate": fmt(c["max_rate"], "num") + " req/s"
             if c["max_rate"] is not None else "none found", "tried": str(c["levels_tried"]), "reason": c["reason"]}
            for c in found]


#: The level table's columns the console prints (the report has them all).
CONSOLE_COLUMNS = ("sent req/s", "req/s", "goodput", "SLO met", "TTFT p95", "e2e p95", "lag p99",
                   "identical repeats")


def level_table(summary: Summary) -> tuple[list[str], list[list[str]], list[str]] | None:
    """The console's level table (headers, rows) and its lines of notes and capacity; None without load."""
    view = load_view(summary, {})
    if view is None:
        return None
    keep = [i for i, heading in enumerate(view["columns"]) if heading in CONSOLE_COLUMNS]
    headers = ["setting", view["level"], *(view["columns"][i] for i in keep)]
    rows = [[r["setting"], r["level"], *(r["values"][i] for i in keep)] for r in view["rows"]]
    lines = [*view["notes"], *(f"Capacity of {c['setting']}: {c['max_rate']} ({c['reason']})"
                               for c in view["capacity"])]
    return headers, rows, lines


def plan_line(plan: Plan) -> str | None:
    """The dry run's count of a load plan: settings × levels, requests a level; None for a plan without load."""
    if not plan.levels:
        return None
    per_level = sorted({len(lv.item_ids) for lv in plan.levels})
    points = len({lv.grid_cell_id for lv in plan.levels})
    counts = " – ".join(str(n) for n in (per_level[0], per_level[-1]) if n) if len(per_level) > 1 else str(per_level[0])
    return (f"  {points} settings × {len(plan.levels) // max(points, 1)} {plan.levels[0].key} levels, "
            f"{counts} requests a level (warm-up included) = {len(plan.items)} requests")
