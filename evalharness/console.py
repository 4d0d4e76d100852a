"""What the CLI prints: the plan of a dry run, a run's outcome, and a comparison of two runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from evalharness.plan import Estimate, Plan
from evalharness.report.fmt import (
    cached_note,
    case_count,
    fmt,
    fmt_duration,
    gate_value,
    provenance_note,
    usage_note,
)
from evalharness.report.load import level_table, plan_line
from evalharness.report.ranking import best_setting
from evalharness.report.targets_view import targets_view
from evalharness.report.view import cell_value
from evalharness.scoring.catalogue import cell_columns
from evalharness.types import CaseVerdict, Comparison, GateVerdict, MetricComparison, Summary
from evalharness.wording import describe_change, too_small


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain aligned text table."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                                  strict=True)))
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_plan(name: str, plan: Plan, estimate: Estimate, currency: str) -> str:
    completion = ("unbounded (no max_tokens set)" if estimate.completion_tokens_max is None
                  else f"0 – {estimate.completion_tokens_max:,}")
    cost = (f"{estimate.cost_min:.6f} – ?" if estimate.cost_max is None
            else f"{estimate.cost_min:.6f} – {estimate.cost_max:.6f}")
    lines = [f"Plan for {name}:",
             plan_line(plan) or
             f"  {len(plan.cells)} cells × {plan.cases} cases × {plan.repeats} repeats = {estimate.requests} requests",
             f"  prompt tokens ≈ {estimate.prompt_tokens:,}; completion tokens {completion}",
             f"  estimated cost {cost} {currency}", "", "Cells:"]
    lines += [f"  {c.cell_id}  {c.label}" for c in plan.cells]
    return "\n".join(lines)


def target_lines(summary: Summary) -> list[str]:
    """With several targets: each target's status line, and each target against the reference per grid
    point where something differs clearly (``report.targets_view``)."""
    view = targets_view(summary)
    if view is None:
        return []
    lines = [f"target {t['name']}: {t['status']}" + (f" ({t['reason'].partition(chr(10))[0]})" if t["reason"] else "")
             + f", {t['requests']} requests, {t['errors']} errors" for t in view["rows"]]
    lines += [f"  {c['target']} vs {c['reference']} [{c['point']}]: {c['headline']}" for c in view["comparisons"]]
    return lines


def format_outcome(summary: Summary, run_dir: str, reports: list[str]) -> str:
    columns = cell_columns()
    heads = ["setting", "n"] + [col.heading for col in columns]
    rows = [[c["label"], str(c["n"])] + [cell_value(c["metrics"].get(col.metric), col.field, col.fmt)["text"]
                                          for col in columns] for c in summary["cells"]]
    t = summary["totals"]
    out = [table(heads, rows), "",
           f"{t['requests']}/{t['planned']} requests, {t['errors']} errors"
           + (f" ({', '.join(f'{k} × {n}' for k, n in sorted(t['errors_by_kind'].items()))})"
              if t["errors_by_kind"] else "")
           + (f", {t['prompt_tokens'] + t['completion_tokens']:,} tokens, cost {t['cost']:.6f} {t['currency']}"
              + "".join(f" ({note})" for note in (usage_note(t), provenance_note(t), cached_note(t)) if note)
              if t.get("usage_reported", 1) or not t["requests"] else ", tokens and cost not reported by the server")
           + (f"; {t['throughput_rps']:.3g} req/s, {t['output_tps']:.3g} output tok/s over "
              f"{fmt_duration(t['duration_s'])}" if t.get("throughput_rps") is not None else "")]
    best = best_setting(summary["cells"])
    if best:
        crit = best.criterion
        line = f"Best setting: {best.leader['label']} ({crit.heading} {fmt(crit.value(best.leader), crit.kind)})"
        if best.contenders:
            line += (f" — not clearly better: {len(best.contenders)} other setting(s) have overlapping 95% "
                     f"intervals; more repeats or cases would tell them apart")
        out.append(line)
    levels = level_table(summary)
    if levels:
        out += ["", table(levels[0], levels[1]), *levels[2]]
    out += target_lines(summary)
    out += format_baseline_gates([g for g in summary["gates"] if "baseline" in g])
    out += _plain_gates([g for g in summary["gates"] if "baseline" not in g])
    if not summary["complete"]:
        # Its first line: the rest of a long reason (a crashed server's log) is on stderr and in summary.md.
        reason = str(summary.get("stop_reason")).partition("\n")[0]
        out.append(f"INCOMPLETE: {reason}")
    out.append(f"Run directory: {run_dir}")
    out += [f"  {p}" for p in reports]
    out.append("PASSED" if summary["passed"] else "FAILED")
    return "\n".join(out)


#: Failing cases a per_case gate lists per cell on the console; summary.json and the reports list all.
CONSOLE_CASES = 20


def _plain_gates(gates: list[GateVerdict]) -> list[str]:
    """One line per failed verdict; a gate that passed in every cell it applies to is one line."""
    out: list[str] = []
    groups: dict[tuple[str, Any, Any, str, bool], list[GateVerdict]] = {}
    for g in gates:
        groups.setdefault((g["metric"], g["min"], g["max"], repr(g.get("where")), bool(g.get("per_case"))),
                          []).append(g)
    for (metric, lo, hi, _, per_case), verdicts in groups.items():
        bound = " ".join(x for x in ("each case" if per_case else "", f">= {lo}" if lo is not None else "",
                                     f"<= {hi}" if hi is not None else "") if x)
        # Folded only when every verdict passed on its cell's whole plan: one on a sliver is shown on its own.
        if all(g["passed"] and not g.get("note") for g in verdicts) and len(verdicts) > 1:
            out.append(f"gate pass: {metric} (want {bound}) in all {len(verdicts)} cells it applies to")
            continue
        for g in verdicts:
            verdict = "pass" if g["passed"] else "FAIL"
            where = g.get("label") or g.get("cell_id") or "run"
            value = gate_value(g)
            failing = g.get("failing_cases") or []
            # A per_case failure lists its cases below, one a line, instead of in the reason.
            reason = f"{len(failing)} of {g['cases_checked']} cases fail:" if failing else g.get("reason", "")
            out.append(f"gate {verdict}: {metric} [{where}] = {value} (want {bound}) {reason}".rstrip())
            out += [f"  {case_count(c)}" for c in failing[:CONSOLE_CASES]]
            if len(failing) > CONSOLE_CASES:
                out.append(f"  … and {len(failing) - CONSOLE_CASES} more (all in summary.json)")
    return out


def _verdict_text(r: MetricComparison | GateVerdict) -> str:
    if r["verdict"] == "regressed":
        return "REGRESSED"
    if r["verdict"] == "inconclusive":
        return f"inconclusive ({too_small(r)})"
    return str(r["verdict"])


def format_regression(cell: str, r: MetricComparison | GateVerdict, *, against: str | None = None) -> str:
    """One regression as the console names it: metric, cell, before → after, interval, and the question asked
    (or, for a case, its counts and exact test)."""
    vs = f" vs {against}" if against else ""
    case = cast(Mapping[str, Any], r).get("case_verdict")
    if case:
        return format_case(case, against=against)
    before, after, change, interval = describe_change(r)
    return (f"REGRESSED {r['metric']} [{cell}]{vs}: {before} → {after} (change {change}, "
            f"{100 * r['level']:.3g}% interval {interval}; {r.get('analysis', 'this suite')}: {r.get('test', '')})")


def format_case(case: CaseVerdict, *, against: str | None = None) -> str:
    """A case that changed: ``REGRESSED case s/c1 pass_rate [temperature=0]: 10/10 → 0/10 (p = 1.1e-05)``."""
    vs = f" vs {against}" if against else ""
    return (f"{case['verdict'].upper()} case {case['case']} {case['metric']} [{case['cell']}]{vs}: "
            f"{case['counts']} (Holm-adjusted p = {case['p_adjusted']:.2g}, Fisher's exact test)")


def format_comparison(result: Comparison) -> str:
    """``evalharness compare``: every matched cell and metric with its change, interval and verdict, then
    every case that changed on its own."""
    base, new = result["base"], result["new"]
    suite = result.get("population", "suite") == "suite"
    question = ("Question: did this suite change? Cases are fixed; their repeats are the random part, so "
                "each case's repeats are compared as independent samples." if suite else
                "Question: would cases like these change? Cases are a sample of a larger population; samples "
                "pair by case and repeat and the spread is clustered by case.")
    out = [f"Comparing {new['run_dir']} (run {new['run_id']}) against baseline {base['run_dir']} "
           f"(run {base['run_id']})", question,
           f"Settings: intervals at {100 * result['level']:.3g}% so that all {result['comparisons']} verdicts "
           "hold together." + (f" Cases: {result['case_tests']} case tests (Fisher's exact, Holm) at "
                               f"{100 * result['case_level']:.3g}% together; the whole comparison holds at 95%."
                               if result.get("case_tests") else ""), ""]
    rows: list[list[str]] = []
    skipped: dict[str, str] = {}
    for cell in result["cells"]:
        for r in cell["metrics"]:
            if r["verdict"] is None:
                skipped.setdefault(r["metric"], r["reason"])
                continue
            rows.append([cell["label"], r["metric"], *describe_change(r), _verdict_text(r)])
    heads = ["setting", "metric", "before", "after", "change", "interval", "verdict"]
    out.append(table(heads, rows) if rows else "No metric could be compared.")
    for metric, reason in skipped.items():
        out.append(f"not compared: {metric} ({reason})")
    lone_cells, lone_cases = result["unmatched_cells"], result["unmatched_cases"]
    for what, cell_names, case_names in (("only in the baseline", lone_cells["base_only"], lone_cases["base_only"]),
                                         ("only in the new run", lone_cells["new_only"], lone_cases["new_only"])):
        if cell_names:
            out.append(f"cells {what}: {', '.join(cell_names)}")
        if case_names:
            out.append(f"cases {what}: {', '.join(case_names)}")
    out.append("")
    out += [format_regression(r["cell"], r) for r in result["regressions"]]
    out += [format_case(c) for c in result.get("cases", [])]
    counts = result["counts"]
    out.append(", ".join(f"{counts[v]} {v}" for v in ("regressed", "improved", "unchanged", "inconclusive")
                         if counts.get(v)) or "nothing compared")
    cases = result.get("case_regressions", [])
    if cases:
        out.append(f"{len(cases)} case{'s' if len(cases) != 1 else ''} regressed: "
                   + ", ".join(sorted({c["case"] for c in cases})))
    n = len(result["regressions"]) + len(cases)
    out.append(f"FAILED: {n} regression{'s' if n != 1 else ''} ({ANALYSIS_NAME[suite]})" if n
               else f"PASSED: no regression ({ANALYSIS_NAME[suite]})")
    return "\n".join(out)


ANALYSIS_NAME = {True: "this suite", False: "cases like these"}


def format_baseline_gates(gates: list[GateVerdict]) -> list[str]:
    """Baseline verdicts in a run's outcome: each gate from the config, and of ``--baseline`` only what
    failed, plus a count of the rest (it judges every cell and metric)."""
    out: list[str] = []
    counts: dict[str, int] = {}
    for g in gates:
        from_config = g.get("max_drop") is not None or g.get("max_rise") is not None
        if g["passed"] and not from_config:
            counts[g.get("verdict") or "not compared"] = counts.get(g.get("verdict") or "not compared", 0) + 1
            continue
        where = g.get("label") or g.get("cell_id") or "run"
        if g.get("verdict") == "regressed":
            out.append("gate FAIL: " + format_regression(where, g, against=g.get("baseline_run_id")))
        else:
            out.append(f"gate {'pass' if g['passed'] else 'FAIL'}: {g['metric']} [{where}] vs baseline: "
                       f"{g.get('reason', '')}".rstrip())
    if counts:
        source = next((g["baseline"] for g in gates if g.get("max_drop") is None and g.get("max_rise") is None), "")
        asked = next((g.get("analysis") for g in gates if g.get("analysis")), "this suite")
        out.append(f"baseline {source} ({asked}): " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    return out
