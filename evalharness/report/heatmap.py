"""Heat-maps: a metric over two grid axes, one panel per combination of the other axes.

Every square is one cell's exact value (nothing is pooled across cells). The two axes are chosen per metric:
those along which the metric's mean moves most, so the map shows what matters for that metric.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evalharness.plan import canonical, cell_label
from evalharness.report.fmt import fmt, fmt_interval
from evalharness.report.ranking import Criterion
from evalharness.scoring import catalogue
from evalharness.types import CellSummary


def heatmap_metrics() -> list[Criterion]:
    """The metric fields the catalogue maps, in its order."""
    return [Criterion.of(c) for c in catalogue.heatmap_columns()]


MAX_PANELS = 16
# Squares rendered over all metrics; a huge grid gets fewer metrics rather than a huge file.
MAX_SQUARES = 6000
_BAD, _MID, _GOOD = (232, 128, 118), (248, 232, 164), (118, 196, 140)


def value_label(axis: str, value: Any) -> str:
    """How a grid value reads in a label (``unset`` for a parameter not sent, ``json_object``, …)."""
    return cell_label({axis: value}).partition("=")[2]


def grid_axes(cells: list[CellSummary]) -> dict[str, list[Any]]:
    """Axes that vary across the cells, each with its values in first-seen order."""
    values: dict[str, dict[str, Any]] = defaultdict(dict)
    for cell in cells:
        for axis, value in cell["params"].items():
            values[axis].setdefault(canonical(value), value)
    return {axis: list(vals.values()) for axis, vals in values.items() if len(vals) >= 2}


def axis_effect(cells: list[CellSummary], axis: str, metric: Criterion) -> float:
    """Spread of the metric's mean across the axis's values (0 when it does not move)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for cell in cells:
        value = metric.value(cell)
        if value is not None:
            groups[canonical(cell["params"].get(axis))].append(value)
    means = [sum(v) / len(v) for v in groups.values() if v]
    return max(means) - min(means) if len(means) >= 2 else 0.0


def choose_axes(cells: list[CellSummary], metric: Criterion) -> tuple[str, str | None, list[str]]:
    """(row axis, column axis or None, the remaining axes that split the map into panels)."""
    axes = grid_axes(cells)
    order = list(axes)
    ranked = sorted(order, key=lambda a: (-axis_effect(cells, a, metric), -len(axes[a]), order.index(a)))
    if len(ranked) == 1:
        return ranked[0], None, []
    return ranked[0], ranked[1], [a for a in order if a not in ranked[:2]]


def shade(goodness: float) -> str:
    """Red (bad) through yellow to green (good) for goodness in [0, 1]; pale enough for black text."""
    g = min(1.0, max(0.0, goodness))
    a, b, t = (_BAD, _MID, g * 2) if g < 0.5 else (_MID, _GOOD, g * 2 - 1)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _goodness(metric: Criterion, value: float, lo: float, hi: float) -> float:
    # Rates have a natural [0, 1] scale; other metrics are placed between the run's own extremes.
    g = value if metric.kind == "rate" else 0.5 if hi == lo else (value - lo) / (hi - lo)
    return g if metric.higher_is_better else 1 - g


def build_heatmaps(cells: list[CellSummary], keys: dict[str, str], default: Criterion
                   ) -> list[dict[str, Any]]:
    """One entry per metric some cell has: its panels of rows × columns of squares (empty without axes)."""
    axes = grid_axes(cells)
    if not axes or not cells:
        return []
    metrics = [m for m in heatmap_metrics() if any(m.value(c) is not None for c in cells)]
    metrics.sort(key=lambda m: m.path != default.path)
    metrics = metrics[:max(1, MAX_SQUARES // len(cells))]
    out = []
    for position, metric in enumerate(metrics):
        row_axis, col_axis, rest = choose_axes(cells, metric)
        values = [v for v in (metric.value(c) for c in cells) if v is not None]
        lo, hi = min(values), max(values)
        panels: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
        titles: dict[str, str] = {}
        for cell in cells:
            params = cell["params"]
            panel = canonical([params.get(a) for a in rest])
            titles.setdefault(panel, " ".join(f"{a}={value_label(a, params.get(a))}" for a in rest))
            value = metric.value(cell)
            ci = fmt_interval(metric.interval(cell), metric.kind)
            n = metric.n(cell)
            title = f"{keys[cell['cell_id']]} {cell['label']}: {metric.heading} {fmt(value, metric.kind)}"
            title += f", 95% interval {ci}" if ci else ""
            title += f" (n={n})" if n is not None else ""
            if value is None:
                title += f" — {(cell['metrics'].get(metric.metric) or {}).get('reason', 'not measured')}"
            square = {"text": fmt(value, metric.kind), "title": title, "key": keys[cell["cell_id"]],
                      "colour": "" if value is None else shade(_goodness(metric, value, lo, hi))}
            row = canonical(params.get(row_axis))
            col = canonical(params.get(col_axis)) if col_axis else ""
            panels[panel][(row, col)] = square
        row_values = axes[row_axis]
        col_values = axes[col_axis] if col_axis else [None]
        rendered = []
        for panel, squares in list(panels.items())[:MAX_PANELS]:
            rows = []
            for rv in row_values:
                row_cells = [squares.get((canonical(rv), canonical(cv) if col_axis else "")) for cv in col_values]
                if any(row_cells):
                    rows.append({"label": value_label(row_axis, rv),
                                 "squares": [s or {"text": "", "title": "no cell", "key": "", "colour": ""}
                                             for s in row_cells]})
            rendered.append({"title": titles[panel], "rows": rows})
        out.append({
            "id": metric.path.replace(".", "-"), "heading": metric.heading, "row_axis": row_axis,
            "col_axis": col_axis or "", "default": position == 0,
            "columns": [value_label(col_axis, v) for v in col_values] if col_axis else [metric.heading],
            "panels": rendered,
            "note": (f"first {MAX_PANELS} of {len(panels)} combinations of {', '.join(rest)} shown"
                     if len(panels) > MAX_PANELS else ""),
        })
    return out
