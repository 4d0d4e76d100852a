"""What the CLI prints: the plan of a dry run, and a run's outcome."""

from __future__ import annotations

from typing import Any

from evalharness.plan import Estimate, Plan
from evalharness.report.view import CELL_COLUMNS, best_cell, cell_value


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
             f"  {len(plan.cells)} cells × {plan.cases} cases × {plan.repeats} repeats = {estimate.requests} requests",
             f"  prompt tokens ≈ {estimate.prompt_tokens:,}; completion tokens {completion}",
             f"  estimated cost {cost} {currency}", "", "Cells:"]
    lines += [f"  {c.cell_id}  {c.label}" for c in plan.cells]
    return "\n".join(lines)


def format_outcome(summary: dict[str, Any], run_dir: str, reports: list[str]) -> str:
    heads = ["setting", "n"] + [h for _, _, h, _ in CELL_COLUMNS]
    rows = [[c["label"], str(c["n"])] + [cell_value(c["metrics"].get(m), f, k)["text"]
                                          for m, f, _, k in CELL_COLUMNS] for c in summary["cells"]]
    t = summary["totals"]
    out = [table(heads, rows), "",
           f"{t['requests']}/{t['planned']} requests, {t['errors']} errors"
           + (f" ({', '.join(f'{k} × {n}' for k, n in sorted(t['errors_by_kind'].items()))})"
              if t["errors_by_kind"] else "")
           + f", {t['prompt_tokens'] + t['completion_tokens']:,} tokens, cost {t['cost']:.6f} {t['currency']}"]
    best = best_cell(summary["cells"])
    if best:
        out.append(f"Best setting: {best['label']}")
    for g in summary["gates"]:
        verdict = "pass" if g["passed"] else "FAIL"
        where = g.get("label") or g.get("cell_id") or "run"
        value = "–" if g["value"] is None else f"{g['value']:.4g}"
        bound = " ".join(x for x in (f">= {g['min']}" if g["min"] is not None else "",
                                     f"<= {g['max']}" if g["max"] is not None else "") if x)
        out.append(f"gate {verdict}: {g['metric']} [{where}] = {value} (want {bound}) {g.get('reason', '')}".rstrip())
    if not summary["complete"]:
        out.append(f"INCOMPLETE: {summary.get('stop_reason')}")
    out.append(f"Run directory: {run_dir}")
    out += [f"  {p}" for p in reports]
    out.append("PASSED" if summary["passed"] else "FAILED")
    return "\n".join(out)
