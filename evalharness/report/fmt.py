"""Number formatting shared by every report (one place decides how a rate or a latency reads)."""

from __future__ import annotations

from typing import Any

from evalharness.types import FailingCase, GateVerdict, MetricValue, Totals


def fmt(value: Any, kind: str) -> str:
    """``value`` for people: rates as percentages, seconds as ms or s, counts compact; None as a dash."""
    if value is None:
        return "–"
    if kind == "rate":
        return f"{100 * value:.1f}%"
    if kind == "sec":
        if value == 0:
            return "0 ms"
        if abs(value) < 0.001:
            return f"{value * 1e6:.0f} µs"
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if kind == "money":
        return f"{value:.4g}"
    if kind == "int":
        return f"{round(value):,}"
    if kind == "num":
        return f"{value:.3g}" if isinstance(value, float) else str(value)
    return str(value)


def fmt_interval(ci: tuple[float, float] | list[float] | None, kind: str) -> str:
    """``[lo – hi]`` in the metric's own format, or "" without an interval."""
    if not ci or ci[0] is None or ci[1] is None:
        return ""
    return f"{fmt(ci[0], kind)} – {fmt(ci[1], kind)}"


def fmt_duration(seconds: float | None) -> str:
    """A wall time: ``2 min 14 s``, ``1 h 05 min``, ``3.2 s``."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def gate_bound(gate: GateVerdict, *, ascii_only: bool = False) -> str:
    """What a gate wants: ``≥ 0.9``, ``≤ 5``, ``each case ≥ 0.9`` (``per_case``), or for a baseline gate
    ``drop ≤ 0.05 vs previous``."""
    ge, le = (">=", "<=") if ascii_only else ("≥", "≤")
    parts = ["each case"] if gate.get("per_case") else []
    if gate.get("min") is not None:
        parts.append(f"{ge} {gate['min']:g}")
    if gate.get("max") is not None:
        parts.append(f"{le} {gate['max']:g}")
    if gate.get("max_drop") is not None:
        parts.append(f"drop {le} {gate['max_drop']:g}")
    if gate.get("max_rise") is not None:
        parts.append(f"rise {le} {gate['max_rise']:g}")
    if gate.get("baseline"):
        parts.append(f"vs {gate.get('baseline_run_id') or gate['baseline']}")
    return " ".join(parts)


def gate_subject(gate: GateVerdict) -> str:
    """Where a gate verdict applies: its setting, and for a verdict on one case, that case (``suite/id``)."""
    where = str(gate.get("label") or gate.get("cell_id") or "run")
    return f"{where} · case {gate['case']}" if gate.get("case") else where


def gate_value(gate: GateVerdict, digits: int = 4) -> str:
    """A verdict's value as people read it: a case's before → after counts, else the number."""
    case = gate.get("case_verdict")
    if case:
        return str(case["counts"])
    if gate.get("value") is None:
        return "–"
    return f"{gate['value']:.{digits}g}" + gate_sample(gate)


def gate_sample(gate: GateVerdict) -> str:
    """`` (n=12)``, or `` (n=1 of 48 planned)`` where requests of the cell failed or were not sent."""
    n, planned = gate.get("n"), gate.get("planned")
    if n is None:
        return ""
    return f" (n={n} of {planned} planned)" if gate.get("note") and planned else f" (n={n})"


def source_mark(metric: MetricValue) -> str:
    """What a token or cost figure built from counted usage carries in a table: `` (counted)``, or
    `` (partly counted)`` when its records mix server and counted usage; "" for the server's own figures."""
    return {"counted": " (counted)", "mixed": " (partly counted)"}.get(str(metric.get("source")), "")


def source_title(metric: MetricValue) -> str:
    """The tooltip that explains ``source_mark``."""
    source = metric.get("source")
    if source not in ("counted", "mixed"):
        return ""
    if source == "counted":
        text = "counted with the server's tokenizer: the server reported no usage"
    else:
        sources = metric.get("sources") or {}
        text = (f"{sources.get('server', 0)} responses with the server's usage and {sources.get('counted', 0)} "
                f"counted with its tokenizer")
    if metric.get("prompt_estimated"):
        text += "; prompt tokens estimated without the chat template"
    return text


def usage_note(totals: Totals) -> str:
    """How a run's token and cost totals were obtained, where they are not simply the server's usage."""
    source = totals.get("usage_source")
    if source not in ("counted", "mixed"):
        return ""
    sources = totals.get("usage_sources") or {}
    return source_title({"source": source, "sources": sources,
                         "prompt_estimated": bool(totals.get("prompt_tokens_estimated"))})


def provenance_note(totals: Totals) -> str:
    """"usage looks estimated by a gateway: …" where a sample of reported usage disagreed with the model
    server's tokenizer; "" otherwise (also when there was no tokenizer to check with)."""
    check = totals.get("usage_check") or {}
    return str(check.get("note") or "") if check.get("estimated_by_gateway") else ""


def cached_note(totals: Totals) -> str:
    """Cached prompt tokens and what they saved, where the server reported any."""
    if not totals.get("cached_tokens"):
        return ""
    currency = f" {totals['currency']}" if totals.get("currency") else ""
    saving = totals.get("cached_saving") or 0.0
    return f"{totals['cached_tokens']:,} cached prompt tokens, saving {saving:.6f}{currency}"


def case_count(case: FailingCase) -> str:
    """A failing case of a ``per_case`` gate: ``mini/capital 7/10 (70.0%)``."""
    return f"{case['case']} {case['successes']}/{case['n']} ({fmt(case['value'], 'rate')})"
