"""Per-case verdicts: Fisher's exact test on one case's repeats, and Holm's correction across a family.

A case that passed 20 of 20 repeats before and 0 of 20 after has changed, whatever the rest of the suite
did. Each case is judged on its own: its repeats on the two sides are two independent binomial samples (a
repeat index means nothing without a seed, so repeats are not paired), and Fisher's exact test asks whether
one success probability explains both. It is exact, so it stays valid at 3 or 5 repeats where a normal
approximation is not, and conditional on the total successes, which is what makes a case that passes (or
fails) every repeat on both sides carry no evidence at all: its only possible table has p = 1. Boschloo's
test is a little more powerful but costs a numerical maximisation per case; Fisher's is the reference a
reader can reproduce (``scipy.stats.fisher_exact``, checked in the tests).

Many cases and metrics are tested at once, so some p-values fall below 5% by chance. Holm's step-down
procedure keeps the chance of any false verdict in the family at ``alpha`` (like Bonferroni) while rejecting
at least as much, and tables that cannot reach any level (every repeat the same on both sides) are left out
of the family: a test that can never reject costs nothing when it is dropped (Tarone 1990).

Pure functions of counts.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

#: scipy's tolerance when it sums the tables "as or less likely" than the observed one.
_RELATIVE_TOLERANCE = 1 + 1e-7


@dataclass(frozen=True)
class Counts:
    """Successes out of trials of one case on one side (``7/10``)."""

    passed: int
    n: int

    def __str__(self) -> str:
        return f"{self.passed}/{self.n}"

    @property
    def share(self) -> float:
        return self.passed / self.n if self.n else math.nan


def _log_pmf(a: int, n_before: int, n_after: int, successes: int) -> float:
    """log P(``a`` of the ``successes`` fall in the before row), hypergeometric: the definition, one term at a
    time (``_log_pmfs`` computes the same doubles for a whole table, which is what the tests hold it to)."""
    return (_log_comb(n_before, a) + _log_comb(n_after, successes - a)
            - _log_comb(n_before + n_after, successes))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _log_factorials(n: int) -> npt.NDArray[np.float64]:
    """``math.lgamma(k + 1)`` for k = 0..n (the same doubles), extended as larger tables are asked for."""
    global _LOG_FACTORIALS
    if _LOG_FACTORIALS.size <= n:
        _LOG_FACTORIALS = np.array([math.lgamma(k + 1) for k in range(max(2 * n, 1024) + 1)])
    return _LOG_FACTORIALS


_LOG_FACTORIALS: npt.NDArray[np.float64] = np.empty(0)


def _log_pmfs(lo: int, hi: int, n_before: int, n_after: int, successes: int) -> list[float]:
    """``_log_pmf(a, …)`` for a = lo..hi, at once: the same operations on the same doubles, in numpy (a case
    of 500 repeats on each side has up to 500 tables)."""
    f = _log_factorials(n_before + n_after)
    a = np.arange(lo, hi + 1)
    b = successes - a
    total = f[n_before + n_after] - f[successes] - f[n_before + n_after - successes]
    logs = ((f[n_before] - f[a] - f[n_before - a]) + (f[n_after] - f[b] - f[n_after - b])) - total
    values: list[float] = logs.tolist()
    return values


@functools.lru_cache(maxsize=1 << 16)  # a large run asks of the same few tables again and again
def fisher_exact(before: Counts, after: Counts,
                 alternative: Literal["two-sided", "less", "greater"] = "two-sided") -> float:
    """p-value of Fisher's exact test on the 2×2 table (before, after) × (passed, failed).

    ``less``: after's share is lower than before's (a drop); ``greater``: higher. Two-sided sums every table
    at most as likely as the observed one, as ``scipy.stats.fisher_exact`` does.
    """
    if before.n <= 0 or after.n <= 0:
        raise ValueError("each side needs at least one trial")
    s = before.passed + after.passed
    lo, hi = max(0, s - after.n), min(before.n, s)
    logs = _log_pmfs(lo, hi, before.n, after.n, s)
    top = max(logs)
    probs = [math.exp(v - top) for v in logs]
    total = sum(probs)
    observed = before.passed - lo
    if alternative == "less":  # fewer passes after <=> more of the passes in the before row
        p = sum(probs[observed:]) / total
    elif alternative == "greater":
        p = sum(probs[: observed + 1]) / total
    else:
        limit = probs[observed] * _RELATIVE_TOLERANCE
        p = sum(q for q in probs if q <= limit) / total
    return min(1.0, p)


@functools.lru_cache(maxsize=1 << 16)
def min_attainable_p(before: Counts, after: Counts) -> float:
    """The smallest two-sided p-value any table with these margins can give (1 when only one table exists)."""
    s = before.passed + after.passed
    lo, hi = max(0, s - after.n), min(before.n, s)
    if lo == hi:
        return 1.0
    extremes = (Counts(lo, before.n), Counts(hi, before.n))
    return min(fisher_exact(Counts(a.passed, before.n), Counts(s - a.passed, after.n)) for a in extremes)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: reject hypothesis i when ``adjusted[i] <= alpha``.

    The i-th smallest p-value is multiplied by (m - i + 1), and adjusted values never decrease along the
    sorted order (so a hypothesis is rejected only when all smaller ones are).
    """
    m = len(pvalues)
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted
