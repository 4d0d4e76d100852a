"""pass@k and pass^k: the estimators against brute force over every k-subset, and as cell metrics."""

from __future__ import annotations

import itertools
from fractions import Fraction
from math import comb
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalharness.scoring.metrics import CaseSpec, cell_metrics
from evalharness.scoring.passk import pass_at_k, pass_hat_k, pass_k_metrics
from evalharness.suites import Expect


@st.composite
def samples_and_k(draw: st.DrawFn) -> tuple[list[bool], int]:
    samples = draw(st.lists(st.booleans(), min_size=1, max_size=10))
    return samples, draw(st.integers(1, len(samples)))


@given(samples_and_k())
def test_estimators_equal_the_mean_over_every_k_subset_of_the_samples(case: tuple[list[bool], int]) -> None:
    samples, k = case
    subsets = list(itertools.combinations(samples, k))
    n, c = len(samples), sum(samples)
    assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets), abs=1e-12)
    assert pass_hat_k(n, c, k) == pytest.approx(sum(all(s) for s in subsets) / len(subsets), abs=1e-12)


@given(st.integers(1, 3000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_large_runs_match_exact_binomial_ratios(case: tuple[int, int, int]) -> None:
    # Where C(n, k) is far beyond the float range, the product form still gives the exact ratio.
    n, c, k = case
    assert pass_hat_k(n, c, k) == pytest.approx(float(Fraction(comb(c, k), comb(n, k))), rel=1e-9, abs=1e-300)
    assert pass_at_k(n, c, k) == pytest.approx(1 - float(Fraction(comb(n - c, k), comb(n, k))), rel=1e-9)


def test_hand_computed_values() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3) and pass_hat_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(4, 2, 2) == pytest.approx(5 / 6)  # 1 - C(2,2)/C(4,2)
    assert pass_hat_k(4, 2, 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert pass_at_k(5, 1, 5) == 1.0 and pass_hat_k(5, 4, 5) == 0.0
    with pytest.raises(ValueError, match="between 1 and"):
        pass_at_k(3, 1, 4)


def test_cell_values_average_cases_and_leave_out_cases_with_too_few_samples() -> None:
    m = pass_k_metrics({"s/a": (4, 4), "s/b": (2, 4), "s/c": (1, 2)}, k=4)
    # at k=4 only a and b have 4 samples: pass^4 = (1 + 0) / 2, pass@4 = (1 + 1) / 2
    assert m["pass_hat_k"]["value"] == pytest.approx(0.5) and m["pass_hat_k"]["n"] == 2
    assert m["pass_at_k"]["value"] == pytest.approx(1.0)
    assert m["pass_hat_k"]["k"] == 4 and m["pass_hat_k"]["short_cases"] == 1
    # by_k averages every case with at least k samples: k=1 is the mean per-case pass share
    assert m["pass_hat_k"]["by_k"]["1"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["pass_hat_k"]["by_k"]["2"] == pytest.approx((1 + 1 / 6 + 0) / 3)
    assert list(m["pass_at_k"]["by_k"]) == ["1", "2", "3", "4"]


def test_a_k_no_case_reaches_says_why() -> None:
    m = pass_k_metrics({"s/a": (2, 2)}, k=5)
    assert m["pass_at_k"]["value"] is None and "needs 5 completed repeats" in m["pass_at_k"]["reason"]
    assert pass_k_metrics({}, k=2)["pass_hat_k"] == {"value": None, "k": 2,
                                                   "reason": "no case in this cell has expect checks"}


def _record(case: str, repeat: int, content: str | None) -> dict[str, Any]:
    return {"item_id": f"c/s/{case}/{repeat}", "cell_id": "c", "suite": "s", "case_id": case, "repeat": repeat,
            "params": {}, "ok": content is not None, "error_kind": None if content else "http_error",
            "error": None, "content": content, "usage": None, "cost": None, "attempts": [{}],
            "timings": {"queue_s": 0.0, "ttft_s": 0.1, "ttfc_s": 0.1, "e2e_s": 0.2, "chunk_times": []}}


def test_a_cell_reports_pass_k_at_its_repeats_unless_told_otherwise() -> None:
    cases = {"s/a": CaseSpec(expect=Expect(contains="yes")), "s/b": CaseSpec(expect=Expect(contains="yes"))}
    records = [_record("a", r, "yes") for r in range(3)] + [_record("b", r, t) for r, t in enumerate(["yes", "no",
                                                                                                       "yes"])]
    m = cell_metrics(records, cases, stream=True, currency="X")
    assert m["pass_hat_k"]["k"] == 3 and m["pass_hat_k"]["value"] == pytest.approx(0.5)  # a: all 3 pass; b: not
    assert m["pass_at_k"]["value"] == pytest.approx(1.0)
    at_2 = cell_metrics(records, cases, stream=True, currency="X", pass_k=2)
    assert at_2["pass_hat_k"]["k"] == 2 and at_2["pass_hat_k"]["value"] == pytest.approx((1 + 1 / 3) / 2)
    # A failed request is not a sample (as for pass_rate): b has 2 samples left, too few for k=3.
    records[-1] = _record("b", 2, None)
    m = cell_metrics(records, cases, stream=True, currency="X")
    assert m["pass_hat_k"]["value"] == pytest.approx(1.0) and m["pass_hat_k"]["short_cases"] == 1
