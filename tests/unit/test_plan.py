"""The plan: grid cells, what each request sends, stable ids, and the dry run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from evalharness.cli import main
from evalharness.config import load_config
from evalharness.plan import make_plan

CONFIG = """\
name: p
target: {base_url: http://127.0.0.1:9/v1, model: m}
pricing: {currency: CNY, input_per_1k: 1.0, output_per_1k: 2.0}
suites: [suite.yaml]
defaults: {max_tokens: 10, seed: 7}
grid:
  temperature: [0, 1]
  seed: [null, 42]
repeats: 3
"""


def test_cells_are_the_cartesian_product_and_null_means_not_sent(write_config: Callable[..., Path]) -> None:
    plan = make_plan(load_config(write_config(CONFIG)))
    assert len(plan.cells) == 4
    assert len(plan.items) == 4 * 2 * 3
    unseeded = [i for i in plan.items if plan.cells[0].cell_id == i.cell_id]
    # grid seed null removes the default seed: the request carries no seed at all
    assert all("seed" not in i.params for i in unseeded)
    seeded = [i for i in plan.items if i.cell_id == plan.cells[1].cell_id]
    assert all(i.params["seed"] == 42 and i.params["max_tokens"] == 10 for i in seeded)


def test_ids_are_stable_and_unique(write_config: Callable[..., Path]) -> None:
    first = make_plan(load_config(write_config(CONFIG)))
    second = make_plan(load_config(write_config(CONFIG)))
    assert [i.item_id for i in first.items] == [i.item_id for i in second.items]
    assert len({i.item_id for i in first.items}) == len(first.items)


def test_items_are_grouped_by_repeat(write_config: Callable[..., Path]) -> None:
    plan = make_plan(load_config(write_config(CONFIG)))
    repeats = [i.repeat for i in plan.items]
    assert repeats == sorted(repeats)


def test_dry_run_prints_counts_and_cost_and_calls_nothing(write_config: Callable[..., Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    # The target is a closed port: a dry run must not try to reach it.
    assert main(["run", str(write_config(CONFIG)), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 cells × 2 cases × 3 repeats = 24 requests" in out
    assert "completion tokens 0 – 240" in out
    assert "CNY" in out
    assert not Path("reports").exists()
