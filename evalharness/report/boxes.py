"""The latency box plots, as hand-written inline SVG like the other charts (``charts.py``).

Box statistics are computed here with numpy (p5, p25, p50, p75, p95 per setting), so the figure costs the
same for ten records or a million. matplotlib drew them before; importing and running it was about a
second of every report, for two small panels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from markupsafe import Markup, escape

from evalharness.report.charts import Frame, _num, _svg, nice_ticks
from evalharness.report.fmt import fmt

BOX_FILL, BOX_EDGE, MEDIAN = "#dbe7f3", "#4e79a7", "#c0392b"
PANEL_WIDTH, ROW_HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 380, 20, 44, 16, 8, 36


def box_stats(values: Sequence[float]) -> tuple[float, float, float, float, float]:
    """(p5, p25, p50, p75, p95) of one setting's samples: whiskers, box and median."""
    p5, q1, med, q3, p95 = np.percentile(np.asarray(values, dtype=float), [5, 25, 50, 75, 95])
    return float(p5), float(q1), float(med), float(q3), float(p95)


def _panel(title: str, keys: Sequence[str], data: Sequence[Sequence[float]], offset: int, height: int) -> list[str]:
    rows = [(i, k, box_stats(v)) for i, (k, v) in enumerate(zip(keys, data, strict=True)) if len(v)]
    hi = max(s[4] for _, _, s in rows)
    xticks = nice_ticks(0.0, hi or 1.0)
    frame = Frame(width=PANEL_WIDTH, height=height, left=LEFT, right=RIGHT, top=TOP, bottom=BOTTOM,
                  x0=0.0, x1=xticks[-1], y0=0.0, y1=1.0)
    body = frame.axes(xticks, [], "sec", "num", title, "")
    for i, key, (p5, q1, med, q3, p95) in rows:
        mid = TOP + ROW_HEIGHT * i + ROW_HEIGHT / 2
        top, bottom = _num(mid - ROW_HEIGHT * 0.3), _num(mid + ROW_HEIGHT * 0.3)
        y = _num(mid)
        x5, x1, xm, x3, x95 = (_num(frame.x(v)) for v in (p5, q1, med, q3, p95))
        tip = (f"{key}: p5 {fmt(p5, 'sec')}, p25 {fmt(q1, 'sec')}, median {fmt(med, 'sec')}, "
               f"p75 {fmt(q3, 'sec')}, p95 {fmt(p95, 'sec')}")
        body.append(
            f'<g class="box"><title>{escape(tip)}</title>'
            f'<line x1="{x5}" x2="{x1}" y1="{y}" y2="{y}" stroke="{BOX_EDGE}"/>'
            f'<line x1="{x3}" x2="{x95}" y1="{y}" y2="{y}" stroke="{BOX_EDGE}"/>'
            f'<line x1="{x5}" x2="{x5}" y1="{top}" y2="{bottom}" stroke="{BOX_EDGE}"/>'
            f'<line x1="{x95}" x2="{x95}" y1="{top}" y2="{bottom}" stroke="{BOX_EDGE}"/>'
            f'<rect x="{x1}" y="{top}" width="{_num(max(1.0, frame.x(q3) - frame.x(q1)))}" '
            f'height="{_num(ROW_HEIGHT * 0.6)}" fill="{BOX_FILL}" stroke="{BOX_EDGE}"/>'
            f'<line x1="{xm}" x2="{xm}" y1="{top}" y2="{bottom}" stroke="{MEDIAN}" stroke-width="1.6"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y}" text-anchor="end" dy="0.32em">{escape(key)}</text></g>')
    return [f'<g transform="translate({offset} 0)">', *body, "</g>"]


def latency_boxes(keys: Sequence[str], ttft: Sequence[Sequence[float]], e2e: Sequence[Sequence[float]]
                  ) -> Markup | None:
    """Two panels, TTFT and e2e: per setting a box from p25 to p75, the median, whiskers at p5 and p95."""
    panels = [(title, data) for title, data in (("time to first token", ttft), ("end-to-end", e2e))
              if any(len(v) for v in data)]
    if not panels:
        return None
    height = TOP + ROW_HEIGHT * len(keys) + BOTTOM
    body: list[str] = []
    for n, (title, data) in enumerate(panels):
        body += _panel(title, keys, data, n * PANEL_WIDTH, height)
    return _svg(PANEL_WIDTH * len(panels), height, "Latency by setting: box p25–p75, median, whiskers p5–p95",
                body, "chart boxes")
