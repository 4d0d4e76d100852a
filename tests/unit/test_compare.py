"""Paired comparisons: hand-computed examples, and properties of the intervals and verdicts."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalharness.scoring import compare
from evalharness.scoring.compare import (
    Change,
    Pair,
    clustered_se,
    minimum_detectable_effect,
    quantile_ratio,
    rate_difference,
    verdict,
)
from evalharness.scoring.stats import t_cdf, t_quantile


def test_t_quantiles_match_the_tables() -> None:
    # Student's t, two-sided 95%: the values every statistics textbook prints.
    for df, want in ((1, 12.706), (2, 4.303), (5, 2.571), (10, 2.228), (30, 2.042), (10_000, 1.960)):
        assert t_quantile(0.975, df) == pytest.approx(want, abs=1e-3)
    assert t_quantile(0.025, 4) == pytest.approx(-2.776, abs=1e-3)
    assert t_cdf(0.0, 7) == pytest.approx(0.5)


def test_clustered_se_by_hand() -> None:
    # One value per cluster: the usual sd / sqrt(n) = 1.29099 / 2.
    assert clustered_se([1, 2, 3, 4], ["a", "b", "c", "d"]) == pytest.approx(0.645497, abs=1e-6)
    # Two clusters of two: mean 2.5, cluster sums of deviations -2 and +2;
    # sqrt(C/(C-1) * (4 + 4)) / n = sqrt(2 * 8) / 4 = 1.
    assert clustered_se([1, 2, 3, 4], ["a", "a", "b", "b"]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        clustered_se([1, 2], ["a", "a"])


def test_rate_difference_by_hand() -> None:
    # 6 cases, one sample each: 4 went from pass to fail, 2 stayed passing. Change = -4/6.
    pairs: list[Pair] = [(f"c{i}", 1.0, 0.0 if i < 4 else 1.0) for i in range(6)]
    change = rate_difference(pairs)
    assert change.before == 1.0 and change.after == pytest.approx(2 / 6)
    assert change.change == pytest.approx(-2 / 3)
    # SE as if a 7th case had not changed: values (-1 x4, 0 x3), mean -4/7, squared deviations
    # 4 * (3/7)^2 + 3 * (4/7)^2 = 12/7; sqrt(7/6 * 12/7) / 7 = sqrt(2) / 7.
    assert change.se == pytest.approx(math.sqrt(2) / 7)
    half = 2.570582 * math.sqrt(2) / 7  # t quantile 0.975 with 6 - 1 degrees of freedom
    assert change.ci == pytest.approx((-1.0, -2 / 3 + half))  # clipped at -1, a rate cannot drop more
    assert change.mde == pytest.approx((2.570582 + 0.841621) * math.sqrt(2) / 7, rel=1e-5)
    assert change.n == 6 and change.cases == 6


def test_repeats_of_a_case_are_one_cluster() -> None:
    # Case a: both repeats lost; case b: both stayed. 4 samples but only 2 cases of evidence.
    clustered = rate_difference([("a", 1, 0), ("a", 1, 0), ("b", 1, 1), ("b", 1, 1)])
    independent = rate_difference([("a", 1, 0), ("a2", 1, 0), ("b", 1, 1), ("b2", 1, 1)])
    assert clustered.change == independent.change == -0.5
    assert clustered.se is not None and independent.se is not None
    assert clustered.se > independent.se
    assert clustered.ci is not None and independent.ci is not None
    assert clustered.ci[1] - clustered.ci[0] > independent.ci[1] - independent.ci[0]


def test_every_case_flipping_in_a_tiny_suite_is_not_a_certain_regression() -> None:
    # Three cases all failing now: the plain SE would be 0 and claim certainty from three cases.
    change = rate_difference([(c, 1.0, 0.0) for c in "abc"])
    assert change.ci is not None and change.ci[1] > 0
    assert verdict(change, higher_is_better=True, tolerance=0, margin=0.05) == "inconclusive"
    # Eight cases all failing is evidence.
    change = rate_difference([(f"c{i}", 1.0, 0.0) for i in range(8)])
    assert verdict(change, higher_is_better=True, tolerance=0, margin=0.05) == "regressed"


def test_one_case_cannot_give_an_interval() -> None:
    change = rate_difference([("a", 1, 0), ("a", 1, 1), ("a", 1, 0)])
    assert change.ci is None and change.reason and "2 cases" in change.reason
    assert verdict(change, higher_is_better=True, tolerance=0, margin=0.05) == "inconclusive"


def test_median_ratio_by_hand() -> None:
    # Every sample exactly twice as slow: every bootstrap resample says x2 too, so the interval is a point.
    pairs: list[Pair] = [(f"c{i}", 0.1 * (i + 1), 0.2 * (i + 1)) for i in range(6)]
    change = quantile_ratio(pairs)
    assert change.before == pytest.approx(0.35) and change.after == pytest.approx(0.7)
    assert change.change == pytest.approx(2.0)
    assert change.ci == pytest.approx((2.0, 2.0))
    assert verdict(change, higher_is_better=False, tolerance=0.5, margin=0.1) == "regressed"
    faster = quantile_ratio([(c, after, before) for c, before, after in pairs])
    assert faster.change == pytest.approx(0.5)
    assert verdict(faster, higher_is_better=False, tolerance=0.5, margin=0.1) == "improved"


def test_median_ratio_needs_five_cases_for_a_bootstrap() -> None:
    change = quantile_ratio([(c, 0.1, 0.3) for c in "abcd"])
    assert change.change == pytest.approx(3.0) and change.ci is None
    assert verdict(change, higher_is_better=False, tolerance=0.5, margin=0.1) == "inconclusive"


def test_median_ratio_is_seeded() -> None:
    rng = random.Random(7)
    pairs: list[Pair] = [(f"c{i % 9}", rng.uniform(0.1, 1), rng.uniform(0.1, 1)) for i in range(40)]
    assert quantile_ratio(pairs) == quantile_ratio(pairs)
    assert quantile_ratio(pairs, seed=1).ci != quantile_ratio(pairs, seed=2).ci


def change(lo: float, hi: float, kind: str = "difference") -> Change:
    mid = (lo + hi) / 2
    return Change(kind, 0.5, 0.5 + mid, mid, (lo, hi), 0.95, 0.1, 0.2, 20, 10)  # type: ignore[arg-type]


@pytest.mark.parametrize(("lo", "hi", "tolerance", "want"), [
    (-0.30, -0.10, 0.0, "regressed"),      # the whole interval is a drop
    (-0.30, -0.10, 0.05, "regressed"),     # ... bigger than the tolerance
    (-0.30, -0.02, 0.05, "inconclusive"),  # a drop, but maybe within the tolerance
    (-0.08, -0.02, 0.10, "unchanged"),     # a drop, surely within the tolerance
    (-0.04, +0.03, 0.0, "unchanged"),      # no drop beyond 5 points (the resolution) is plausible
    (-0.30, +0.20, 0.0, "inconclusive"),   # too wide to tell
    (+0.02, +0.20, 0.0, "improved"),
    (0.0, 0.0, 0.0, "unchanged"),          # identical data
])
def test_verdict_judges_the_interval_not_the_estimate(lo: float, hi: float, tolerance: float, want: str) -> None:
    assert verdict(change(lo, hi), higher_is_better=True, tolerance=tolerance, margin=0.05) == want


def test_verdict_when_lower_is_better() -> None:
    # error_rate: a rise is bad.
    assert verdict(change(0.1, 0.3), higher_is_better=False, tolerance=0.0, margin=0.05) == "regressed"
    assert verdict(change(-0.3, -0.1), higher_is_better=False, tolerance=0.0, margin=0.05) == "improved"
    # latency ratio: x1.6-x2.0 is beyond 50% slower; x1.1-x1.3 is not, and x1.3 > 1 + margin leaves it open.
    assert verdict(change(1.6, 2.0, "ratio"), higher_is_better=False, tolerance=0.5, margin=0.1) == "regressed"
    assert verdict(change(1.1, 1.3, "ratio"), higher_is_better=False, tolerance=0.5, margin=0.1) == "unchanged"
    assert verdict(change(1.1, 1.3, "ratio"), higher_is_better=False, tolerance=0.0, margin=0.1) == "regressed"
    assert verdict(change(0.9, 1.3, "ratio"), higher_is_better=False, tolerance=0.0, margin=0.1) == "inconclusive"


def test_mde_shrinks_with_the_run_size() -> None:
    rng = random.Random(3)
    small = rate_difference([(f"c{i}", float(rng.random() < 0.7), float(rng.random() < 0.7)) for i in range(20)])
    large = rate_difference([(f"c{i}", float(rng.random() < 0.7), float(rng.random() < 0.7)) for i in range(2000)])
    assert small.mde is not None and large.mde is not None
    assert large.mde < small.mde / 5
    assert minimum_detectable_effect(0.1, None) == pytest.approx((1.959964 + 0.841621) * 0.1, rel=1e-6)


# --- properties -------------------------------------------------------------------------------------------------

binary_pairs = st.lists(st.tuples(st.sampled_from("abcdefgh"), st.sampled_from([0.0, 1.0]),
                                  st.sampled_from([0.0, 1.0])), min_size=1, max_size=60)
latency_pairs = st.lists(st.tuples(st.sampled_from("abcdefgh"), st.floats(0.01, 10), st.floats(0.01, 10)),
                         min_size=1, max_size=60)


@given(binary_pairs, st.sampled_from([0.9, 0.95, 0.999]))
def test_rate_interval_contains_the_estimate_and_stays_in_range(pairs: list[Pair], level: float) -> None:
    c = rate_difference(pairs, level=level)
    assert 0.0 <= c.before <= 1.0 and 0.0 <= c.after <= 1.0
    assert c.change == pytest.approx(c.after - c.before)
    if c.ci is not None:
        assert -1.0 <= c.ci[0] <= c.change <= c.ci[1] <= 1.0


@given(binary_pairs)
def test_wider_confidence_gives_a_wider_interval(pairs: list[Pair]) -> None:
    a, b = rate_difference(pairs, level=0.95), rate_difference(pairs, level=0.99)
    if a.ci is not None and b.ci is not None:
        assert b.ci[0] <= a.ci[0] and a.ci[1] <= b.ci[1]


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.floats(0, 1)), min_size=1, max_size=60))
def test_identical_data_is_no_change_with_a_zero_width_interval(rows: list[tuple[str, float]]) -> None:
    c = rate_difference([(case, score, score) for case, score in rows])
    assert c.change == 0.0 and c.ci == (0.0, 0.0)
    assert verdict(c, higher_is_better=True, tolerance=0.0, margin=0.05) == "unchanged"


@given(binary_pairs, st.randoms())
def test_comparisons_do_not_depend_on_record_order(pairs: list[Pair], rnd: random.Random) -> None:
    shuffled = pairs[:]
    rnd.shuffle(shuffled)
    assert rate_difference(pairs) == rate_difference(shuffled)


@given(latency_pairs, st.randoms())
def test_ratio_interval_contains_the_estimate_and_ignores_order(pairs: list[Pair], rnd: random.Random) -> None:
    shuffled = pairs[:]
    rnd.shuffle(shuffled)
    c = quantile_ratio(pairs, resamples=200)
    assert c == quantile_ratio(shuffled, resamples=200)
    assert c.change > 0
    if c.ci is not None:
        assert 0 < c.ci[0] <= c.change <= c.ci[1]


@given(binary_pairs)
def test_a_regression_seen_backwards_is_an_improvement(pairs: list[Pair]) -> None:
    forward = rate_difference(pairs)
    backward = rate_difference([(case, after, before) for case, before, after in pairs])
    judged = {v: verdict(forward, higher_is_better=True, tolerance=0.0, margin=0.05) == v
              for v in ("regressed", "improved")}
    back = verdict(backward, higher_is_better=True, tolerance=0.0, margin=0.05)
    assert not judged["regressed"] or back == "improved"
    assert not judged["improved"] or back == "regressed"


@given(st.floats(0.51, 0.9999), st.integers(1, 200))
def test_t_quantile_inverts_the_distribution_function(p: float, df: int) -> None:
    assert t_cdf(t_quantile(p, df), df) == pytest.approx(p, abs=1e-9)


def test_gains_and_losses_within_cases_are_still_noise() -> None:
    # Each case: one repeat lost, one gained. Every case's total is unchanged, so the clustered spread is 0;
    # the samples did change, so the interval must not collapse to "certainly no change".
    pairs: list[Pair] = [(c, b, a) for c in "abcd" for b, a in ((1.0, 0.0), (0.0, 1.0), (0.0, 0.0))]
    change = rate_difference(pairs)
    assert change.change == 0.0
    assert change.ci is not None and change.ci[0] < -0.1 and change.ci[1] > 0.1
    assert verdict(change, higher_is_better=True, tolerance=0.0, margin=0.05) == "inconclusive"


def _weighted_quantiles_by_cumsum(values: np.ndarray, cluster: np.ndarray, counts: np.ndarray, q: float
                                  ) -> np.ndarray:
    # The definition: every value weighted by its case's draw count, cumulated in sorted order.
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    cum = np.cumsum(counts[:, cluster[order]], axis=1)
    target = q * cum[:, -1:]
    lower = np.minimum((cum < target).sum(axis=1), ordered.size - 1)
    upper = np.minimum((cum <= target).sum(axis=1), ordered.size - 1)
    result: np.ndarray = (ordered[lower] + ordered[upper]) / 2
    return result


@pytest.mark.parametrize("table", [True, False])
@given(seed=st.integers(0, 2**32 - 1), q=st.sampled_from([0.0, 0.37, 0.5, 0.9, 0.95, 0.99, 1.0]))
def test_bootstrap_quantiles_by_bisection_equal_the_cumulative_definition(table: bool, seed: int, q: float) -> None:
    # Ties and uneven cases included: the ranks must be exactly those of the cumulative sum, so a report's
    # latency intervals do not change with the faster method (or with which lookup a run's size picks).
    rng = np.random.default_rng(seed)
    n_cases = int(rng.integers(1, 40))
    cluster = rng.integers(0, n_cases, int(rng.integers(n_cases, 300)))
    _, cluster = np.unique(cluster, return_inverse=True)
    n_cases = int(cluster.max()) + 1
    values = np.round(rng.exponential(1.0, cluster.size), int(rng.integers(0, 3)))
    counts = rng.multinomial(n_cases, np.full(n_cases, 1 / n_cases), size=int(rng.integers(1, 60)))
    found = compare._weighted_quantiles(values, cluster, counts, q, table_max=None if table else 0)
    assert np.array_equal(found,
                          _weighted_quantiles_by_cumsum(values, cluster, counts, q))
