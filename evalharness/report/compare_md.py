"""``evalharness compare --format markdown``: a before/after table that fits a pull request comment and
``$GITHUB_STEP_SUMMARY``.

Regressions come first, in a table of their own, then every case that regressed on its own, by name; the rest
(improvements, unchanged, inconclusive, metrics not compared, unmatched cells) folds into a ``<details>``.
A comment holds at most 65,536 characters, so the folded rows stop at ``MAX_CHARS`` with a note.
"""

from __future__ import annotations

from evalharness.console import format_case
from evalharness.report.markdown import md
from evalharness.types import Comparison, MetricComparison
from evalharness.wording import describe_change, too_small

MAX_CHARS = 60_000
HEADS = ["setting", "metric", "before", "after", "change", "interval", "verdict"]


def _verdict(r: MetricComparison) -> str:
    if r["verdict"] == "regressed":
        return "❌ **regressed**"
    if r["verdict"] == "improved":
        return "✅ improved"
    if r["verdict"] == "inconclusive":
        return f"inconclusive ({too_small(r)})"
    return str(r["verdict"])


def _table(rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(HEADS) + " |", "|" + "---|" * len(HEADS),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _row(label: str, r: MetricComparison) -> list[str]:
    before, after, change, interval = describe_change(r)
    return [md(label), f"`{r['metric']}`", before, after, change, interval, _verdict(r)]


def comparison_markdown(result: Comparison) -> str:
    """The comparison as GitHub-flavoured Markdown: headline, regressions, regressed cases, the rest folded."""
    base, new = result["base"], result["new"]
    regressed = [(c["label"], r) for c in result["cells"] for r in c["metrics"] if r.get("verdict") == "regressed"]
    rest = [(c["label"], r) for c in result["cells"] for r in c["metrics"]
            if r.get("verdict") not in (None, "regressed")]
    cases = result.get("case_regressions", [])
    n = len(regressed) + len(cases)
    name = f" {md(new['name'])}" if new.get("name") else ""
    head = (f"### ❌ evalharness{name}: {n} regression{'s' if n != 1 else ''}" if n
            else f"### ✅ evalharness{name}: no regression")
    counts = result["counts"]
    tally = ", ".join(f"{counts[v]} {v}" for v in ("regressed", "improved", "unchanged", "inconclusive")
                      if counts.get(v)) or "nothing compared"
    out = [head, "",
           f"Run `{md(new['run_id'])}` against baseline `{md(base['run_id'])}` — did {result['analysis']} change? "
           f"{len(result['cells'])} matched setting{'s' if len(result['cells']) != 1 else ''}: {tally}. "
           f"Intervals at {100 * result['level']:.3g}% so that all {result['comparisons']} verdicts hold together.",
           ""]
    if regressed:
        out += [*_table([_row(label, r) for label, r in regressed]), ""]
    if cases:
        out.append(f"**{len(cases)} case{'s' if len(cases) != 1 else ''} regressed on "
                   f"{'their' if len(cases) != 1 else 'its'} own** "
                   f"(Fisher's exact test per case, Holm-adjusted):")
        out += [f"- {md(format_case(c).removeprefix('REGRESSED case '))}" for c in cases]
        out.append("")
    folded: list[str] = []
    rows: list[list[str]] = []
    size = sum(len(line) + 1 for line in out)
    for label, r in rest:
        row = _row(label, r)
        size += sum(len(cell) + 3 for cell in row)
        if size > MAX_CHARS:
            break
        rows.append(row)
    if rows:
        folded += _table(rows)
    if len(rows) < len(rest):
        folded.append(f"\n… and {len(rest) - len(rows)} more rows (all in `compare --format json`)")
    skipped: dict[str, str] = {}
    for c in result["cells"]:
        for r in c["metrics"]:
            if r.get("verdict") is None:
                skipped.setdefault(r["metric"], r.get("reason", ""))
    notes = [f"- not compared: `{m}` ({md(reason)})" for m, reason in skipped.items()]
    cells, case_names = result["unmatched_cells"], result["unmatched_cases"]
    for what, lone_cells, lone_cases in (("only in the baseline", cells["base_only"], case_names["base_only"]),
                                         ("only in the new run", cells["new_only"], case_names["new_only"])):
        if lone_cells:
            notes.append(f"- settings {what}: " + ", ".join(md(x) for x in lone_cells))
        if lone_cases:
            notes.append(f"- cases {what}: " + ", ".join(md(x) for x in lone_cases))
    if notes:
        folded += ["", *notes]
    if folded:
        label = "everything else" if n else "every comparison"
        out += [f"<details><summary>{label}: {len(rest)} compared, {len(skipped)} not compared</summary>", "",
                *folded, "", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"
