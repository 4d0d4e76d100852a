"""Comparisons on paired samples: the change of a rate, the ratio of a latency quantile, and verdicts.

Two sets of samples are *paired* when both hold the same case and repeat (cells of one run, or one cell of
two runs). Pairing removes the variation between cases from the comparison, which is what makes a small
suite able to see a change at all (Miller 2024, "Adding Error Bars to Evals", section 4).

- Rates: each sample scores 0 or 1 (per case for ``exact_match_rate``); the change is the mean of the
  paired differences, its standard error clustered by case (repeats of a case are not independent draws),
  its interval from Student's t with (cases - 1) degrees of freedom.
- Latency: the ratio of a quantile (the median by default) of the new samples to the old, with a seeded
  bootstrap over cases for its standard error on the log scale.
- The minimum detectable effect: the smallest true change the run would detect with 80% power.

Everything here is a pure function of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from evalharness.scoring.stats import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, t_quantile, z_quantile
from evalharness.types import MetricComparison

#: (cluster, before, after): one paired unit; the cluster is the case, so repeats of a case share one.
Pair = tuple[Hashable, float, float]
Verdict = Literal["regressed", "improved", "unchanged", "inconclusive"]

POWER = 0.80
#: Fewer cases than this give a bootstrap with too few distinct resamples to trust its spread.
MIN_BOOTSTRAP_CASES = 5


@dataclass(frozen=True)
class Change:
    """A paired comparison: ``after`` relative to ``before`` with an interval at confidence ``level``.

    ``kind`` is ``difference`` (``change = after - before``, rates) or ``ratio`` (``change = after / before``,
    latency). ``se`` is the standard error of the difference, or of the log ratio. ``mde`` is the minimum
    detectable effect at ``level`` with 80% power: rate points for a difference, a relative change
    (0.25 = 25%) for a ratio. ``ci`` and ``mde`` are None when the data cannot give them, with ``reason``.
    """

    kind: Literal["difference", "ratio"]
    before: float
    after: float
    change: float
    ci: tuple[float, float] | None
    level: float
    se: float | None
    mde: float | None
    n: int
    cases: int
    reason: str | None = None

    def to_json(self) -> MetricComparison:
        # A ratio of a zero latency is NaN, which strict JSON cannot hold: it is written as null.
        out: MetricComparison = {"kind": self.kind, "before": self.before, "after": self.after,
                               "change": self.change if math.isfinite(self.change) else None,
                               "ci": list(self.ci) if self.ci else None,
                               "level": self.level, "se": self.se, "mde": self.mde, "n": self.n,
                               "cases": self.cases}
        if self.reason:
            out["reason"] = self.reason
        return out


def clustered_se(values: Sequence[float], clusters: Sequence[Hashable]) -> float:
    """Standard error of the mean of ``values``, clustered (Miller 2024, eq. 8; small-sample factor C/(C-1)).

    With one value per cluster this is the usual ``sd / sqrt(n)``. Needs at least 2 clusters.
    """
    n = len(values)
    if n != len(clusters):
        raise ValueError("one cluster label per value")
    if n == 0:
        raise ValueError("no values")
    _, index = np.unique(np.asarray([str(c) for c in clusters]), return_inverse=True)
    return _clustered_se(np.asarray(values, dtype=float), index)


def _clustered_se(arr: npt.NDArray[np.float64], index: npt.NDArray[np.intp]) -> float:
    """``clustered_se`` with the clusters given as indices (their order fixes the order of the float sum)."""
    n_clusters = int(index.max()) + 1
    if n_clusters < 2:
        raise ValueError("a clustered standard error needs at least 2 clusters")
    sums = np.bincount(index, weights=arr - arr.mean(), minlength=n_clusters)
    return float(math.sqrt(n_clusters / (n_clusters - 1) * float(np.sum(sums * sums))) / arr.size)


def minimum_detectable_effect(se: float, df: float | None, level: float = 0.95, power: float = POWER) -> float:
    """The smallest true change an interval of confidence ``level`` excludes zero for, with ``power``.

    ``df`` None means a normal interval; otherwise Student's t with ``df`` degrees of freedom.
    """
    alpha = 1 - level
    crit = z_quantile(1 - alpha / 2) if df is None else t_quantile(1 - alpha / 2, df)
    return (crit + z_quantile(power)) * se


def _pair_arrays(pairs: Sequence[Pair]
                 ) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(case index, before, after) of the pairs, sorted by case name, then before, then after; a case's index
    is its rank among the sorted case names.

    Sorting makes every result independent of record order (the float sums and the bootstrap draws). numpy
    sorts as Python would sort (name, before, after) tuples, stably, without a Python key per pair.
    """
    names = np.asarray([str(p[0]) for p in pairs])
    before = np.fromiter((p[1] for p in pairs), dtype=float, count=len(pairs))
    after = np.fromiter((p[2] for p in pairs), dtype=float, count=len(pairs))
    _, case = np.unique(names, return_inverse=True)
    order = np.lexsort((after, before, case))
    return case[order], before[order], after[order]


def rate_difference(pairs: Sequence[Pair], *, level: float = 0.95) -> Change:
    """Change of a rate on paired samples scored in [0, 1]: mean difference, clustered SE, t interval.

    With few cases, data where every case changed the same way has no spread at all, and the plain
    standard error would claim certainty from three cases. As Agresti and Min (2005) do for matched
    proportions, the standard error is taken as if one more case, of average size, had not changed; its
    weight fades as cases grow (about 1/cases). Identical data still gives a zero-width interval at 0.

    The standard error is also never smaller than if every sample were independent: clustering should only
    widen an interval, and with few cases the clustered estimate can come out near zero by chance (one
    repeat of a case gained what another lost, so every case's total is unchanged).
    """
    if not pairs:
        raise ValueError("no paired samples")
    case, before, after = _pair_arrays(pairs)
    diffs = after - before
    n_cases = int(case.max()) + 1
    change = float(diffs.mean())
    base = Change("difference", float(before.mean()), float(after.mean()), change, None, level, None, None,
                  len(pairs), n_cases)
    if np.all(diffs == 0):
        return replace(base, ci=(0.0, 0.0), se=0.0, mde=0.0)
    pseudo_size = max(1, round(len(pairs) / n_cases))
    values = np.concatenate([diffs, np.zeros(pseudo_size)])
    # The pseudo-case is cluster 0 and the cases follow in name order, as their names would sort with it
    # ("\0pseudo" first); one cluster per sample is numbered as the samples' numbers sort as text.
    by_case = _clustered_se(values, np.concatenate([case + 1, np.zeros(pseudo_size, dtype=case.dtype)]))
    _, by_text = np.unique(np.arange(values.size).astype(str), return_inverse=True)
    by_sample = _clustered_se(values, by_text)
    se = max(by_case, by_sample)
    if n_cases < 2:
        return replace(base, se=se, reason="a change needs at least 2 cases to estimate its spread")
    df = n_cases - 1
    half = t_quantile(1 - (1 - level) / 2, df) * se
    lo, hi = max(-1.0, change - half), min(1.0, change + half)
    return replace(base, ci=(min(lo, change), max(hi, change)), se=se,
                    mde=minimum_detectable_effect(se, df, level))


def quantile_ratio(pairs: Sequence[Pair], *, q: float = 0.5, level: float = 0.95,
                   resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Change:
    """Ratio of the ``q`` quantile (median by default) of ``after`` to that of ``before``, paired samples.

    The interval is normal on the log scale with a standard error from a seeded bootstrap that resamples
    whole cases (so a report is reproducible, and repeats of a case move together).
    """
    if not pairs:
        raise ValueError("no paired samples")
    cluster, before, after = _pair_arrays(pairs)
    qb, qa = float(np.quantile(before, q)), float(np.quantile(after, q))
    n_cases = int(cluster.max()) + 1
    if qb <= 0 or qa <= 0:
        return Change("ratio", qb, qa, math.nan, None, level, None, None, len(pairs), n_cases,
                      reason="a ratio needs positive values")
    ratio = qa / qb
    base = Change("ratio", qb, qa, ratio, None, level, None, None, len(pairs), n_cases)
    if n_cases < MIN_BOOTSTRAP_CASES:
        return replace(base, reason=f"a bootstrap interval needs at least {MIN_BOOTSTRAP_CASES} cases")
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_cases, np.full(n_cases, 1 / n_cases), size=resamples)
    log_ratios = np.log(_weighted_quantiles(after, cluster, counts, q)) - np.log(
        _weighted_quantiles(before, cluster, counts, q))
    se = float(np.std(log_ratios, ddof=1))
    half = z_quantile(1 - (1 - level) / 2) * se
    mde = math.exp(minimum_detectable_effect(se, None, level)) - 1
    return replace(base, ci=(ratio * math.exp(-half), ratio * math.exp(half)), se=se, mde=mde)


def _weighted_quantiles(values: npt.NDArray[np.float64], cluster: npt.NDArray[np.intp],
                        counts: npt.NDArray[np.int64], q: float, *, table_max: int | None = None
                        ) -> npt.NDArray[np.float64]:
    """The ``q`` quantile of ``values`` in each bootstrap resample, a resample weighting each value by how
    often its case was drawn (``counts``: resamples × cases); the mean of the lower and upper quantile, which
    with equal weights is numpy's median.

    The weight of the k smallest values in a resample is ``counts[r] @ below(k)``, where ``below(k)`` counts
    each case's values among them. It never decreases with k, so each quantile's rank is found by bisection,
    every resample at once: resamples × cases × log(values) steps, where a cumulative sum over every value of
    every resample took seconds per comparison at 100,000 records. The ranks are exactly those of that sum:
    the same integer weights are compared with the same targets.
    """
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    n = ordered.size
    below = _below_counter(cluster[order], counts.shape[1], PREFIX_TABLE_MAX if table_max is None else table_max)
    weights = counts.astype(np.int64)
    target = q * (weights @ np.bincount(cluster, minlength=counts.shape[1]).astype(np.int64))
    lower = np.minimum(_first_reaching(below, weights, target, n, strict=False), n - 1)
    upper = np.minimum(_first_reaching(below, weights, target, n, strict=True), n - 1)
    result: npt.NDArray[np.float64] = (ordered[lower] + ordered[upper]) / 2
    return result


#: Up to this many (values + 1) × cases, how many values of each case lie below each rank is kept in a
#: table (32 MB at most); beyond it, looked up by binary search in the sorted (case, rank) keys.
PREFIX_TABLE_MAX = 1 << 23


def _below_counter(case_of: npt.NDArray[np.intp], n_cases: int, table_max: int
                   ) -> Callable[[npt.NDArray[np.intp]], npt.NDArray[np.int64]]:
    """A function of one rank k per resample: per resample and case, how many of the k smallest values (whose
    cases are ``case_of``, in sorted order) belong to that case."""
    n = case_of.size
    if (n + 1) * n_cases <= table_max:
        table = np.zeros((n + 1, n_cases), dtype=np.int32)  # n < table_max < 2**31
        table[np.arange(1, n + 1), case_of] = 1
        np.cumsum(table, axis=0, out=table)
        return lambda k: table[k].astype(np.int64)
    keys = np.sort(case_of.astype(np.int64) * (n + 1) + np.arange(n))
    offsets = np.arange(n_cases, dtype=np.int64) * (n + 1)
    starts = np.searchsorted(keys, offsets)
    return lambda k: (np.searchsorted(keys, offsets[None, :] + k[:, None]) - starts).astype(np.int64)


def _first_reaching(below: Callable[[npt.NDArray[np.intp]], npt.NDArray[np.int64]],
                    weights: npt.NDArray[np.int64], target: npt.NDArray[np.floating[Any]], n: int, *,
                    strict: bool) -> npt.NDArray[np.intp]:
    """Per resample, the first index i in [0, n) whose cumulative weight (of the i + 1 smallest values)
    reaches the target (exceeds it, if ``strict``), or n when none does: the count of indices before it."""
    lo = np.zeros(weights.shape[0], dtype=np.intp)
    hi = np.full(weights.shape[0], n, dtype=np.intp)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        cum = (weights * below(np.minimum(mid, n - 1) + 1)).sum(axis=1)
        reached = cum > target if strict else cum >= target
        hi = np.where(active & reached, mid, hi)
        lo = np.where(active & ~reached, mid + 1, lo)


def verdict(change: Change, *, higher_is_better: bool, tolerance: float, margin: float) -> Verdict:
    """What a change means, judged by its interval, never by its point estimate alone.

    - ``regressed``: the whole interval is worse than ``tolerance`` (rate points for a difference, a
      relative change for a ratio: 0.2 = 20% slower);
    - ``improved``: the whole interval is better than no change;
    - ``unchanged``: the interval rules out anything worse than ``margin`` (at least ``tolerance``);
    - ``inconclusive``: none of these; the run is too small to tell (see ``change.mde``).
    """
    if change.ci is None:
        return "inconclusive"
    lo, hi = change.ci
    margin = max(margin, tolerance)
    if change.kind == "ratio":
        # Work on the log scale, where "20% slower" and "20% faster" are the same distance from 1.
        lo, hi = math.log(lo), math.log(hi)
        tolerance = math.log1p(tolerance) if not higher_is_better else -math.log1p(-min(tolerance, 0.999))
        margin = math.log1p(margin) if not higher_is_better else -math.log1p(-min(margin, 0.999))
    if not higher_is_better:
        lo, hi = -hi, -lo
    if hi < -tolerance:
        return "regressed"
    if lo > 0:
        return "improved"
    if lo >= -margin:
        return "unchanged"
    return "inconclusive"
