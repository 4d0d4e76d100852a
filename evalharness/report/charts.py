"""Charts as inline SVG (matplotlib, no network, no files): the report stays one self-contained file."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False,
                     "axes.spines.right": False})


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def latency_chart(labels: list[str], series: list[list[float]], title: str) -> str | None:
    """Horizontal box plots of a latency sample per cell."""
    if not any(series):
        return None
    height = 0.9 + 0.42 * len(labels)
    fig, ax = plt.subplots(figsize=(7.5, height))
    data = [s if s else [float("nan")] for s in series]
    ax.boxplot(data, vert=False, tick_labels=labels, showfliers=True, widths=0.6,
               flierprops={"markersize": 3, "alpha": 0.5}, medianprops={"color": "#c0392b"})
    ax.set_xlabel("seconds")
    ax.set_title(title, loc="left", fontsize=10)
    ax.invert_yaxis()
    return _svg(fig)


def rates_chart(labels: list[str], rates: dict[str, list[tuple[float, float, float] | None]]) -> str | None:
    """Grouped horizontal bars of rate metrics per cell with their 95% intervals."""
    names = [n for n, vals in rates.items() if any(v is not None for v in vals)]
    if not names:
        return None
    height = 0.9 + 0.25 * len(labels) * len(names) + 0.2 * len(labels)
    fig, ax = plt.subplots(figsize=(7.5, height))
    bar = 0.8 / len(names)
    colours = ["#2e86de", "#27ae60", "#8e44ad", "#e67e22", "#16a085"]
    for j, name in enumerate(names):
        ys, xs, lo, hi = [], [], [], []
        for i, v in enumerate(rates[name]):
            if v is None:
                continue
            ys.append(i + j * bar)
            xs.append(v[0])
            lo.append(max(0.0, v[0] - v[1]))
            hi.append(max(0.0, v[2] - v[0]))
        ax.barh(ys, xs, height=bar, xerr=[lo, hi], label=name, color=colours[j % len(colours)],
                error_kw={"elinewidth": 0.8, "capsize": 2})
    ax.set_yticks([i + bar * (len(names) - 1) / 2 for i in range(len(labels))], labels)
    ax.set_xlim(0, 1.02)
    ax.invert_yaxis()
    ax.set_xlabel("rate (bars: 95% interval)")
    ax.legend(loc="lower right", fontsize=8, frameon=False, bbox_to_anchor=(1.0, 1.0), ncol=len(names))
    return _svg(fig)
