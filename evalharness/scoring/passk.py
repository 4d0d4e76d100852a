"""pass@k and pass^k: the chance that at least one, or all, of k repeats of a case pass.

From a case's n completed samples of which c passed, both are unbiased: the average, over every way of
choosing k of the n samples, of "some passed" or "all passed" (a U-statistic, so n >= k is all they need):

- pass@k = 1 - C(n-c, k) / C(n, k)   (Chen et al. 2021, "Evaluating Large Language Models Trained on Code")
- pass^k = C(c, k) / C(n, k)         (Yao et al. 2024, "τ-bench"; "all k of k repeats pass")

A cell reports their mean over its cases. Binomial coefficients leave the float range long before a large
run does (C(2000, 1000) ≈ 10^600), so each ratio is taken as a product of per-draw ratios, every factor in
[0, 1]; one cumulative product gives every k at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from evalharness.scoring.stats import mean_ci
from evalharness.types import MetricValue

Metric = MetricValue
#: ``by_k`` lists every k from 1 up to this one (and always the k the metric's value is for).
BY_K_MAX = 10


def _all_from(n: int, good: int, k_max: int) -> npt.NDArray[np.float64]:
    """C(good, k) / C(n, k) for k = 1 … k_max: the chance that k samples drawn without replacement from n,
    of which ``good`` are good, are all good."""
    i = np.arange(k_max, dtype=float)
    curve: npt.NDArray[np.float64] = np.cumprod(np.clip(good - i, 0.0, None) / (n - i))
    return curve


def pass_at_k_curve(n: int, c: int, k_max: int) -> npt.NDArray[np.float64]:
    """pass@k for k = 1 … k_max (index k-1) of one case with ``c`` of ``n`` samples passing."""
    _check(n, c, k_max)
    return 1.0 - _all_from(n, n - c, k_max)


def pass_hat_k_curve(n: int, c: int, k_max: int) -> npt.NDArray[np.float64]:
    """pass^k for k = 1 … k_max (index k-1) of one case with ``c`` of ``n`` samples passing."""
    _check(n, c, k_max)
    return _all_from(n, c, k_max)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one case: ``1 - C(n-c, k) / C(n, k)``."""
    return float(pass_at_k_curve(n, c, k)[-1])


def pass_hat_k(n: int, c: int, k: int) -> float:
    """Unbiased pass^k of one case: ``C(c, k) / C(n, k)``."""
    return float(pass_hat_k_curve(n, c, k)[-1])


def _check(n: int, c: int, k_max: int) -> None:
    if not 0 <= c <= n:
        raise ValueError("passing samples must be between 0 and n")
    if not 1 <= k_max <= n:
        raise ValueError(f"k must be between 1 and the number of samples ({n}), not {k_max}")


def pass_k_metrics(counts: Mapping[str, tuple[int, int]], k: int) -> dict[str, Metric]:
    """``pass_at_k`` and ``pass_hat_k`` of a cell from each case's (passed, samples), at ``k``.

    Cases with fewer than k completed samples (failed requests) cannot be estimated at k: they are left out
    and counted in ``short_cases``. ``by_k`` gives the mean at smaller k too, each over the cases with that
    many samples.
    """
    # In case order, not record order: the means then do not depend on the order the records were stored in.
    counts = {case: counts[case] for case in sorted(counts)}
    if not counts:
        reason = "no case in this cell has expect checks"
        return {"pass_at_k": {"value": None, "reason": reason, "k": k},
                "pass_hat_k": {"value": None, "reason": reason, "k": k}}
    most = max(n for _, n in counts.values())
    ks = sorted(set(range(1, min(BY_K_MAX, most) + 1)) | ({k} if k <= most else set()))
    curves = {name: {case: fn(n, c, min(n, ks[-1])) for case, (c, n) in counts.items()}
              for name, fn in (("pass_at_k", pass_at_k_curve), ("pass_hat_k", pass_hat_k_curve))}
    short = sum(n < k for _, n in counts.values())
    out: dict[str, Metric] = {}
    for name, by_case in curves.items():
        by_k = {str(kk): float(np.mean(vals)) for kk in ks
                if (vals := [curve[kk - 1] for curve in by_case.values() if curve.size >= kk])}
        at_k = [float(curve[k - 1]) for curve in by_case.values() if curve.size >= k]
        if not at_k:
            out[name] = {"value": None, "k": k, "by_k": by_k,
                         "reason": f"needs {k} completed repeats of a case (k is pass_k, by default the "
                                   f"repeats); the most any case has is {most}"}
            continue
        out[name] = {**mean_ci(at_k, lower=0.0, upper=1.0), "k": k, "unit": "cases", "short_cases": short,
                     "by_k": by_k}
    return out
