"""The metric registry: each metric declared once, and every table of metrics read from it.

A metric's declaration says what it is (kind, unit, direction, the fields summary.json gives it), how it is
computed, how comparisons treat it, and where the console, summary.md and report.html show it. Scoring,
comparisons, gates' validation, the reports and docs/metrics.md are views over these declarations, so adding a
metric is one ``register`` call; the views are recomputed whenever the registry changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from evalharness.types import MetricValue, Record

if TYPE_CHECKING:  # scoring's case spec; the registry itself computes nothing
    from evalharness.scoring.metrics import CaseSpec

Kind = Literal["count", "rate", "share", "number", "latency", "throughput", "tokens", "cost"]
#: How ``report.fmt.fmt`` writes each kind's values.
FORMAT: dict[str, str] = {"count": "int", "rate": "rate", "share": "rate", "number": "num", "latency": "sec",
                          "throughput": "num", "tokens": "num", "cost": "money"}
#: The fields summary.json gives a metric of each kind (a metric that does not apply has value null and a reason).
FIELDS: dict[str, tuple[str, ...]] = {
    "count": ("value",), "rate": ("value", "ci95", "n", "successes"), "share": ("value", "ci95", "n"),
    "number": ("value", "ci95", "n"),
    "latency": ("p50", "p90", "p95", "p99", "mean", "min", "max", "n", "p50_ci95", "p95_ci95"),
    "throughput": ("p50", "p90", "p95", "p99", "mean", "min", "max", "n", "p50_ci95", "p95_ci95"),
    "tokens": ("value", "mean", "n"), "cost": ("value", "currency", "n"),
}
#: The groups of report.html's table, in its order.
GROUPS = ("quality", "determinism", "reliability", "latency", "cost")
QUANTILES = ("p50", "p90", "p95", "p99")


@dataclass(frozen=True)
class Computed:
    """How a metric is computed: at which level, and by which function (``module.function``, for the docs)."""

    #: ``sample``: once per completed sample, summarised per cell; ``chunk``: per gap between a response's
    #: chunks; ``case``: once per case over its repeats; ``cell``: once over the cell's records.
    level: Literal["sample", "chunk", "case", "cell"]
    by: str


#: One sample's score of a rate: 1.0 or 0.0, or None where the rate does not apply to it.
Score = Callable[[Record, "CaseSpec"], float | None]


@dataclass(frozen=True)
class SampleRate:
    """A rate scored 0 or 1 per sample and averaged per cell; each case's count over its repeats is what
    ``per_case`` gates bound and per-case exact tests compare.

    The score sees the record and its case, and must depend only on the answer (content, tool calls) and the
    case: scores are memoised per distinct output of a case.
    """

    score: Score
    #: Why the rate does not apply in a cell where no sample scored it ("in this cell" is said of one cell).
    missing: str
    #: Scored on every request (a failed one included), not only on completed samples.
    requests: bool = False

    @property
    def level(self) -> str:
        return "sample"

    @property
    def by(self) -> str:
        return f"{self.score.__module__}.{self.score.__qualname__}"


#: A metric computed once over one cell's records and their cases' specs.
CellFn = Callable[[Sequence[Record], Mapping[str, "CaseSpec"]], "MetricValue"]


@dataclass(frozen=True)
class CellValue:
    """A metric computed by ``fn`` over a cell's records (every one, failed ones included) and the cases'
    specs; it returns the metric's summary.json object, with ``value`` None and a ``reason`` where it does not
    apply."""

    fn: CellFn

    @property
    def level(self) -> str:
        return "cell"

    @property
    def by(self) -> str:
        return f"{self.fn.__module__}.{self.fn.__qualname__}"


@dataclass(frozen=True)
class Compare:
    """How comparisons (``compare``, baselines, cells of one run) treat a metric."""

    #: ``difference`` of two rates, or ``ratio`` of a quantile (p50 unless asked for another).
    how: Literal["difference", "ratio"]
    #: The unit paired and resampled: each sample (case, repeat), or each case (a rate over a case's repeats).
    per: Literal["sample", "case"] = "sample"


@dataclass(frozen=True)
class Shown:
    """A metric's place in one view (a table, the heat-maps, the ranking, a default comparison): its
    position among the view's metrics, and which of its fields appear there."""

    at: float
    fields: tuple[str, ...] = ("value",)


@dataclass(frozen=True)
class Metric:
    """One metric: what it means, how it is computed and compared, and where it is shown."""

    name: str
    kind: Kind
    group: str
    #: As a table's column shows it ("pass", "TTFT"; a quantile's field is added: "TTFT p50").
    heading: str
    #: What it means, for docs/metrics.md.
    about: str
    unit: str
    computed: Computed | SampleRate | CellValue
    #: True: higher is better; False: lower is; None: neither (a plain count).
    higher_is_better: bool | None = None
    #: As a heading with room shows it (heat-maps, the best-setting line); the heading by default.
    title: str = ""
    fields: tuple[str, ...] = ()
    compare: Compare | None = None
    #: In the console's and summary.md's per-cell table.
    cell: Shown | None = None
    #: In report.html's table of every metric.
    table: Shown | None = None
    heatmap: Shown | None = None
    #: Among the criteria the best setting is chosen by (the first some cell measures is the headline).
    ranking: Shown | None = None
    #: Judged by default by ``compare`` and ``run --baseline`` (``fields`` picks a latency's quantile).
    compared: Shown | None = None
    #: Compared between the cells of one run in summary.json's ``comparisons``.
    between_cells: Shown | None = None

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"metric {self.name}: group must be one of {', '.join(GROUPS)}, not {self.group!r}")
        if isinstance(self.computed, SampleRate) and self.kind != "rate":
            raise ValueError(f"metric {self.name}: a per-sample score makes a rate (kind 'rate')")
        if self.compare is not None and self.higher_is_better is None:
            raise ValueError(f"metric {self.name}: a comparable metric needs higher_is_better")
        for view in ("cell", "table", "heatmap", "ranking", "compared", "between_cells"):
            shown: Shown | None = getattr(self, view)
            wrong = [f for f in shown.fields if f not in self.summary_fields] if shown else []
            if wrong:  # a view of a field the metric does not have would show an empty column
                raise ValueError(f"metric {self.name}: {view} shows {', '.join(wrong)}, not among its fields "
                                 f"{', '.join(self.summary_fields)}")

    @property
    def summary_fields(self) -> tuple[str, ...]:
        return self.fields or FIELDS[self.kind]

    @property
    def case_tested(self) -> bool:
        """Whether comparisons test each case on its own (Fisher's exact test on its count of passes)."""
        return self.compare is not None and isinstance(self.computed, SampleRate)


@dataclass(frozen=True)
class Column:
    """One field of a metric as a view shows it."""

    metric: str
    field: str
    heading: str
    fmt: str  # how ``report.fmt.fmt`` writes it
    higher_is_better: bool
    group: str

    @property
    def path(self) -> str:
        """As gates and comparisons name it: ``pass_rate``, ``e2e_s.p95``."""
        return self.metric if self.field == "value" else f"{self.metric}.{self.field}"


_metrics: dict[str, Metric] = {}
_views: dict[str, Any] = {}  # each view, computed once per state of the registry
_version = [0]  # bumped on every change, so derived lookups know to rebuild
T = TypeVar("T")


def register(metric: Metric) -> Metric:
    """Add a metric to the catalogue: every cell reports it (after the ones before it) and every view whose
    place it declares shows it. A name is registered once."""
    if metric.name in _metrics:
        raise ValueError(f"a metric named {metric.name!r} is already registered")
    _metrics[metric.name] = metric
    _changed()
    return metric


def unregister(name: str) -> None:
    """Remove a metric (a test's own, or a plugin's being unloaded)."""
    del _metrics[name]
    _changed()


def _changed() -> None:
    _views.clear()
    _version[0] += 1


def _view(fn: Callable[[], T]) -> Callable[[], T]:
    def cached() -> T:
        key = fn.__name__
        if key not in _views:
            _views[key] = fn()
        found: T = _views[key]
        return found
    cached.__name__ = fn.__name__
    cached.__doc__ = fn.__doc__
    return cached


def get(name: str) -> Metric | None:
    return _metrics.get(name)


@_view
def metrics() -> tuple[Metric, ...]:
    """Every metric, in catalogue order (the order of a cell's metrics in summary.json)."""
    return tuple(_metrics.values())


@_view
def names() -> tuple[str, ...]:
    return tuple(_metrics)


@_view
def sample_rates() -> tuple[Metric, ...]:
    """Rates scored per completed sample, in catalogue order."""
    return tuple(m for m in metrics() if isinstance(m.computed, SampleRate) and not m.computed.requests)


@_view
def cell_values() -> tuple[Metric, ...]:
    """Metrics computed once per cell by a function of its records (``CellValue``), in catalogue order."""
    return tuple(m for m in metrics() if isinstance(m.computed, CellValue))


@_view
def request_rates() -> tuple[Metric, ...]:
    """Rates scored per request, a failed one included (``error_rate``)."""
    return tuple(m for m in metrics() if isinstance(m.computed, SampleRate) and m.computed.requests)


@_view
def per_case_rates() -> tuple[str, ...]:
    """The rates a ``per_case`` gate can bound: those scored per sample, so each case has a count."""
    return tuple(m.name for m in (*sample_rates(), *request_rates()))


@_view
def case_tested() -> tuple[str, ...]:
    """The comparable rates whose cases comparisons test one by one."""
    return tuple(m.name for m in metrics() if m.case_tested)


@_view
def comparable() -> tuple[Metric, ...]:
    return tuple(m for m in metrics() if m.compare is not None)


@_view
def compared_per_case() -> tuple[str, ...]:
    """Comparable rates scored once per case over its repeats: more repeats do not narrow them, more cases do."""
    return tuple(m.name for m in comparable() if m.compare is not None and m.compare.per == "case")


def split_metric(path: str) -> tuple[str, str | None]:
    """``e2e_s.p95`` -> (``e2e_s``, ``p95``): a metric a comparison can judge, and the quantile of a latency
    (its median when none is named); a ValueError says what can be compared instead."""
    name, _, fld = path.partition(".")
    metric = _metrics.get(name)
    if metric is None or metric.compare is None:
        raise ValueError(f"{name!r} cannot be compared with a baseline; comparable metrics: "
                         f"{', '.join(m.name for m in comparable())} (latencies as NAME.p50 or NAME.p95)")
    if metric.compare.how == "difference":
        if fld not in ("", "value"):
            raise ValueError(f"{name} is a rate; compare it as {name}, not {path}")
        return name, None
    if (fld or "p50") not in QUANTILES:
        raise ValueError(f"{name} compares by a quantile: {', '.join(f'{name}.{f}' for f in QUANTILES)}")
    return name, fld or "p50"


@_view
def sample_latencies() -> tuple[str, ...]:
    """Latencies (and speeds) measured once per completed sample."""
    return tuple(m.name for m in metrics() if m.kind in ("latency", "throughput") and m.computed.level == "sample")


def _columns(view: str) -> tuple[Column, ...]:
    placed = [(shown, m) for m in metrics() if (shown := getattr(m, view)) is not None]
    placed.sort(key=lambda p: (GROUPS.index(p[1].group) if view == "table" else 0, p[0].at))
    out = []
    for shown, m in placed:
        long = view in ("heatmap", "ranking")
        for fld in shown.fields:
            heading = (m.title or m.heading) if long else m.heading
            if fld in QUANTILES:
                heading = f"{heading} {fld}"
            out.append(Column(m.name, fld, heading, FORMAT[m.kind], bool(m.higher_is_better), m.group))
    return tuple(out)


@_view
def cell_columns() -> tuple[Column, ...]:
    """The console's and summary.md's per-cell table."""
    return _columns("cell")


@_view
def table_columns() -> tuple[Column, ...]:
    """report.html's table, grouped (``GROUPS``)."""
    return _columns("table")


@_view
def heatmap_columns() -> tuple[Column, ...]:
    return _columns("heatmap")


@_view
def ranking_columns() -> tuple[Column, ...]:
    """What a user choosing a setting cares about first, first."""
    return _columns("ranking")


@_view
def compared_by_default() -> tuple[str, ...]:
    """What ``compare`` and ``run --baseline`` judge per matched cell."""
    return tuple(c.path for c in _columns("compared"))


@_view
def compared_between_cells() -> tuple[str, ...]:
    """What summary.json compares between the cells of one run."""
    return tuple(c.path for c in _columns("between_cells"))


class Names(Sequence[str]):
    """A live, read-only sequence of metric names from a view of the registry: a module can keep a name for
    it (``DEFAULT_METRICS``) and still see metrics registered after it was imported."""

    def __init__(self, view: Callable[[], Sequence[str]]) -> None:
        self._view = view

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...
    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._view()[index]

    def __len__(self) -> int:
        return len(self._view())

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __contains__(self, name: object) -> bool:
        return name in self._view()

    def __repr__(self) -> str:
        return repr(tuple(self._view()))


V = TypeVar("V")


class Lookup(Mapping[str, V]):
    """A live, read-only mapping of metric names to what ``make`` derives from each metric a view picks."""

    def __init__(self, view: Callable[[], Sequence[Metric]], make: Callable[[Metric], V]) -> None:
        self._view, self._make = view, make
        self._made: tuple[int, dict[str, V]] = (-1, {})

    def _items(self) -> dict[str, V]:
        if self._made[0] != _version[0]:
            self._made = (_version[0], {m.name: self._make(m) for m in self._view()})
        return self._made[1]

    def __getitem__(self, name: str) -> V:
        return self._items()[name]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())


__all__ = [
    "FIELDS", "FORMAT", "GROUPS", "QUANTILES", "CellFn", "CellValue", "Column", "Compare", "Computed", "Kind",
    "Lookup", "Metric", "Names", "SampleRate", "Score", "Shown", "case_tested", "cell_columns", "cell_values",
    "comparable", "compared_between_cells", "compared_by_default", "compared_per_case", "get", "heatmap_columns",
    "metrics", "names", "per_case_rates", "ranking_columns", "register", "request_rates", "sample_latencies",
    "sample_rates", "split_metric", "table_columns", "unregister",
]
