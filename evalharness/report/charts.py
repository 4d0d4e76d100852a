"""Charts as hand-written inline SVG: no network, no files, and fast for many series.

Each builder takes plain numbers and labels and returns escaped SVG markup (``Markup``), so the template
can place it as is. matplotlib took seconds per chart on large grids; these take milliseconds.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from evalharness.report.fmt import fmt

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#7f7f7f"]
DASHES = ["", "5 3", "2 2", "8 3 2 3"]
# A CDF of more samples than this is drawn through this many quantiles (exact step function below it).
CDF_POINTS = 200
# Latency CDFs switch to a log time axis when the slowest sample is this many times the fastest.
LOG_SPREAD = 20


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def dash(index: int) -> str:
    return DASHES[(index // len(PALETTE)) % len(DASHES)]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 × 10^k steps) covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    # Bounds equal to float precision (sums of the same costs in another order) are one value: a step that
    # small would not move ``t`` forward.
    if hi - lo <= 1e-9 * max(abs(lo), abs(hi)):
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    if ticks[-1] < hi:
        ticks.append(round(t, 12))
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks for a log axis, from the largest at or below ``lo`` to the smallest at or above ``hi``."""
    candidates = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                  for m in (1, 2, 5)]
    start = max(c for c in candidates if c <= lo * (1 + 1e-9))
    end = min(c for c in candidates if c >= hi * (1 - 1e-9))
    return [c for c in candidates if start <= c <= end]


def _num(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _svg(width: int, height: int, label: str, body: list[str], css_class: str) -> Markup:
    return Markup(f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" viewBox="0 0 {width} {height}" '
                  f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}">'
                  + "".join(body) + "</svg>")


@dataclass(frozen=True)
class Frame:
    """Plot area inside an SVG and the data ranges it maps."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    x0: float
    x1: float
    y0: float
    y1: float
    log_x: bool = False

    def x(self, v: float) -> float:
        if self.log_x:
            v = math.log10(max(v, self.x0))
            x0, x1 = math.log10(self.x0), math.log10(self.x1)
        else:
            x0, x1 = self.x0, self.x1
        span = (x1 - x0) or 1.0
        return self.left + (v - x0) / span * (self.width - self.left - self.right)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (v - self.y0) / span * (self.height - self.top - self.bottom)

    def axes(self, xticks: list[float], yticks: list[float], xkind: str, ykind: str, xlabel: str,
             ylabel: str) -> list[str]:
        out = []
        bottom = self.height - self.bottom
        for t in yticks:
            y = _num(self.y(t))
            out.append(f'<line class="grid" x1="{self.left}" x2="{self.width - self.right}" y1="{y}" y2="{y}"/>'
                       f'<text class="tick" x="{self.left - 6}" y="{y}" text-anchor="end" dy="0.32em">'
                       f"{escape(fmt(t, ykind))}</text>")
        for t in xticks:
            x = _num(self.x(t))
            out.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{self.top}" y2="{bottom}"/>'
                       f'<text class="tick" x="{x}" y="{bottom + 14}" text-anchor="middle">'
                       f"{escape(fmt(t, xkind))}</text>")
        out.append(f'<line class="axis" x1="{self.left}" x2="{self.width - self.right}" y1="{bottom}" '
                   f'y2="{bottom}"/><line class="axis" x1="{self.left}" x2="{self.left}" y1="{self.top}" '
                   f'y2="{bottom}"/>')
        out.append(f'<text class="label" x="{(self.left + self.width - self.right) / 2:.0f}" '
                   f'y="{self.height - 4}" text-anchor="middle">{escape(xlabel)}</text>')
        out.append(f'<text class="label" transform="translate(12 {(self.top + bottom) / 2:.0f}) rotate(-90)" '
                   f'text-anchor="middle">{escape(ylabel)}</text>')
        return out


@dataclass(frozen=True)
class Series:
    """One cell's line in a chart: ``key`` (e.g. "#3") links it to the legend and the tables."""

    key: str
    label: str
    index: int
    values: Sequence[float]
    emphasis: bool = False


def cdf_points(values: Sequence[float]) -> list[tuple[float, float]]:
    """(x, cumulative share) points of the empirical CDF of sorted ``values``.

    Up to CDF_POINTS values: the exact step function. More: CDF_POINTS + 1 evenly spaced quantiles, which
    bounds the SVG's size while keeping the shape (the percentiles themselves are exact in the tables).
    """
    n = len(values)
    if n == 0:
        return []
    if n <= CDF_POINTS:
        points = [(values[0], 0.0)]
        for i, v in enumerate(values):
            points += [(v, i / n), (v, (i + 1) / n)]
        return points
    out = []
    for k in range(CDF_POINTS + 1):
        q = k / CDF_POINTS
        pos = q * (n - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, n - 1)
        out.append((values[lo] + (values[hi] - values[lo]) * (pos - lo), q))
    return out


def cdf_chart(series: list[Series], title: str, unit_label: str) -> Markup | None:
    """Empirical CDFs (one line per cell) of sorted latency samples, with p50 and p95 guides."""
    drawn = [s for s in series if s.values]
    if not drawn:
        return None
    hi = max(s.values[-1] for s in drawn)
    firsts = [next((x for x in s.values if x > 0), None) for s in drawn]
    lo = min((x for x in firsts if x is not None), default=0.0)
    # A log axis when the spread is wide, so a slow outlier does not squash everyone else into one edge.
    log_x = lo > 0 and hi / lo > LOG_SPREAD
    xticks = log_ticks(lo, hi) if log_x else nice_ticks(0.0, hi)
    frame = Frame(width=560, height=300, left=52, right=26, top=10, bottom=38, x0=xticks[0], x1=xticks[-1],
                  y0=0.0, y1=1.0, log_x=log_x)
    body = frame.axes(xticks, [0, 0.25, 0.5, 0.75, 1.0], "sec", "rate",
                      unit_label + (" (log scale)" if log_x else ""), "share of requests ≤ x")
    for q, name in ((0.5, "p50"), (0.95, "p95")):
        y = _num(frame.y(q))
        body.append(f'<line class="guide" x1="{frame.left}" x2="{frame.width - frame.right}" y1="{y}" y2="{y}"/>'
                    f'<text class="guide-label" x="{frame.width - frame.right - 2}" y="{y}" dy="-3" '
                    f'text-anchor="end">{name}</text>')
    for s in sorted(drawn, key=lambda s: s.emphasis):  # the emphasised line is drawn last, on top
        points = " ".join(f"{_num(frame.x(x))},{_num(frame.y(y))}" for x, y in cdf_points(s.values))
        extra = f' stroke-dasharray="{dash(s.index)}"' if dash(s.index) else ""
        body.append(f'<polyline class="series{" lead" if s.emphasis else ""}" data-cell="{escape(s.key)}" '
                    f'points="{points}" stroke="{colour(s.index)}"{extra}>'
                    f"<title>{escape(s.key)} {escape(s.label)} (n={len(s.values)})</title></polyline>")
    return _svg(frame.width, frame.height, title, body, "chart cdf")


@dataclass(frozen=True)
class Point:
    key: str
    label: str
    index: int
    cost: float
    quality: float
    interval: tuple[float, float] | None


def pareto_front(points: Sequence[tuple[float, float]]) -> set[int]:
    """Indices of the points no other point beats: lower-or-equal cost and higher-or-equal quality,
    strictly better in one of the two."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front: set[int] = set()
    best = float("-inf")  # best quality among strictly cheaper points
    for _, same_cost in itertools.groupby(order, key=lambda i: points[i][0]):
        group = list(same_cost)
        top = points[group[0]][1]
        if top > best:
            front.update(j for j in group if points[j][1] == top)
            best = top
    return front


def scatter_chart(points: list[Point], front: set[int], x_label: str, x_kind: str, y_label: str
                  ) -> Markup | None:
    """Quality against cost per cell, 95% intervals as whiskers, the Pareto front joined and labelled.

    Both axes span the data (not zero to the maximum): settings of a grid often differ by a few percent,
    which a zero-based axis would squash into one blob. The tick labels carry the scale.
    """
    if not points:
        return None
    xs = [p.cost for p in points]
    ys = [v for p in points for v in (p.quality, *(p.interval or ()))]
    pad = (max(xs) - min(xs)) * 0.05 or abs(max(xs)) * 0.05 or 1.0
    xticks = nice_ticks(min(xs) - pad, max(xs) + pad)
    yticks = nice_ticks(max(0.0, min(ys) - 0.02), min(1.0, max(ys) + 0.02), 4)
    frame = Frame(width=560, height=320, left=52, right=26, top=22, bottom=38, x0=xticks[0], x1=xticks[-1],
                  y0=yticks[0], y1=yticks[-1])
    body = frame.axes(xticks, yticks, x_kind, "rate", x_label, y_label)
    on_front = sorted((points[i] for i in front), key=lambda p: p.cost)
    if len(on_front) > 1:
        steps = []
        for a, b in itertools.pairwise(on_front):
            steps += [(a.cost, a.quality), (b.cost, a.quality), (b.cost, b.quality)]
        path = " ".join(f"{_num(frame.x(x))},{_num(frame.y(y))}" for x, y in steps)
        body.append(f'<polyline class="front" points="{path}"/>')
    for i, p in enumerate(points):
        x, y = _num(frame.x(p.cost)), _num(frame.y(p.quality))
        if p.interval:
            body.append(f'<line class="whisker" x1="{x}" x2="{x}" y1="{_num(frame.y(p.interval[0]))}" '
                        f'y2="{_num(frame.y(p.interval[1]))}" stroke="{colour(p.index)}"/>')
        cls = "pt front-pt" if i in front else "pt"
        body.append(f'<circle class="{cls}" data-cell="{escape(p.key)}" cx="{x}" cy="{y}" r="5" '
                    f'fill="{colour(p.index)}"><title>{escape(p.key)} {escape(p.label)}: '
                    f"{escape(y_label)} {escape(fmt(p.quality, 'rate'))}, {escape(x_label)} "
                    f"{escape(fmt(p.cost, x_kind))}</title></circle>")
        if i in front:
            body.append(f'<text class="pt-label" x="{x}" y="{y}" dx="7" dy="-6">{escape(p.key)}</text>')
    return _svg(frame.width, frame.height, f"{y_label} against {x_label}", body, "chart scatter")


STANDING_COLOURS = {"leader": "#1e8449", "overlaps": "#b9770e", "worse": "#9ca3af"}


def interval_bar(value: float | None, ci: tuple[float, float] | None, lo: float, hi: float, standing: str,
                 band: tuple[float, float] | None) -> Markup:
    """A one-row forest plot: the estimate as a dot on its 95% interval, on a shared [lo, hi] scale, over a
    pale band marking the leader's interval (so an overlap is visible at a glance)."""
    width, height = 220, 18
    if value is None:
        return _svg(width, height, "no value", [], "bar")
    frame = Frame(width=width, height=height, left=6, right=6, top=0, bottom=0, x0=lo, x1=hi, y0=0, y1=1)
    body = []
    if band:
        body.append(f'<rect class="band" x="{_num(frame.x(band[0]))}" y="1" height="16" '
                    f'width="{_num(max(1.0, frame.x(band[1]) - frame.x(band[0])))}"/>')
    body.append(f'<line class="track" x1="{frame.left}" x2="{width - frame.right}" y1="9" y2="9"/>')
    fill = STANDING_COLOURS.get(standing, "#9ca3af")
    if ci:
        body.append(f'<line class="ci" x1="{_num(frame.x(ci[0]))}" x2="{_num(frame.x(ci[1]))}" y1="9" y2="9" '
                    f'stroke="{fill}"/>')
    body.append(f'<circle cx="{_num(frame.x(value))}" cy="9" r="{5 if standing == "leader" else 4}" fill="{fill}"/>')
    label = f"estimate {value:.4g}" + (f", 95% interval {ci[0]:.4g} to {ci[1]:.4g}" if ci else "")
    return _svg(width, height, label, body, "bar")


@dataclass(frozen=True)
class Line:
    """One setting's line in a line chart: (x, y) points in x order; ``dashed`` draws a second measure."""

    key: str
    label: str
    index: int
    points: Sequence[tuple[float, float]]
    dashed: bool = False


def line_chart(lines: list[Line], title: str, x_label: str, x_kind: str, y_label: str, y_kind: str
               ) -> Markup | None:
    """Lines with a marker at each point (a load sweep: a latency or a throughput against the rate)."""
    drawn = [ln for ln in lines if ln.points]
    if not drawn:
        return None
    xs = [x for ln in drawn for x, _ in ln.points]
    ys = [y for ln in drawn for _, y in ln.points]
    xticks, yticks = nice_ticks(0.0, max(xs)), nice_ticks(0.0, max(ys))
    frame = Frame(width=560, height=300, left=58, right=26, top=10, bottom=38, x0=xticks[0], x1=xticks[-1],
                  y0=yticks[0], y1=yticks[-1])
    body = frame.axes(xticks, yticks, x_kind, y_kind, x_label, y_label)
    for ln in drawn:
        points = " ".join(f"{_num(frame.x(x))},{_num(frame.y(y))}" for x, y in ln.points)
        extra = ' stroke-dasharray="5 3"' if ln.dashed else ""
        body.append(f'<polyline class="series" data-cell="{escape(ln.key)}" points="{points}" '
                    f'stroke="{colour(ln.index)}"{extra}><title>{escape(ln.label)}</title></polyline>')
        body.extend(f'<circle cx="{_num(frame.x(x))}" cy="{_num(frame.y(y))}" r="3" fill="{colour(ln.index)}">'
                    f"<title>{escape(ln.label)}: {escape(fmt(x, x_kind))}, {escape(fmt(y, y_kind))}</title></circle>"
                    for x, y in ln.points)
    return _svg(frame.width, frame.height, title, body, "chart line")
