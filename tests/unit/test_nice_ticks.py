"""Chart ticks for axes whose ends differ only by float rounding (the same costs summed in another order)."""

from __future__ import annotations

from evalharness.report.charts import nice_ticks


def test_bounds_one_rounding_apart_give_ticks_and_end() -> None:
    lo = 0.1 + 0.2  # 0.30000000000000004
    ticks = nice_ticks(0.3, lo)
    assert ticks[0] <= 0.3 and ticks[-1] >= lo and len(ticks) < 20


def test_ordinary_bounds_are_unchanged() -> None:
    assert nice_ticks(0.0, 1.0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
