"""Comparison units kept compactly (``paired.Column``): they read as the dict of (case, repeat) → score they
replace, in the same order, so every comparison computed from them is unchanged."""

from __future__ import annotations

import math
import pickle
from array import array
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalharness.scoring.metrics import CaseSpec
from evalharness.scoring.paired import PER_CASE, Column, Keys, by_case, cell_units, pair_units
from evalharness.types import Record

#: Keys as a cell's are (sorted: each case's together) or in any order (each case's apart).
keys_and_values = st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 300),
                                     st.one_of(st.just(math.nan), st.floats(0, 5))), max_size=40,
                           unique_by=lambda t: (t[0], t[1]))


@settings(max_examples=200, deadline=None)
@given(keys_and_values, st.booleans())
def test_a_column_reads_as_the_dict_it_replaces(rows: list[tuple[str, int, float]], sort: bool) -> None:
    rows = sorted(rows) if sort else rows
    column = Column(Keys([(c, r) for c, r, _ in rows]), array("d", [v for _, _, v in rows]))
    expected = {(c, r): v for c, r, v in rows if v == v}  # NaN: no unit
    assert list(column.items()) == list(expected.items())
    assert list(column) == list(expected)
    assert len(column) == len(expected) and bool(column) == bool(expected)
    assert by_case(column) == by_case(expected)
    assert list(by_case(column)) == list(by_case(expected))  # the cases in the same order too
    assert pickle.loads(pickle.dumps(column)).as_dict() == expected
    other = {key: value + 1 for key, value in list(expected.items())[::2]}
    assert pair_units(other, column) == pair_units(other, expected)
    assert pair_units(column, other) == pair_units(expected, other)
    for key, value in expected.items():
        assert column[key] == value
    with pytest.raises(KeyError):
        column[("z", 0)]


def _record(case: str, repeat: int, *, ok: bool = True, content: str = "Paris", e2e: float = 1.0) -> Record:
    record: dict[str, Any] = {
        "item_id": f"c/s/{case}/{repeat}", "cell_id": "c", "suite": "s", "case_id": case, "repeat": repeat,
        "ok": ok, "content": content if ok else None, "error_kind": None if ok else "http_500", "params": {},
        "timings": {"e2e_s": e2e, "ttft_s": e2e / 2} if ok else {}, "usage": {"completion_tokens": 4}}
    return record  # type: ignore[return-value]


def test_a_cells_units_are_its_records_scores_by_case_and_repeat() -> None:
    cases = {"s/b": CaseSpec.from_manifest({"expect": {"contains": "Paris"}}),
             "s/a": CaseSpec.from_manifest({"expect": {"contains": "Rome"}})}
    records = [_record("b", 1, e2e=2.0), _record("a", 0, content="Rome"), _record("b", 0, ok=False),
               _record("a", 1, content="Roma", e2e=3.0)]
    units = cell_units(records, cases)
    assert dict(units["pass_rate"].items()) == {
        ("s/a", 0): 1.0, ("s/a", 1): 0.0, ("s/b", 1): 1.0}  # a failed request is no sample
    assert list(units["error_rate"].items()) == [(("s/a", 0), 0.0), (("s/a", 1), 0.0), (("s/b", 0), 1.0),
                                                 (("s/b", 1), 0.0)]  # in (case, repeat) order
    assert dict(units["e2e_s"].items()) == {("s/a", 0): 1.0, ("s/a", 1): 3.0, ("s/b", 1): 2.0}
    assert dict(units["exact_match_rate"].items()) == {("s/a", PER_CASE): 0.0}  # b has one completed repeat
    # A key stored twice (not expected) keeps the later record's scores, as a dict filled in order would.
    twice = cell_units([*records, _record("a", 1, content="Rome", e2e=5.0)], cases)
    assert twice["pass_rate"].as_dict()[("s/a", 1)] == 1.0
    assert twice["e2e_s"].as_dict()[("s/a", 1)] == 5.0
