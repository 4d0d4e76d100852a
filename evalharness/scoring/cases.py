"""Per-case verdicts of a comparison: which cases changed, each judged on its own repeats.

Every case of every matched cell is tested for every per-sample rate with Fisher's exact test
(``scoring/exact.py``). Together they form one family: Holm's procedure keeps the chance of naming any case
that did not change at ``alpha``. Only tests that could reject are counted in the family (Tarone 1990): the
smallest number K such that at most K tables can reach ``alpha / K`` at all, given each table's margins. A
case that passed every repeat on both sides has one possible table, cannot reject, and so does not dilute
the family; that is what lets one broken case among 30 stand out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evalharness.scoring import catalogue
from evalharness.scoring.exact import Counts, fisher_exact, holm, min_attainable_p
from evalharness.scoring.paired import COMPARABLE, Units, by_case
from evalharness.types import CaseVerdict

#: The comparable rates scored once per sample: a case has a count of passes over its repeats.
CASE_TESTED = catalogue.Names(catalogue.case_tested)
CASE_TEST_NAME = "Fisher's exact test per case, Holm-adjusted"


@dataclass(frozen=True)
class CaseTest:
    """One case's test on one metric in one cell."""

    metric: str
    case: str
    cell: str
    cell_id: str
    before: Counts
    after: Counts
    p: float
    min_p: float
    against: str = ""  # the baseline run, when one comparison judges against several

    @property
    def tested(self) -> bool:
        """Whether the table can reject at all (a case the same on every repeat of both sides cannot)."""
        return self.min_p < 1.0


def _counts(units: Units) -> dict[str, Counts]:
    return {case: Counts(round(sum(values)), len(values)) for case, values in by_case(units).items()}


def case_tests(metric: str, before: Units | None, after: Units | None, *, cell: str, cell_id: str,
               against: str = "") -> list[CaseTest]:
    """Fisher's exact test for each case that both sides measured (none for a metric scored per case)."""
    if metric not in CASE_TESTED or not before or not after:
        return []
    b, a = _counts(before), _counts(after)
    out = []
    for case in sorted(set(b) & set(a)):
        cb, ca = b[case], a[case]
        total = cb.passed + ca.passed
        if total in (0, cb.n + ca.n):  # one possible table: p = 1, skip the arithmetic
            out.append(CaseTest(metric, case, cell, cell_id, cb, ca, 1.0, 1.0, against))
            continue
        out.append(CaseTest(metric, case, cell, cell_id, cb, ca, fisher_exact(cb, ca), min_attainable_p(cb, ca),
                            against))
    return out


def tarone_family(min_ps: Sequence[float], alpha: float) -> list[int]:
    """Indices of the tests that count in the family: for the smallest K with at most K tests whose minimum
    attainable p-value is at most alpha / K, those tests."""
    if alpha <= 0:
        return []
    for k in range(1, len(min_ps) + 1):
        chosen = [i for i, m in enumerate(min_ps) if m <= alpha / k]
        if len(chosen) <= k:
            return chosen
    return []


def judge_cases(tests: Sequence[CaseTest], alpha: float) -> list[CaseVerdict]:
    """The cases that changed (``regressed`` or ``improved``), worst first, each with its counts, p-value and
    Holm-adjusted p-value; the family is every test that could reject (see the module docstring)."""
    family = tarone_family([t.min_p for t in tests], alpha)
    adjusted = holm([tests[i].p for i in family])
    found: list[CaseVerdict] = []
    for i, p_adj in zip(family, adjusted, strict=True):
        t = tests[i]
        if p_adj > alpha:
            continue
        worse = (t.after.share < t.before.share) == COMPARABLE[t.metric].higher_is_better
        found.append({
            "cell": t.cell, "cell_id": t.cell_id, "metric": t.metric, "case": t.case, "against": t.against,
            "before": {"count": t.before.passed, "n": t.before.n},
            "after": {"count": t.after.passed, "n": t.after.n},
            "counts": f"{t.before} → {t.after}", "p": t.p, "p_adjusted": p_adj,
            "verdict": "regressed" if worse else "improved",
            "analysis": "this suite", "test": CASE_TEST_NAME, "family": len(family), "level": 1 - alpha})
    return sorted(found, key=lambda c: (c["verdict"] != "regressed", c["p_adjusted"], c["cell"], c["case"]))


def beyond(case: CaseVerdict, tolerance: float) -> bool:
    """Whether a case's observed change of share is larger than a gate's tolerance (in rate points): a case
    that changed significantly but by less than the gate allows does not fail it."""
    before = case["before"]["count"] / case["before"]["n"]
    after = case["after"]["count"] / case["after"]["n"]
    return bool(abs(after - before) > tolerance)
