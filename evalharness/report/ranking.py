"""Which setting wins: rank the cells on one headline metric, and say honestly how sure that is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evalharness.gates import metric_value
from evalharness.scoring import catalogue
from evalharness.types import CellSummary


@dataclass(frozen=True)
class Criterion:
    """A metric field a user ranks settings by, and which way is better."""

    metric: str
    field: str
    heading: str
    kind: str
    higher_is_better: bool

    @property
    def path(self) -> str:
        return self.metric if self.field == "value" else f"{self.metric}.{self.field}"

    def value(self, cell: CellSummary) -> float | None:
        return metric_value(cell["metrics"], self.path)

    def interval(self, cell: CellSummary) -> tuple[float, float] | None:
        """The metric's 95% interval (rates: Wilson; p50 latency: bootstrap), if the summary has one."""
        metric: Mapping[str, Any] = cell["metrics"].get(self.metric) or {}
        ci = metric.get("ci95") if self.field == "value" else metric.get(f"{self.field}_ci95")
        if not ci or ci[0] is None or ci[1] is None:
            return None
        return float(ci[0]), float(ci[1])

    def n(self, cell: CellSummary) -> int | None:
        n = (cell["metrics"].get(self.metric) or {}).get("n")
        return int(n) if isinstance(n, int) else None

    def score(self, cell: CellSummary) -> float:
        """Larger is better; a missing value ranks last."""
        value = self.value(cell)
        if value is None:
            return float("-inf")
        return value if self.higher_is_better else -value

    @classmethod
    def of(cls, column: catalogue.Column) -> Criterion:
        return cls(column.metric, column.field, column.heading, column.fmt, column.higher_is_better)


def ranking() -> list[Criterion]:
    """The catalogue's ranking, in order of what a user choosing a setting cares about first; the first one
    any cell measures is the headline, the rest break ties."""
    return [Criterion.of(c) for c in catalogue.ranking_columns()]


def measured(cells: list[CellSummary]) -> list[CellSummary]:
    """Cells with at least one completed request (a cell whose every request failed recommends nothing)."""
    return [c for c in cells if c["n"] > ((c["metrics"].get("errors") or {}).get("value") or 0)]


def errors_dominate(cell: CellSummary) -> bool:
    """More than half of the cell's requests failed: its figures describe the failures, not the setting."""
    errors = (cell["metrics"].get("errors") or {}).get("value") or 0
    return bool(cell["n"]) and errors * 2 > cell["n"]


def primary_criterion(cells: list[CellSummary]) -> Criterion:
    """The headline metric: the first of the ranking that some cell has a value for."""
    criteria = ranking()
    for criterion in criteria:
        if any(criterion.value(c) is not None for c in cells):
            return criterion
    return criteria[0]


def rank_cells(cells: list[CellSummary]) -> list[CellSummary]:
    """Measured cells, best first: by the headline metric, then the other criteria in the ranking's order."""
    primary = primary_criterion(cells)
    order = [primary, *(c for c in ranking() if c != primary)]
    return sorted(measured(cells), key=lambda cell: tuple(-c.score(cell) for c in order))


def best_cell(cells: list[CellSummary]) -> CellSummary | None:
    """The cell a user would pick on the point estimates (see ``best_setting`` for how sure that is)."""
    ranked = rank_cells(cells)
    return ranked[0] if ranked else None


@dataclass(frozen=True)
class BestSetting:
    """The leader on the headline metric and the settings it cannot be told apart from."""

    leader: CellSummary
    criterion: Criterion
    # Other cells whose interval overlaps the leader's: the data do not say the leader is better than these.
    contenders: list[CellSummary]
    runner_up: CellSummary | None

    @property
    def clearly_best(self) -> bool:
        return self.runner_up is not None and not self.contenders and self.criterion.interval(self.leader) is not None


def _overlaps(criterion: Criterion, lead: tuple[float, float] | None, other: tuple[float, float] | None) -> bool:
    if lead is None or other is None:
        return True
    return other[1] >= lead[0] if criterion.higher_is_better else other[0] <= lead[1]


def best_setting(cells: list[CellSummary]) -> BestSetting | None:
    """The leader, with every other cell whose 95% interval on the headline metric overlaps the leader's.

    Overlapping intervals are a conservative test (two estimates can differ significantly while their
    intervals overlap a little), so "clearly best" is only claimed when the leader's interval lies wholly
    beyond every other setting's. A cell without an interval is a contender unless its value is missing.

    None with a single setting (there is nothing to choose between) and when every cell's errors dominate:
    a setting most of whose requests failed is never recommended, whatever its few answers scored.
    """
    if len(cells) < 2:
        return None
    ranked = [cell for cell in rank_cells(cells) if not errors_dominate(cell)]
    if not ranked:
        return None
    leader, others = ranked[0], ranked[1:]
    criterion = primary_criterion(cells)
    lead_ci = criterion.interval(leader)
    contenders = []
    for cell in others:
        if criterion.value(cell) is None:
            continue
        if _overlaps(criterion, lead_ci, criterion.interval(cell)):
            contenders.append(cell)
    return BestSetting(leader=leader, criterion=criterion, contenders=contenders,
                       runner_up=others[0] if others else None)


def no_best_reason(cells: list[CellSummary]) -> str:
    """Why ``best_setting`` names none, in the words a report shows instead."""
    if len(cells) == 1:
        return "Only one setting was measured, so there is nothing to compare it with."
    if measured(cells):
        return ("Most requests of every setting failed, so none can be recommended: its figures describe the "
                "failures, not the setting.")
    return "No setting has a completed request, so none can be recommended."
