"""history.html: one self-contained page of how each cell's metrics moved over runs (``evalharness history``).

Built from history.json's content only. Per cell and metric an inline SVG trend: the value of each run with its
95% interval as a band, runs whose gates failed ticked on the axis, and the run where a regression first
appeared marked and named below the chart. A table of the runs gives each one's gate verdicts, what regressed
against the run before, and a link to its report. The page has no script at all: its Content-Security-Policy
allows none, and no network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import jinja2
from markupsafe import Markup, escape

from evalharness import __version__
from evalharness.report.charts import Frame, _num, _svg, nice_ticks
from evalharness.report.fmt import fmt, fmt_interval
from evalharness.scoring import catalogue
from evalharness.scoring.catalogue import split_metric
from evalharness.types import History, HistoryPoint, HistoryRegression

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("evalharness.report", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True)
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
#: Up to this many runs every run's point is drawn (with its value on hover); beyond, only the line, the band
#: and the marks, so a page of a thousand runs stays a few megabytes.
POINTS_MAX_RUNS = 80


@dataclass
class RunRow:
    index: int
    anchor: str
    run_id: str
    report: str | None
    started_at: str
    passed: bool
    gates: str
    failed_gates: list[str]
    regressions: list[str]
    against: str | None
    note: str | None


@dataclass
class Chart:
    metric: str
    heading: str
    svg: Markup
    latest: str
    marks: list[str]


@dataclass
class CellView:
    anchor: str
    label: str
    runs: int
    regressed: bool
    charts: list[Chart]
    cases: list[str] = field(default_factory=list)


@dataclass
class HistoryView:
    title: str
    names: str
    runs: list[RunRow]
    cells: list[CellView]
    skipped: list[str]
    regressed_runs: int
    failed_runs: int
    analysis: str
    first: str
    last: str


def _kind(metric: str) -> str:
    spec = catalogue.get(split_metric(metric)[0])
    return "rate" if spec is None or spec.kind == "rate" else "sec"


def _heading(metric: str) -> str:
    name, fld = split_metric(metric)
    spec = catalogue.get(name)
    return (spec.heading if spec else name) + (f" {fld}" if fld else "")


def trend_chart(metric: str, points: list[HistoryPoint | None], run_ids: list[str], marked: dict[int, str],
                gate_failed: list[bool], xs: list[str] | None = None) -> Markup:
    """The value of ``metric`` in each run (None: the cell or the metric is absent there) with its interval as a
    band; ``marked`` runs (index → why) get a red mark, runs whose gates failed a tick under the axis."""
    kind = _kind(metric)
    highs = [p["ci95"][1] if p["ci95"] else p["value"] for p in points if p and p["value"] is not None]
    top = 1.0 if kind == "rate" else max([h for h in highs if h is not None] or [1.0])
    yticks = [0.0, 0.5, 1.0] if kind == "rate" else nice_ticks(0.0, top, 3)
    n = len(points)
    frame = Frame(width=580, height=140, left=52, right=12, top=8, bottom=26, x0=0.0, x1=float(max(1, n - 1)),
                  y0=0.0, y1=yticks[-1])

    # Every chart of a page has the same x positions: given once (``xs``), not computed per point.
    xs = xs or run_positions(n)

    def x(i: int) -> str:
        return xs[i]

    def y(v: float) -> str:
        return _num(frame.y(v))

    body = frame.axes([], yticks, "num", kind, "", "")
    bottom = frame.height - frame.bottom
    body.append(f'<text class="tick" x="{frame.left}" y="{bottom + 14}">{escape(run_ids[0])}</text>')
    if n > 1:
        body.append(f'<text class="tick" x="{frame.width - frame.right}" y="{bottom + 14}" text-anchor="end">'
                    f"{escape(run_ids[-1])}</text>")
    band: list[str] = []
    line: list[str] = []
    upper: list[str] = []
    lower: list[str] = []
    segment: list[str] = []

    def close_band() -> None:
        if upper:
            band.append("M" + " L".join(upper + lower[::-1]) + " Z")
        upper.clear()
        lower.clear()

    for i, p in enumerate(points):
        value = p["value"] if p else None
        if value is None:
            close_band()
            if segment:
                line.append("M" + " L".join(segment))
                segment = []
            continue
        segment.append(f"{x(i)},{y(value)}")
        ci = p["ci95"] if p else None
        if ci and ci[0] is not None and ci[1] is not None:
            upper.append(f"{x(i)},{y(ci[1])}")
            lower.append(f"{x(i)},{y(ci[0])}")
        else:
            close_band()
    close_band()
    if segment:
        line.append("M" + " L".join(segment))
    if band:
        body.append(f'<path class="band" d="{" ".join(band)}"/>')
    if line:
        body.append(f'<path class="trend" d="{" ".join(line)}"/>')
    fails = [f"M{x(i)},{bottom + 1}v5" for i, failed in enumerate(gate_failed) if failed]
    if fails:
        body.append(f'<path class="gate-fail" d="{"".join(fails)}"><title>gates failed in this run</title></path>')
    if n <= POINTS_MAX_RUNS:
        for i, p in enumerate(points):
            if p and p["value"] is not None and i not in marked:
                shown = fmt_interval(p["ci95"], kind)
                tip = f"{run_ids[i]}: {fmt(p['value'], kind)}" + (f" (95% interval {shown})" if shown else "")
                body.append(f'<circle class="pt" cx="{x(i)}" cy="{y(p["value"])}" r="2.5">'
                            f"<title>{escape(tip)}</title></circle>")
    for i, why in marked.items():
        p = points[i]
        value = p["value"] if p and p["value"] is not None else 0.0
        body.append(f'<circle class="mark" cx="{x(i)}" cy="{y(value)}" r="5">'
                    f"<title>{escape(why)}</title></circle>")
    return _svg(frame.width, frame.height, f"{_heading(metric)} over {n} runs", body, "chart trend")


def run_positions(n: int) -> list[str]:
    """The x coordinate of each of ``n`` runs in a trend chart (one run: the middle)."""
    frame = Frame(width=580, height=140, left=52, right=12, top=8, bottom=26, x0=0.0, x1=float(max(1, n - 1)),
                  y0=0.0, y1=1.0)
    return [_num(frame.x(i) if n > 1 else (frame.left + frame.width - frame.right) / 2) for i in range(n)]


def _regression_text(r: HistoryRegression) -> str:
    return r.get("message") or f"{r['metric']} [{r['cell']}] regressed"


def build_history_view(history: History) -> HistoryView:
    """The page's view model: every number formatted, every chart drawn; the template only places them."""
    runs = history["runs"]
    run_ids = [r["run_id"] for r in runs]
    gate_failed = [not r["passed"] for r in runs]
    xs = run_positions(len(runs))
    rows = [RunRow(index=i + 1, anchor=f"run-{i + 1}", run_id=r["run_id"], report=r["report"],
                   started_at=r["started_at"], passed=r["passed"],
                   gates=(f"{r['gates_total'] - len(r['gates_failed'])} of {r['gates_total']} pass"
                          if r["gates_total"] else "no gates"),
                   failed_gates=[f"{g['metric']} [{g['label']}]: {g['reason']}" for g in r["gates_failed"]],
                   regressions=[_regression_text(g) for g in r["regressions"]], against=r["against"],
                   note=r["note"])
            for i, r in enumerate(runs)]
    # Cells in the order they first appear; a cell absent from a run has no point there.
    by_run = [r["cells"] for r in runs]
    cells: list[CellView] = []
    for number, cell in enumerate(history["cells"], start=1):
        key, label = cell["key"], cell["label"]
        present = [i for i, cs in enumerate(by_run) if key in cs]
        charts: list[Chart] = []
        case_lines: list[str] = []
        for i, r in enumerate(runs):
            case_lines += [f"run {r['run_id']} (#{i + 1}): {g['message']}" for g in r["regressions"]
                           if g["key"] == key and g.get("case")]
        for metric in history["metrics"]:
            points = [by_run[i][key].get(metric) if key in by_run[i] else None for i in range(len(runs))]
            if not any(p and p["value"] is not None for p in points):
                continue
            marked: dict[int, str] = {}
            marks: list[str] = []
            for i, r in enumerate(runs):
                for g in r["regressions"]:
                    if g["key"] == key and g["metric"] == metric and not g.get("case"):
                        kind = _kind(metric)
                        text = (f"first regressed in run {r['run_id']} (#{i + 1}) against {g['against']}: "
                                f"{fmt(g.get('before'), kind)} → {fmt(g.get('after'), kind)}")
                        marked[i] = text
                        marks.append(text)
            latest = next((p for p in reversed(points) if p and p["value"] is not None), None)
            kind = _kind(metric)
            latest_text = ""
            if latest:
                interval = fmt_interval(latest["ci95"], kind)
                latest_text = f"latest {fmt(latest['value'], kind)}" + (f" ({interval})" if interval else "")
            charts.append(Chart(metric=metric, heading=_heading(metric),
                                svg=trend_chart(metric, points, run_ids, marked, gate_failed, xs),
                                latest=latest_text, marks=marks))
        cells.append(CellView(anchor=f"cell-{number}", label=label, runs=len(present),
                              regressed=any(c.marks for c in charts) or bool(case_lines), charts=charts,
                              cases=case_lines))
    names = ", ".join(dict.fromkeys(r["name"] for r in runs))
    return HistoryView(
        title=f"History · {names} · {len(runs)} runs", names=names, runs=rows, cells=cells,
        skipped=[f"{s['run_dir']}: {s['reason']}" for s in history["skipped"]],
        regressed_runs=sum(1 for r in runs if r["regressions"]), failed_runs=sum(gate_failed),
        analysis=history["analysis"], first=runs[0]["started_at"], last=runs[-1]["started_at"])


def render_history(history: History) -> str:
    """history.html as a string."""
    return _ENV.get_template("history.html.j2").render(v=build_history_view(history), csp=CSP, version=__version__)
