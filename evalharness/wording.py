"""How comparisons read: rates in % and points, latency in milliseconds or seconds and as a ratio, and why a
verdict is inconclusive. Used by the console, baseline gate reasons and the reports."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def too_small(found: Mapping[str, Any]) -> str:
    """Why an inconclusive verdict is one: the run's minimum detectable effect, or the missing interval."""
    mde = found.get("mde")
    if mde is None:
        return str(found.get("reason", "no interval"))
    size = f"{100 * mde:.1f} pts" if found["kind"] == "difference" else f"{100 * mde:.0f}%"
    text = f"min. detectable {size}"
    power = found.get("power")
    if power and mde > power["change"]:
        unit, count = next((k, v) for k, v in power.items() if k != "change")
        text += f"; {count} {unit} would detect {100 * power['change']:.0f} pts"
    return text


def describe_change(r: Mapping[str, Any]) -> tuple[str, str, str, str]:
    """(before, after, change, interval) of a comparison as people read them: rates in % and points,
    latency in seconds and as a ratio."""
    ci = r.get("ci") or r.get("ci95")
    if r["kind"] == "difference":
        interval = f"[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}] pts" if ci else "–"
        return _pct(r["before"]), _pct(r["after"]), f"{100 * r['change']:+.1f} pts", interval
    interval = f"[×{ci[0]:.2f}, ×{ci[1]:.2f}]" if ci else "–"
    seconds = r.get("metric", "").partition(".")[0].endswith("_s")
    ratio = "–" if r.get("change") is None else f"×{r['change']:.2f}"
    return ((_secs(r["before"]), _secs(r["after"])) if seconds else (f"{r['before']:.3g}", f"{r['after']:.3g}")) + (
        ratio, interval)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _secs(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
