"""Verdicts a CI can trust: a case broken every time is caught, noise is not, on the suites CI runs."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import fisher_exact as scipy_fisher
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from evalharness.baselines import Baselines, baseline_verdicts
from evalharness.cli import main
from evalharness.config import Gate
from evalharness.flow import finish
from evalharness.regress import compare_runs
from evalharness.scoring import exact
from evalharness.scoring.cases import tarone_family
from evalharness.scoring.exact import Counts, fisher_exact, holm, min_attainable_p
from evalharness.scoring.suite import stratified_difference, stratified_quantile_ratio
from tests.unit.verdict_sim import passes, run_data, write

# --- the statistics against reference implementations ------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.data())
def test_fisher_matches_scipy(n1: int, n2: int, data: st.DataObject) -> None:
    x1, x2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    before, after = Counts(x1, n1), Counts(x2, n2)
    assert fisher_exact(before, after) == pytest.approx(scipy_fisher(table).pvalue, rel=1e-9)
    # "less": fewer passes after, which is scipy's "greater" odds ratio of (before, after) rows.
    assert fisher_exact(before, after, "less") == pytest.approx(
        scipy_fisher(table, alternative="greater").pvalue, rel=1e-9)
    assert fisher_exact(before, after, "greater") == pytest.approx(
        scipy_fisher(table, alternative="less").pvalue, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 600), st.integers(1, 600), st.data())
def test_fisher_of_large_tables_matches_scipy_and_its_tables_are_the_scalar_doubles(n1: int, n2: int,
                                                                                    data: st.DataObject) -> None:
    # A large run has hundreds of repeats a case: the hypergeometric terms are computed in numpy at once,
    # and must be the very doubles the one-at-a-time formula gives (summary.json does not change with it).
    x1, x2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    s = x1 + x2
    lo, hi = max(0, s - n2), min(n1, s)
    assert exact._log_pmfs(lo, hi, n1, n2, s) == [exact._log_pmf(a, n1, n2, s) for a in range(lo, hi + 1)]
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    assert fisher_exact(Counts(x1, n1), Counts(x2, n2)) == pytest.approx(scipy_fisher(table).pvalue, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.data())
def test_min_attainable_p_is_the_smallest_p_of_any_table_with_those_margins(n1: int, n2: int,
                                                                            data: st.DataObject) -> None:
    x1, x2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    s = x1 + x2
    every = [fisher_exact(Counts(a, n1), Counts(s - a, n2)) for a in range(max(0, s - n2), min(n1, s) + 1)]
    assert min_attainable_p(Counts(x1, n1), Counts(x2, n2)) == pytest.approx(min(every))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_matches_statsmodels(pvalues: list[float]) -> None:
    assert holm(pvalues) == pytest.approx(list(multipletests(pvalues, method="holm")[1]), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 25), st.integers(1, 25), st.integers(0, 25), st.integers(1, 25))
def test_one_case_interval_is_agresti_caffo(x1: int, n1: int, x2: int, n2: int) -> None:
    x1, x2 = min(x1, n1), min(x2, n2)
    change = stratified_difference({"a": [1.0] * x1 + [0.0] * (n1 - x1)}, {"a": [1.0] * x2 + [0.0] * (n2 - x2)})
    lo, hi = confint_proportions_2indep(x2, n2, x1, n1, method="agresti-caffo", compare="diff")
    assert change.change == pytest.approx(x2 / n2 - x1 / n1)
    assert change.ci is not None
    # Clipped to the range, and widened to hold the raw change (Agresti-Caffo centres on adjusted counts).
    assert change.ci[0] == pytest.approx(min(max(-1.0, lo), change.change))
    assert change.ci[1] == pytest.approx(max(min(1.0, hi), change.change))


def test_stratified_variance_is_the_sum_of_the_cases() -> None:
    before = {"a": [1.0] * 10, "b": [1.0] * 5 + [0.0] * 5}
    after = {"a": [0.0] * 10, "b": [1.0] * 5 + [0.0] * 5}
    change = stratified_difference(before, after)
    ac = [((x + 1) / (n + 2)) * (1 - (x + 1) / (n + 2)) / (n + 2) for x, n in ((10, 10), (0, 10), (5, 10), (5, 10))]
    assert change.change == pytest.approx(-0.5)
    assert change.se == pytest.approx(math.sqrt(sum(ac)) / 2)


def test_tarone_leaves_out_tables_that_cannot_reject() -> None:
    # 30 cases: 29 the same on every repeat (min p = 1) and one that can reach 1e-5.
    assert tarone_family([1.0] * 29 + [1e-5], 0.025) == [29]
    assert tarone_family([0.001, 0.001, 0.2, 1.0], 0.05) == [0, 1]


def test_a_latency_ratio_with_cases_fixed_needs_two_repeats_a_case() -> None:
    one = stratified_quantile_ratio({"a": [0.5]}, {"a": [0.6]})
    assert one.ci is None and "2 repeats" in (one.reason or "")
    rng = np.random.default_rng(0)
    many = stratified_quantile_ratio({c: list(rng.lognormal(0, 0.1, 10)) for c in "ab"},
                                     {c: list(2 * rng.lognormal(0, 0.1, 10)) for c in "ab"})
    assert many.ci is not None and 1.5 < many.ci[0] < many.change < many.ci[1] < 2.6


def test_fisher_by_hand() -> None:
    # 10/10 -> 0/10: only the observed table and its mirror are as unlikely: 2 / C(20, 10).
    assert fisher_exact(Counts(10, 10), Counts(0, 10)) == pytest.approx(2 / math.comb(20, 10))
    assert fisher_exact(Counts(10, 10), Counts(10, 10)) == 1.0


# --- the scenarios of a CI gate --------------------------------------------------------------------------------


def test_a_case_broken_every_time_in_a_two_case_suite_fails_the_comparison(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """2 cases, 10 repeats, 2 seed cells; one case goes from 20/20 passing to 0/20."""
    rng = np.random.default_rng(0)
    base = write(run_data([1.0, 1.0], repeats=10, rng=rng, run_id="base"), tmp_path / "base")
    new = write(run_data([1.0, 0.0], repeats=10, rng=rng, run_id="new"), tmp_path / "new")
    assert main(["compare", str(base), str(new), "--json", str(tmp_path / "cmp.json")]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED case s/c1 pass_rate [seed=unset]: 10/10 → 0/10" in out
    assert "REGRESSED case s/c1 pass_rate [seed=42]: 10/10 → 0/10" in out
    assert "REGRESSED pass_rate [seed=unset]: 100.0% → 50.0%" in out
    assert "s/c0" not in out.split("regressed:")[-1]
    assert out.rstrip().endswith("FAILED: 4 regressions (this suite)")
    result = json.loads((tmp_path / "cmp.json").read_text())
    assert {(c["case"], c["counts"]) for c in result["case_regressions"]} == {("s/c1", "10/10 → 0/10")}
    assert result["analysis"] == "this suite"


def test_the_same_data_asked_about_cases_like_these_cannot_tell(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    base = write(run_data([1.0, 1.0], repeats=10, rng=rng, run_id="base"), tmp_path / "base")
    new = write(run_data([1.0, 0.0], repeats=10, rng=rng, run_id="new"), tmp_path / "new")
    main(["compare", str(base), str(new), "--population", "cases"])
    out = capsys.readouterr().out
    assert "cannot detect any change with this run: 2 cases cannot tell" in out
    assert "min. detectable 3423" not in out
    # The broken case is still named: it regressed on its own repeats whatever the population.
    assert "REGRESSED case s/c1 pass_rate" in out


def test_an_identical_rerun_of_a_deterministic_suite_passes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    run = run_data([1.0, 0.0, 1.0], repeats=10, rng=rng, run_id="a")
    assert main(["compare", str(write(run, tmp_path / "a")), str(write(run, tmp_path / "b"))]) == 0


def test_one_broken_case_of_thirty_is_caught_and_only_it_is_named() -> None:
    rng = np.random.default_rng(7)
    probs = [1.0] * 20 + [0.0] * 5 + [0.6, 0.5, 0.4, 0.7, 0.3]
    broken = [*probs]
    broken[3] = 0.0
    result = compare_runs(run_data(probs, repeats=10, rng=rng, run_id="a"),
                          run_data(broken, repeats=10, rng=rng, run_id="b"))
    assert not result["passed"]
    assert {c["case"] for c in result["case_regressions"]} == {"s/c3"}
    assert {c["case"] for c in result["cases"]} == {"s/c3"}


def test_noise_passes_at_least_95_percent_of_200_reruns() -> None:
    """Reruns of a sampled suite (temperature 1, same model, no change): 10 cases, 10 repeats, 2 cells."""
    noise = [0.1, 0.3, 0.5, 0.5, 0.7, 0.9, 0.6, 0.4, 0.2, 0.8]
    assert passes(noise, noise, repeats=10, trials=200, seed=1) >= 190


def test_a_50_point_drop_of_one_case_with_20_repeats_is_caught_at_least_80_percent_of_the_time() -> None:
    base = [0.9, 0.7, 0.5, 0.6, 0.8]
    new = [0.4, 0.7, 0.5, 0.6, 0.8]
    caught = 200 - passes(base, new, repeats=20, trials=200, seed=3)
    assert caught >= 160


def test_every_combination_of_a_small_table_holds_its_level() -> None:
    """Exactness: over every outcome of 5 vs 5 repeats at p = 0.5, Fisher rejects at most 5% of the mass."""
    prob = 0.0
    for x1, x2 in itertools.product(range(6), repeat=2):
        if fisher_exact(Counts(x1, 5), Counts(x2, 5)) <= 0.05:
            prob += math.comb(5, x1) * math.comb(5, x2) / 2 ** 10
    assert prob <= 0.05


def test_run_baseline_names_the_broken_case_in_every_output(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    base = write(run_data([1.0, 1.0], repeats=10, rng=rng, run_id="base"), tmp_path / "base")
    new = write(run_data([1.0, 0.0], repeats=10, rng=rng, run_id="new"), tmp_path / "new")
    summary = finish(new, complete=True, baseline=str(base)).summary
    assert summary["passed"] is False
    failing = [g for g in summary["gates"] if g.get("case")]
    assert {(g["case"], g["label"], g["case_verdict"]["counts"]) for g in failing} == {
        ("s/c1", "seed=unset", "10/10 → 0/10"), ("s/c1", "seed=42", "10/10 → 0/10")}
    stored = json.loads((new / "summary.json").read_text())
    assert sum(bool(g.get("case")) and not g["passed"] for g in stored["gates"]) == 2
    junit = (new / "junit.xml").read_text()
    assert junit.count('name="pass_rate vs base [seed=42 · case s/c1]"') == 1
    assert junit.count("10/10 → 0/10") >= 2
    assert "seed=unset · case s/c1 | 10/10 → 0/10" in (new / "summary.md").read_text()
    html = (new / "report.html").read_text()
    assert "case s/c1" in html and "10/10 → 0/10" in html


def test_a_gate_can_ask_about_cases_like_these() -> None:
    with pytest.raises(ValueError, match="applies to a baseline gate"):
        Gate.model_validate({"metric": "pass_rate", "min": 0.9, "population": "cases"})
    gate = Gate.model_validate({"metric": "pass_rate", "baseline": "previous", "max_drop": 0.0,
                                "population": "cases"})
    rng = np.random.default_rng(0)
    base = run_data([1.0] * 3, repeats=10, rng=rng, run_id="base")
    new = run_data([1.0, 1.0, 0.0], repeats=10, rng=rng, run_id="new")
    verdicts = baseline_verdicts([gate], new, Baselines(by_spec={"previous": base}))
    cell_level = [v for v in verdicts if not v.get("case")]
    assert {v["analysis"] for v in cell_level} == {"cases like these"}
    assert all(v["verdict"] == "inconclusive" and "3 cases cannot tell" in v["reason"] for v in cell_level)
    assert {v["case"] for v in verdicts if v.get("case")} == {"s/c2"}


def test_a_case_that_dropped_by_less_than_the_tolerance_does_not_fail() -> None:
    rng = np.random.default_rng(0)
    base = run_data([1.0] * 3, repeats=40, rng=rng, run_id="base")
    new = run_data([1.0, 1.0, 0.7], repeats=40, rng=rng, run_id="new")
    strict = compare_runs(base, new)
    assert {c["case"] for c in strict["case_regressions"]} == {"s/c2"}
    drop = 1 - min(c["after"]["count"] / c["after"]["n"] for c in strict["case_regressions"])
    lenient = compare_runs(base, new, rate_tolerance=drop + 0.01)
    assert not lenient["case_regressions"]


def test_the_cells_of_one_run_name_the_cases_that_differ_between_them(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    run = run_data([1.0, 1.0, 0.5], repeats=10, rng=rng, run_id="one", grid={"temperature": [0, 1]})
    hot = next(c["cell_id"] for c in run.cells if c["params"]["temperature"] == 1)
    for r in run.records:
        if r["cell_id"] == hot and r["case_id"] == "c1":
            r["content"] = "no"  # the case breaks at temperature 1 only
    summary = finish(write(run, tmp_path / "one"), complete=True).summary
    [pair] = summary["comparisons"]
    assert [(c["case"], c["metric"], c["counts"], c["finding"]) for c in pair["cases"]] == [
        ("s/c1", "pass_rate", "10/10 → 0/10", "worse")]
    assert "s/c1 pass_rate 10/10 → 0/10 (worse)" in (tmp_path / "one" / "report.html").read_text()
