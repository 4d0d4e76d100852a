"""Statistics used by the metrics: Wilson intervals, percentiles, seeded bootstrap intervals, t quantiles."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from statistics import NormalDist
from typing import cast

import numpy as np
import numpy.typing as npt

from evalharness.types import MetricValue

Z95 = 1.959963984540054
PERCENTILES = (50, 90, 95, 99)
BOOTSTRAP_SEED = 20240101
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_MAX_N = 2000


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (stays inside [0, 1], sane at 0 and n)."""
    if n <= 0:
        raise ValueError("wilson interval needs n > 0")
    if not 0 <= successes <= n:
        raise ValueError("successes must be between 0 and n")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Rounding can put a bound a hair inside p at 0 or n; the interval always contains the estimate.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def rate(successes: int, n: int) -> MetricValue:
    """A rate metric object: value, Wilson 95% interval, n."""
    if n == 0:
        return {"value": None, "n": 0, "reason": "no samples"}
    lo, hi = wilson(successes, n)
    return {"value": successes / n, "ci95": [lo, hi], "n": n, "successes": successes}


def distribution(values: Sequence[float | None] | npt.NDArray[np.float64], *, intervals: bool = True
                 ) -> MetricValue:
    """Percentiles p50/p90/p95/p99 and mean of a latency sample, with bootstrap intervals on p50 and p95."""
    # Sorted, so the seeded bootstrap (and the float sum) do not depend on the order of the records.
    if isinstance(values, np.ndarray):
        arr = np.sort(values.astype(float))
    else:
        arr = np.sort(np.asarray([v for v in values if v is not None], dtype=float))
    if arr.size == 0:
        return {"value": None, "n": 0, "reason": "no samples"}
    qs = np.percentile(arr, PERCENTILES)
    # p50, p90, p95, p99: keys of MetricValue, built from PERCENTILES.
    out = cast(MetricValue, {f"p{p}": float(q) for p, q in zip(PERCENTILES, qs, strict=True)})
    out["mean"] = float(arr.mean())
    out["min"] = float(arr.min())
    out["max"] = float(arr.max())
    out["n"] = int(arr.size)
    if intervals and arr.size >= 2:
        (lo50, hi50), (lo95, hi95) = _quantile_cis(arr, (0.50, 0.95))
        out["p50_ci95"] = [lo50, hi50]
        out["p95_ci95"] = [lo95, hi95]
    return out


def _quantile_cis(arr: npt.NDArray[np.float64], qs: tuple[float, ...]) -> list[tuple[float, float]]:
    """Percentile bootstrap 95% intervals of several quantiles, from one seeded set of resamples (one
    partition of the resample matrix serves every quantile).

    Above ``BOOTSTRAP_MAX_N`` samples the resample matrix would cost seconds and hundreds of MB per cell;
    there the distribution-free order-statistic interval (ranks from the binomial distribution of the
    count below the quantile), to which the bootstrap converges, is used: exact, and free once sorted.
    """
    if arr.size > BOOTSTRAP_MAX_N:
        return [_order_statistic_ci(arr, q) for q in qs]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    idx = rng.integers(0, arr.size, size=(BOOTSTRAP_RESAMPLES, arr.size))
    stats = np.quantile(arr[idx], qs, axis=1)
    bounds = np.quantile(stats, [0.025, 0.975], axis=1)
    return [(float(bounds[0, i]), float(bounds[1, i])) for i in range(len(qs))]


def _order_statistic_ci(sorted_arr: npt.NDArray[np.float64], q: float) -> tuple[float, float]:
    n = sorted_arr.size
    half = Z95 * math.sqrt(n * q * (1 - q))
    lo = max(0, math.floor(n * q - half) - 1)
    hi = min(n - 1, math.ceil(n * q + half))
    return float(sorted_arr[lo]), float(sorted_arr[hi])


def mean_ci(values: Sequence[float], *, lower: float | None = None, upper: float | None = None
            ) -> MetricValue:
    """Mean with a 95% interval from Student's t over the values (few cases are common), clipped to
    ``[lower, upper]`` where the quantity is bounded (a share cannot leave [0, 1])."""
    arr = np.sort(np.asarray(values, dtype=float))
    if arr.size == 0:
        return {"value": None, "n": 0, "reason": "no samples"}
    mean = float(arr.mean())
    if arr.size < 2:
        return {"value": mean, "n": 1}
    half = t_quantile(0.975, arr.size - 1) * float(arr.std(ddof=1) / math.sqrt(arr.size))
    lo = mean - half if lower is None else max(lower, mean - half)
    hi = mean + half if upper is None else min(upper, mean + half)
    return {"value": mean, "ci95": [min(lo, mean), max(hi, mean)], "n": int(arr.size)}


def z_quantile(p: float) -> float:
    """Quantile of the standard normal distribution."""
    return NormalDist().inv_cdf(p)


def t_cdf(x: float, df: float) -> float:
    """Student's t distribution function, through the regularized incomplete beta function."""
    if df <= 0:
        raise ValueError("t distribution needs df > 0")
    tail = 0.5 * _betainc(df / 2, 0.5, df / (df + x * x))
    return 1 - tail if x >= 0 else tail


@lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """Quantile of Student's t distribution (bisection on ``t_cdf``; exact enough for intervals).

    Cached: a summary asks for the same few (level, cases - 1) hundreds of times, and each bisection costs
    a few milliseconds of continued fractions.
    """
    if not 0 < p < 1:
        raise ValueError("p must be inside (0, 1)")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    if df == 1:  # Cauchy: closed form, and its tail is too heavy for a bracket search to be quick
        return math.tan(math.pi * (p - 0.5))
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b) by Lentz's continued fraction (Numerical Recipes, 6.4)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    # The continued fraction converges fast only below the mean; use the symmetry I_x(a,b) = 1 - I_{1-x}(b,a).
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * f / a
