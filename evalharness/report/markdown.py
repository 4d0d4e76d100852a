"""summary.md: GitHub-flavoured Markdown that fits a pull request or $GITHUB_STEP_SUMMARY."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalharness.report.view import CELL_COLUMNS, best_cell, cell_value


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(summary: dict[str, Any]) -> str:
    t = summary["totals"]
    status = "✅ passed" if summary["passed"] else "❌ failed"
    lines = [f"## evalharness: {summary['name']} — {status}", "",
             f"Run `{summary['run_id']}` against `{summary['target']['model']}`: "
             f"{t['requests']}/{t['planned']} requests, {t['errors']} errors, "
             f"{t['prompt_tokens'] + t['completion_tokens']:,} tokens, cost {t['cost']:.6f} {t['currency']}."]
    if not summary["complete"]:
        lines += ["", f"**Incomplete run:** {summary.get('stop_reason')}"]
    best = best_cell(summary["cells"])
    if best:
        lines += ["", f"Best setting: **{_escape(best['label'])}**"]
    if summary["gates"]:
        lines += ["", "| gate | cell | value | bound | verdict |", "|---|---|---|---|---|"]
        for g in summary["gates"]:
            bound = " ".join(x for x in (f"≥ {g['min']}" if g["min"] is not None else "",
                                         f"≤ {g['max']}" if g["max"] is not None else "") if x)
            value = "–" if g["value"] is None else f"{g['value']:.4g}"
            verdict = "pass" if g["passed"] else f"**FAIL** {g.get('reason', '')}".strip()
            lines.append(f"| {g['metric']} | {_escape(g.get('label') or g.get('cell_id') or 'run')} | "
                         f"{value} | {bound} | {verdict} |")
    heads = [h for _, _, h, _ in CELL_COLUMNS]
    lines += ["", "| setting | n | " + " | ".join(heads) + " |", "|---" * (len(heads) + 2) + "|"]
    for cell in summary["cells"]:
        values = [cell_value(cell["metrics"].get(m), f, k)["text"] for m, f, _, k in CELL_COLUMNS]
        lines.append(f"| {_escape(cell['label'])} | {cell['n']} | " + " | ".join(values) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(run_dir: Path, summary: dict[str, Any]) -> Path:
    path = run_dir / "summary.md"
    path.write_text(render_markdown(summary), encoding="utf-8")
    return path
