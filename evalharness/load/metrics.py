"""A load level's figures, from its records (warm-up left out), and the capacity search over a grid point's
levels. Pure functions: records and numbers in, metric values out.

Definitions follow vLLM's ``bench serve`` where it has one: throughput and goodput are per second of the
level's window (vLLM's benchmark duration: from the first request sent to the last one finished), goodput
counts requests meeting every SLO given (DistServe's definition; a failed request is never good), TPOT is
(e2e - TTFT) / (output tokens - 1) and a request of one output token meets any TPOT bound (vLLM counts its
TPOT as 0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from evalharness.plan import cell_label
from evalharness.scoring.stats import distribution, rate
from evalharness.types import Capacity, CellSummary, MetricValue, Record, Totals
from evalharness.usage import source_fields, with_marks

LOAD_METRICS = ("achieved_rate_rps", "throughput_rps", "output_tps", "goodput_rps", "slo_attainment",
                "schedule_lag_s", "in_flight_mean")
NOT_LOAD = "not a load run (no load: in the config)"
NO_SLO = "no load.slo set"
#: A level whose throughput rose less than this over the level below, while its e2e p50 rose, is saturated.
SATURATED_GAIN = 1.05


def _na(reason: str) -> MetricValue:
    return {"value": None, "reason": reason}


def completion_tokens(record: Record) -> int:
    """Completion tokens a record reports (from usage, server-reported or counted); 0 without usage."""
    value = (record.get("usage") or {}).get("completion_tokens")
    return int(value) if isinstance(value, (int, float)) else 0


def meets_slo(record: Record, slo: Mapping[str, float]) -> bool:
    """Whether a request is good: it completed, and each latency the SLO bounds was measured and within it."""
    if not record["ok"]:
        return False
    t = record["timings"]
    ttft, e2e = t.get("ttft_s"), t.get("e2e_s")
    if "ttft_s" in slo and (ttft is None or ttft > slo["ttft_s"]):
        return False
    if "e2e_s" in slo and (e2e is None or e2e > slo["e2e_s"]):
        return False
    if "tpot_s" in slo:
        n_out = completion_tokens(record)
        if n_out > 1 and (ttft is None or e2e is None or (e2e - ttft) / (n_out - 1) > slo["tpot_s"]):
            return False
    return True


def load_metrics(records: Sequence[Record], slo: Mapping[str, float] | None) -> dict[str, MetricValue]:
    """The load metrics of one level's records; ``slo`` None: not a load run (every metric says so)."""
    if slo is None:
        return {name: _na(NOT_LOAD) for name in LOAD_METRICS}
    measured = [r for r in records if "load_clock" in r and not r.get("warmup")]
    if not measured:
        return {name: _na("no request of this level was measured (all warm-up, or none sent)")
                for name in LOAD_METRICS}
    clocks = [r["load_clock"] for r in measured]
    sent = sorted(c["sent_s"] for c in clocks)
    start, end = sent[0], max(c["done_s"] for c in clocks)
    window = end - start
    ok = [r for r in measured if r["ok"]]
    out: dict[str, MetricValue] = {}
    if len(sent) >= 2 and sent[-1] > sent[0]:
        out["achieved_rate_rps"] = {"value": (len(sent) - 1) / (sent[-1] - sent[0]), "n": len(sent)}
    else:
        out["achieved_rate_rps"] = _na("needs two or more requests sent at different times")
    if window > 0:
        tokens = sum(completion_tokens(r) for r in ok)
        out["throughput_rps"] = {"value": len(ok) / window, "n": len(ok), "window_s": window}
        marks = source_fields(r for r in ok if completion_tokens(r))
        marks.pop("prompt_estimated", None)
        out["output_tps"] = (with_marks({"value": tokens / window, "n": len(ok), "window_s": window}, marks)
                             if tokens else _na("no completion_tokens in usage"))
        busy = sum(c["done_s"] - c["sent_s"] for c in clocks)
        out["in_flight_mean"] = {"value": busy / window, "n": len(measured)}
    else:
        for name in ("throughput_rps", "output_tps", "in_flight_mean"):
            out[name] = _na("the level's window has no length")
    if slo:
        good = sum(meets_slo(r, slo) for r in measured)
        out["slo_attainment"] = rate(good, len(measured))
        out["goodput_rps"] = ({"value": good / window, "n": len(measured), "window_s": window} if window > 0
                              else _na("the level's window has no length"))
    else:
        out["slo_attainment"] = out["goodput_rps"] = _na(NO_SLO)
    out["schedule_lag_s"] = distribution([r.get("schedule_lag_s") for r in measured], intervals=False)
    if out["schedule_lag_s"].get("n"):
        out["schedule_lag_s"]["capped"] = sum(bool(r.get("capped")) for r in measured)
    return out


def level_of(cell: CellSummary) -> tuple[str, float] | None:
    """A level cell's (key, value): ``("rate", 4.0)``; None for a cell of a run without load."""
    for key in ("rate", "concurrency"):
        if key in cell["params"]:
            return key, float(cell["params"][key])
    return None


def grid_point(cell: CellSummary) -> dict[str, Any]:
    """A level cell's grid point: its params without the level."""
    return {k: v for k, v in cell["params"].items() if k not in ("rate", "concurrency")}


def _value(cell: CellSummary, metric: str, fld: str = "value") -> float | None:
    got = cell["metrics"].get(metric, {}).get(fld)
    return float(got) if isinstance(got, (int, float)) else None


def capacity(cells: Sequence[CellSummary], bound: float) -> list[Capacity]:
    """For each grid point, the highest rate meeting ``slo_attainment >= bound`` among its measured levels.

    Levels are read in ascending rate; the search stops at the first level below the bound, or at the first
    whose throughput rose less than 5% over the level below while its e2e p50 rose (the server is saturated:
    a higher rate only queues). ``max_rate`` is the last level before that stop (None when the lowest fails).
    """
    points: dict[str, tuple[dict[str, Any], list[CellSummary]]] = {}
    for cell in cells:
        level = level_of(cell)
        if level is None or level[0] != "rate":
            continue
        point = grid_point(cell)
        points.setdefault(repr(sorted(point.items())), (point, []))[1].append(cell)
    out: list[Capacity] = []
    for point, levels in points.values():
        levels.sort(key=lambda c: float(c["params"]["rate"]))
        best: float | None = None
        reason = ""
        tried = 0
        for i, cell in enumerate(levels):
            r = float(cell["params"]["rate"])
            attained = _value(cell, "slo_attainment")
            tried += 1
            if attained is None:
                reason = f"rate {r:g}: no SLO attainment measured ({cell['metrics']['slo_attainment'].get('reason')})"
                break
            if attained < bound:
                reason = f"rate {r:g}: SLO attainment {attained:.2f} is below {bound:g}"
                break
            if i and _saturated(levels[i - 1], cell):
                reason = (f"rate {r:g}: saturated (throughput {_value(levels[i - 1], 'throughput_rps'):.3g} -> "
                          f"{_value(cell, 'throughput_rps'):.3g} req/s while e2e p50 rose)")
                break
            best = r
        else:
            reason = f"every level tried meets SLO attainment >= {bound:g}; capacity is at least {best:g} req/s"
        out.append({"params": point, "max_rate": best, "levels_tried": tried, "reason": reason,
                    "levels": [{"rate": float(c["params"]["rate"]), "slo_attainment": _value(c, "slo_attainment"),
                                "throughput_rps": _value(c, "throughput_rps")} for c in levels[:tried]]})
    return out


def _saturated(below: CellSummary, cell: CellSummary) -> bool:
    before, now = _value(below, "throughput_rps"), _value(cell, "throughput_rps")
    e2e_before, e2e_now = _value(below, "e2e_s", "p50"), _value(cell, "e2e_s", "p50")
    if None in (before, now, e2e_before, e2e_now):
        return False
    assert before is not None and now is not None and e2e_before is not None and e2e_now is not None
    return now < before * SATURATED_GAIN and e2e_now > e2e_before


def determinism_notes(cells: Sequence[CellSummary], defaults: Mapping[str, Any] | None) -> list[str]:
    """Where temperature-0 repeats stop being byte-identical as the load rises, per grid point, in words."""
    points: dict[str, tuple[dict[str, Any], list[tuple[float, str, CellSummary]]]] = {}
    for cell in cells:
        level = level_of(cell)
        if level is None:
            continue
        point = grid_point(cell)
        if {**(defaults or {}), **point}.get("temperature") != 0:
            continue
        points.setdefault(repr(sorted(point.items())), (point, []))[1].append((level[1], level[0], cell))
    notes = []
    for point, levels in points.values():
        levels.sort(key=lambda x: x[0])
        first = _value(levels[0][2], "exact_match_rate")
        if first is None:
            continue
        label = cell_label(point)
        for value, key, cell in levels[1:]:
            now = _value(cell, "exact_match_rate")
            if now is not None and now < first:
                notes.append(f"{label}: temperature-0 repeats stop being identical at {key} {value:g} "
                             f"(identical repeats {now:.0%}, {first:.0%} at {key} {levels[0][0]:g})")
                break
        else:
            notes.append(f"{label}: temperature-0 repeats as identical at every level as at the lowest "
                         f"(identical repeats {first:.0%})")
    return notes


def run_throughput(records: Sequence[Record], duration_s: float | None) -> Totals:
    """The run's duration (first request sent to last finished), and completed requests and completion tokens
    per second of it: in every run's totals, load or not."""
    if not duration_s or duration_s <= 0:
        return {"duration_s": duration_s, "throughput_rps": None, "output_tps": None}
    ok = [r for r in records if r["ok"]]
    return {"duration_s": duration_s, "throughput_rps": len(ok) / duration_s,
            "output_tps": sum(completion_tokens(r) for r in ok) / duration_s}
