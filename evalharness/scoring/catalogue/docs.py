"""docs/metrics.md, written from the registry (a test keeps the file equal to it)."""

from __future__ import annotations

from evalharness.scoring.catalogue.model import GROUPS, QUANTILES, Metric, SampleRate, metrics

COMMAND = "python -m evalharness.scoring.catalogue --markdown > docs/metrics.md"
_BETTER = {True: "higher", False: "lower", None: "–"}
_VIEWS = (("cell", "console, summary.md"), ("table", "report table"), ("heatmap", "heat-maps"),
          ("ranking", "best setting"), ("compared", "`compare` by default"), ("between_cells", "cells compared"))


def _computed(m: Metric) -> str:
    c = m.computed
    if isinstance(c, SampleRate):
        over = "request" if c.requests else "completed sample"
        return f"0/1 per {over} (`{c.by}`)"
    level = {"sample": "per sample", "chunk": "per chunk gap", "case": "per case", "cell": "per cell"}[c.level]
    return f"{level} (`{c.by}`)"


def _compared(m: Metric) -> str:
    if m.compare is None:
        return "–"
    if m.compare.how == "difference":
        text = f"difference of rates, paired per {m.compare.per}"
    else:
        text = f"ratio of a quantile ({', '.join(QUANTILES)}; p50 by default)"
    return text + ("; exact test per case" if m.case_tested else "")


def _shown(m: Metric) -> str:
    return ", ".join(label for view, label in _VIEWS if getattr(m, view) is not None) or "summary.json only"


def markdown() -> str:
    """The metric reference: per group, what each metric means; then how each is computed, compared and shown."""
    lines = [
        "# Metrics",
        "",
        f"<!-- Generated from evalharness/scoring/catalogue; do not edit. Regenerate: {COMMAND} -->",
        "",
        "Every cell of a run reports every metric below in `summary.json`, in this order. A metric that does not "
        "apply to a cell is `{\"value\": null, \"reason\": …}`, never a silent 0. Rates carry a 95% Wilson "
        "interval (`ci95`), p50 and p95 latencies a seeded bootstrap interval (`p50_ci95`, `p95_ci95`). Token, "
        "cost, `tpot_s` and `decode_tps` figures built from counted usage say so (`source`, `sources`, "
        "`prompt_estimated`). Gates name a metric as `name` or `name.field` (`e2e_s.p95`).",
    ]
    for group in GROUPS:
        members = [m for m in metrics() if m.group == group]
        if not members:
            continue
        lines += ["", f"## {group.capitalize()}", "", "| metric | what it measures | unit | better |",
                  "|---|---|---|---|"]
        lines += [f"| `{m.name}` | {m.about} | {m.unit} | {_BETTER[m.higher_is_better]} |" for m in members]
    lines += ["", "## How each is computed, compared and shown", "",
              "| metric | kind | fields | computed | compared | shown in |", "|---|---|---|---|---|---|"]
    lines += [f"| `{m.name}` | {m.kind} | {', '.join(f'`{f}`' for f in m.summary_fields)} | {_computed(m)} | "
              f"{_compared(m)} | {_shown(m)} |" for m in metrics()]
    lines += ["", "## Adding a metric", "",
              "Declare it once, in `evalharness/scoring/catalogue/builtin.py` or from your own code; every cell "
              "then reports it, and each view it is placed in (`Shown(position, fields)`) shows it:", "",
              "```python",
              "from evalharness.scoring.catalogue import Compare, Metric, SampleRate, Shown, register",
              "",
              "register(Metric(",
              '    "starts_with_capital_rate", "rate", "quality", "capitalised",',
              '    "Share of completed answers that start with a capital letter.", "share of completed samples",',
              '    SampleRate(lambda record, spec: float((record.get("content") or " ")[0].isupper()),',
              '               missing="no completed sample in this cell"),',
              '    higher_is_better=True, compare=Compare("difference"), table=Shown(7), compared=Shown(8)))',
              "```"]
    return "\n".join(lines) + "\n"
