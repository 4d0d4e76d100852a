"""The plan: grid cells × cases × repeats = work items with stable ids, and a token/cost estimate."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evalharness.config import LoadedConfig
from evalharness.errors import ConfigError
from evalharness.fanout import AXIS, grid_point, is_multi, shape_params
from evalharness.params import merge_params
from evalharness.thinking import apply_thinking

if TYPE_CHECKING:
    from evalharness.load.plan import Level

PLAN_SEED = 20261127


def canonical(obj: Any) -> str:
    """Canonical JSON: the same params always give the same text (and so the same ids)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cell_label(params: dict[str, Any]) -> str:
    """A short human label for a cell, e.g. ``temperature=0 seed=42 response_format=json_object``."""
    if not params:
        return "default"
    parts = []
    for key, value in params.items():
        if value is None:
            text = "unset"
        elif isinstance(value, dict) and set(value) <= {"type", "json_schema", "schema"} and "type" in value:
            text = str(value["type"])
        elif isinstance(value, (dict, list)):
            text = canonical(value)
        else:
            text = str(value)
        parts.append(f"{key}={text}")
    return " ".join(parts)


@dataclass(frozen=True)
class Cell:
    """One point of the grid. ``params`` holds the axis values, ``None`` meaning "not sent"."""

    cell_id: str
    params: dict[str, Any]
    label: str


@dataclass(frozen=True)
class WorkItem:
    """One request to make: a case in a cell, one repeat."""

    item_id: str
    cell_id: str
    suite: str
    case_id: str
    repeat: int
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    #: The name of the target the item goes to.
    target: str = ""

    @property
    def case_key(self) -> str:
        return f"{self.suite}/{self.case_id}"


@dataclass(frozen=True)
class Estimate:
    requests: int
    prompt_tokens: int
    completion_tokens_max: int | None
    cost_min: float
    cost_max: float | None


@dataclass(frozen=True)
class Plan:
    cells: list[Cell]
    items: list[WorkItem]
    repeats: int
    cases: int
    #: A run with ``load:``: how each level cell's items are sent (load/plan.py); empty otherwise.
    levels: tuple[Level, ...] = ()

    def estimate(self, input_per_1k: float, output_per_1k: float) -> Estimate:
        """Token and cost range: prompts from text length (~4 chars a token), completions up to max_tokens."""
        prompt = sum(_approx_tokens(item.messages) for item in self.items)
        caps = [completion_cap(item.params) for item in self.items]
        completion_max = None if any(c is None for c in caps) else sum(int(c) for c in caps if c is not None)
        cost_min = prompt / 1000 * input_per_1k
        cost_max = None if completion_max is None else cost_min + completion_max / 1000 * output_per_1k
        return Estimate(len(self.items), prompt, completion_max, cost_min, cost_max)


def completion_cap(params: dict[str, Any]) -> int | None:
    """The most completion tokens a request may produce: the smaller of max_tokens and max_completion_tokens."""
    caps = [int(params[k]) for k in ("max_tokens", "max_completion_tokens") if params.get(k) is not None]
    return min(caps) if caps else None


def _approx_tokens(messages: list[dict[str, Any]]) -> int:
    chars = sum(len(str(m.get("content", ""))) for m in messages)
    return chars // 4 + 4 * len(messages)


def make_cells(grid: dict[str, list[Any]]) -> list[Cell]:
    """The cartesian product of the grid axes, in the order written."""
    axes = list(grid)
    cells = []
    for values in itertools.product(*(grid[a] for a in axes)):
        params = dict(zip(axes, values, strict=True))
        digest = hashlib.sha1(canonical(params).encode()).hexdigest()[:8]
        cells.append(Cell(cell_id=f"c-{digest}", params=params, label=cell_label(params)))
    return cells


def make_plan(loaded: LoadedConfig) -> Plan:
    """Every work item of a config, in a seeded shuffled order, repeat by repeat.

    Repeat-major order keeps an early stop balanced across cells. Within a repeat the order is shuffled
    (with a fixed seed, so a resumed run plans the same items): requests of one cell do not all meet the
    server in the same state, and a server whose unseeded sampling depends on the previous request
    (llama.cpp's does) shows its real variation.

    ``thinking`` is resolved here, per the target's ``thinking.via``: the items carry the messages and
    params to send, and their params keep the ``thinking`` label for the record. Every grid point is a
    cell on every target the run sends to (``fanout.py``), and each target's items are shaped its way.
    """
    cfg = loaded.config
    multi = is_multi(cfg)
    cells: list[Cell] = []
    defaults = cfg.defaults.model_dump(exclude_unset=True)
    items: list[WorkItem] = []
    n_cases = sum(len(s.cases) for s in loaded.suites)
    # What to send for each cell and case, resolved once: the repeats share it.
    requests: list[tuple[Cell, str, str, str, list[dict[str, Any]], dict[str, Any]]] = []
    for target in loaded.active_targets():
        via, where = target.thinking.via, target.thinking.message
        own = make_cells({AXIS: [target.label], **cfg.grid}) if multi else make_cells(cfg.grid)
        cells += own
        for cell in own:
            for suite in loaded.suites:
                for case in suite.cases:
                    params = merge_params(defaults, case.sent_params(), grid_point(cell.params))
                    try:
                        messages, params = apply_thinking(suite.messages[case.id], params, via=via, message=where)
                    except ValueError as exc:
                        raise ConfigError(f"case {case.id!r}: {exc}", file=str(suite.path), key="thinking",
                                          hint="target.thinking.via soft_switch appends /think or /no_think "
                                               "to a message of target.thinking.message's role") from exc
                    requests.append((cell, target.label, suite.name, case.id, messages,
                                     shape_params(params, target)))
    if cfg.load is not None:
        from evalharness.load.plan import expand  # the load package builds on this module

        cells, items, levels = expand(cfg.load, loaded.folder, cells, requests, cfg.repeats)
        return Plan(cells=cells, items=items, repeats=max((i.repeat + 1 for i in items), default=cfg.repeats),
                    cases=n_cases, levels=tuple(levels))
    rng = random.Random(PLAN_SEED)
    for repeat in range(cfg.repeats):
        block = [WorkItem(item_id=f"{cell.cell_id}/{suite_name}/{case_id}/{repeat}", cell_id=cell.cell_id,
                          suite=suite_name, case_id=case_id, repeat=repeat, messages=messages, params=params,
                          target=name)
                 for cell, name, suite_name, case_id, messages, params in requests]
        rng.shuffle(block)
        items.extend(block)
    return Plan(cells=cells, items=items, repeats=cfg.repeats, cases=n_cases)
