"""Statistics used by the metrics: Wilson intervals, percentiles, seeded bootstrap intervals."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

Z95 = 1.959963984540054
PERCENTILES = (50, 90, 95, 99)
BOOTSTRAP_SEED = 20240101
BOOTSTRAP_RESAMPLES = 1000


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


def rate(successes: int, n: int) -> dict[str, object]:
    """A rate metric object: value, Wilson 95% interval, n."""
    if n == 0:
        return {"value": None, "n": 0, "reason": "no samples"}
    lo, hi = wilson(successes, n)
    return {"value": successes / n, "ci95": [lo, hi], "n": n, "successes": successes}


def bootstrap_ci(values: npt.ArrayLike, stat: Callable[[npt.NDArray[np.float64]], float], *,
                 resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of ``stat``; seeded, so a report is reproducible."""
    arr = np.sort(np.asarray(values, dtype=float))
    if arr.size == 0:
        raise ValueError("bootstrap needs at least one value")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(resamples, arr.size))
    stats = np.apply_along_axis(stat, 1, arr[idx])
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return float(lo), float(hi)


def distribution(values: Sequence[float], *, intervals: bool = True) -> dict[str, object]:
    """Percentiles p50/p90/p95/p99 and mean of a latency sample, with bootstrap intervals on p50 and p95."""
    # Sorted, so the seeded bootstrap (and the float sum) do not depend on the order of the records.
    arr = np.sort(np.asarray([v for v in values if v is not None], dtype=float))
    if arr.size == 0:
        return {"value": None, "n": 0, "reason": "no samples"}
    qs = np.percentile(arr, PERCENTILES)
    out: dict[str, object] = {f"p{p}": float(q) for p, q in zip(PERCENTILES, qs, strict=True)}
    out["mean"] = float(arr.mean())
    out["min"] = float(arr.min())
    out["max"] = float(arr.max())
    out["n"] = int(arr.size)
    if intervals and arr.size >= 2:
        out["p50_ci95"] = list(_quantile_ci(arr, 0.50))
        out["p95_ci95"] = list(_quantile_ci(arr, 0.95))
    return out


def _quantile_ci(arr: npt.NDArray[np.float64], q: float) -> tuple[float, float]:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    idx = rng.integers(0, arr.size, size=(BOOTSTRAP_RESAMPLES, arr.size))
    stats = np.quantile(arr[idx], q, axis=1)
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return float(lo), float(hi)


def mean_ci(values: Sequence[float]) -> dict[str, object]:
    """Mean with a normal-approximation 95% interval (standard error over the values)."""
    arr = np.sort(np.asarray(values, dtype=float))
    if arr.size == 0:
        return {"value": None, "n": 0, "reason": "no samples"}
    mean = float(arr.mean())
    if arr.size < 2:
        return {"value": mean, "n": 1}
    se = float(arr.std(ddof=1) / math.sqrt(arr.size))
    return {"value": mean, "ci95": [mean - Z95 * se, mean + Z95 * se], "n": int(arr.size)}
