"""Comparisons for the question "did *this suite* change?": the cases are fixed, only the repeats are random.

This is the default analysis of ``compare``, ``run --baseline``, baseline gates and the summary's cell
comparisons. A person regression-testing their suite asks whether the behaviour on *these* cases changed
beyond sampling noise, not whether a new sample of cases would (that is ``scoring/compare.py``, the
"cases like these" analysis, which cannot tell anything from 2 cases).

- Rates: per case, the two sides' repeats are two independent binomial samples (repeat i of one run has no
  special relation to repeat i of the other without a seed). The change is stratified by case: the mean
  over cases of each case's change of pass share, so every case weighs the same, as in the cell's rate. Its
  variance is the sum of the within-case binomial variances, each with Agresti and Caffo's (2000) one
  success and one failure added to each side: a case that passed every repeat on both sides then still has
  a little spread, so 3 repeats that all agree do not claim certainty, and the interval keeps close to its
  nominal coverage at the small counts CI suites have. We chose this over Cochran–Mantel–Haenszel, which
  tests a common odds ratio (undefined for a case that goes from 20/20 to 0/20, and not the "points of
  pass rate" users gate on), and over an exact stratified permutation test, which gives a p-value but no
  interval for the tolerance and "unchanged" verdicts. The exact part is per case (``scoring/exact.py``).
- Latency: the ratio of a quantile (the median by default); the two sides are independent, each side's
  standard error on the log scale from a seeded bootstrap that resamples repeats *within* each case (the
  cases stay fixed). Above ``BOOTSTRAP_MAX_N`` samples a side, the order-statistic interval of an unstratified
  sample stands in for it: it is a little wider than the stratified one, never narrower.
- Power: the minimum detectable effect at 80% power, bounded to the metric's range ("cannot detect any
  change" when even the largest possible change would go unseen), and how many repeats per case would
  detect a given change.

Pure functions of numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from evalharness.scoring.compare import POWER, Change
from evalharness.scoring.stats import BOOTSTRAP_MAX_N, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, z_quantile

#: The change the power analysis sizes a run for: how many repeats (or cases) would detect 10 points.
POWER_CHANGE = 0.10
#: Per case, that side's sample values (0/1 for rates, seconds for latencies).
Samples = Mapping[str, Sequence[float]]


def _matched(before: Samples, after: Samples) -> list[str]:
    return sorted(c for c in before if c in after and before[c] and after[c])


def stratified_difference(before: Samples, after: Samples, *, level: float = 0.95,
                          unit: Literal["repeats", "cases"] = "repeats") -> Change:
    """Change of a rate over the cases both sides measured, cases fixed (see the module docstring).

    ``before``/``after`` are the side's overall shares over those cases; ``change`` is the mean over cases of
    each case's change; the interval is Agresti–Caffo's, stratified. ``unit`` is what more of would shrink the
    interval: repeats of each case, or (for a metric scored once per case, like ``exact_match_rate``) cases.
    """
    cases = _matched(before, after)
    if not cases:
        raise ValueError("no case measured on both sides")
    nb = np.array([len(before[c]) for c in cases], dtype=float)
    na = np.array([len(after[c]) for c in cases], dtype=float)
    xb = np.array([math.fsum(before[c]) for c in cases])
    xa = np.array([math.fsum(after[c]) for c in cases])
    change = float(np.mean(xa / na - xb / nb))
    pb, pa = (xb + 1) / (nb + 2), (xa + 1) / (na + 2)
    k = len(cases)
    se = float(math.sqrt(float(np.sum(pa * (1 - pa) / (na + 2) + pb * (1 - pb) / (nb + 2)))) / k)
    centre = float(np.mean(pa - pb))
    half = z_quantile(1 - (1 - level) / 2) * se
    lo, hi = max(-1.0, centre - half), min(1.0, centre + half)
    base = Change("difference", float(xb.sum() / nb.sum()), float(xa.sum() / na.sum()), change,
                  (min(lo, change), max(hi, change)), level, se, None, int(nb.sum() + na.sum()) // 2, k)
    return with_power(base, per=float(np.mean((nb + na) / 2)) if unit == "repeats" else k, unit=unit)


def with_power(change: Change, *, per: float, unit: str) -> Change:
    """Fill ``mde``: the smallest change this run detects with 80% power; when that exceeds the whole range
    of the metric (100 points), None with the reason and how many ``unit`` (now ``per``) would detect a
    change of ``POWER_CHANGE``."""
    assert change.se is not None
    mde = minimum_detectable(change.se, change.level)
    if change.kind == "difference" and mde > 1:
        needed = max(math.ceil(per) + 1, repeats_needed(change.se, per, POWER_CHANGE, change.level))
        return replace(change, mde=None, reason=(
            f"cannot detect any change with this run: about {needed} {unit} would detect a "
            f"{100 * POWER_CHANGE:.0f}-pt change"))
    return replace(change, mde=mde)


def minimum_detectable(se: float, level: float, power: float = POWER) -> float:
    """The smallest true change a two-sided interval of confidence ``level`` excludes zero for, with ``power``
    (normal approximation; for a ratio, on the log scale)."""
    return (z_quantile(1 - (1 - level) / 2) + z_quantile(power)) * se


def repeats_needed(se: float, repeats: float, change: float, level: float, power: float = POWER) -> int:
    """Repeats per case that would detect a true ``change`` with ``power``: the standard error of a mean of
    repeats shrinks as 1/sqrt(repeats), so the run's own ``se`` at ``repeats`` scales to the one needed."""
    needed = repeats * (minimum_detectable(se, level, power) / change) ** 2
    return max(2, math.ceil(needed))


def stratified_quantile_ratio(before: Samples, after: Samples, *, q: float = 0.5, level: float = 0.95,
                              resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> Change:
    """Ratio of the ``q`` quantile of ``after`` to that of ``before`` over the cases both measured, cases fixed.

    Interval: normal on the log scale, the two sides' bootstrap variances added (they are independent).
    """
    cases = _matched(before, after)
    if not cases:
        raise ValueError("no case measured on both sides")
    vb, cb = _flatten(before, cases)
    va, ca = _flatten(after, cases)
    qb, qa = float(np.quantile(vb, q)), float(np.quantile(va, q))
    n = (vb.size + va.size) // 2
    if qb <= 0 or qa <= 0:
        return Change("ratio", qb, qa, math.nan, None, level, None, None, n, len(cases),
                      reason="a ratio needs positive values")
    ratio = qa / qb
    base = Change("ratio", qb, qa, ratio, None, level, None, None, n, len(cases))
    rng = np.random.default_rng(seed)
    sides = [_log_quantile_se(v, c, q, rng, resamples) for v, c in ((vb, cb), (va, ca))]
    if any(s is None for s in sides):
        return replace(base, reason="a latency interval for this suite needs at least 2 repeats of each case "
                                    "on both sides")
    se = math.hypot(*(s for s in sides if s is not None))
    half = z_quantile(1 - (1 - level) / 2) * se
    return replace(base, ci=(ratio * math.exp(-half), ratio * math.exp(half)), se=se,
                   mde=math.exp(minimum_detectable(se, level)) - 1)


def _flatten(samples: Samples, cases: Sequence[str]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """Values sorted within each case (so results do not depend on record order) and each value's case index."""
    values = [np.sort(np.asarray(samples[c], dtype=float)) for c in cases]
    index = np.concatenate([np.full(v.size, i, dtype=np.intp) for i, v in enumerate(values)])
    return np.concatenate(values), index


def _log_quantile_se(values: npt.NDArray[np.float64], case: npt.NDArray[np.intp], q: float,
                     rng: np.random.Generator, resamples: int) -> float | None:
    """Standard error of log(quantile) with the cases fixed; None when a case has a single sample (its
    spread cannot be estimated, and a bootstrap would call it certain)."""
    sizes = np.bincount(case)
    if sizes.min() < 2:
        return None
    if values.size > BOOTSTRAP_MAX_N:
        return _order_statistic_log_se(values, q)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    # Each resample draws, for every case, as many of its own samples as it has, with replacement.
    offsets = np.repeat(starts, sizes)
    draws = (rng.random((resamples, values.size)) * np.repeat(sizes, sizes)).astype(np.intp) + offsets
    quantiles = np.quantile(values[draws], q, axis=1)
    if np.any(quantiles <= 0):
        return None
    return float(np.std(np.log(quantiles), ddof=1))


def _order_statistic_log_se(values: npt.NDArray[np.float64], q: float) -> float:
    """Half the width of the 95% order-statistic interval of the quantile on the log scale, over 1.96."""
    ordered = np.sort(values)
    n = ordered.size
    z = z_quantile(0.975)
    spread = z * math.sqrt(n * q * (1 - q))
    lo = ordered[max(0, math.floor(n * q - spread))]
    hi = ordered[min(n - 1, math.ceil(n * q + spread))]
    if lo <= 0:
        return math.inf
    return float((math.log(hi) - math.log(lo)) / (2 * z))
