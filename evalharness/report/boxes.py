"""The latency box plots, drawn by matplotlib into inline SVG.

Box statistics are computed here with numpy (p5, p25, p50, p75, p95 per setting) and handed to
``Axes.bxp``, so the figure costs the same for ten records or a million.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import numpy as np
from markupsafe import Markup

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _stats(label: str, values: Sequence[float]) -> dict[str, object]:
    p5, q1, med, q3, p95 = np.percentile(np.asarray(values, dtype=float), [5, 25, 50, 75, 95])
    return {"label": label, "med": med, "q1": q1, "q3": q3, "whislo": p5, "whishi": p95, "fliers": []}


def latency_boxes(keys: Sequence[str], ttft: Sequence[Sequence[float]], e2e: Sequence[Sequence[float]]
                  ) -> Markup | None:
    """Two panels, TTFT and e2e: per setting a box from p25 to p75, the median, whiskers at p5 and p95."""
    panels = [(title, data) for title, data in (("time to first token (s)", ttft), ("end-to-end (s)", e2e))
              if any(len(v) for v in data)]
    if not panels:
        return None
    with plt.rc_context({"svg.fonttype": "none", "font.size": 9, "font.family": "sans-serif",
                         "axes.spines.top": False, "axes.spines.right": False, "svg.hashsalt": "evalharness"}):
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 0.6 + 0.32 * len(keys)),
                                 squeeze=False)
        for ax, (title, data) in zip(axes[0], panels, strict=True):
            stats = [_stats(k, v) for k, v in zip(keys, data, strict=True) if len(v)]
            ax.bxp(stats, orientation="horizontal", showfliers=False, widths=0.55, patch_artist=True,
                   boxprops={"facecolor": "#dbe7f3", "edgecolor": "#4e79a7"},
                   medianprops={"color": "#c0392b", "linewidth": 1.6}, whiskerprops={"color": "#4e79a7"},
                   capprops={"color": "#4e79a7"})
            ax.invert_yaxis()
            ax.set_xlabel(title)
            ax.set_xlim(left=0)
            ax.grid(axis="x", color="#e5e7eb", linewidth=0.6)
            ax.set_axisbelow(True)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg")
        plt.close(fig)
    text = buf.getvalue()
    return Markup(text[text.index("<svg"):])
