"""The load levels as cells: each grid point × each level (``rate: R`` or ``concurrency: C`` in its params),
and each level's items in a seeded order, with the offsets an open loop sends them at."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalharness.load.options import LoadOptions
from evalharness.load.schedule import Replay, offsets, read_replay
from evalharness.plan import Cell, WorkItem, canonical, cell_label

#: (grid cell, target, suite, case id, messages, params) for each case of each grid point (and target), as
#: plan.make_plan resolves them.
Request = tuple[Cell, str, str, str, list[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Level:
    """One load level of one grid point: its cell, and how its items are sent."""

    cell_id: str
    grid_cell_id: str
    key: str  # "rate" or "concurrency"
    value: float
    #: When each item is due, from the level's start (open loop); None: closed loop.
    offsets: tuple[float, ...] | None
    #: Open loop: the first ``warmup`` items are warm-up; closed loop: those sent in the first ``warmup_s``.
    warmup: int
    warmup_s: float
    item_ids: tuple[str, ...]


def level_values(load: LoadOptions, replay: Replay | None) -> list[float]:
    """The levels of each grid point, ascending (a capacity search reads them in order)."""
    if load.arrival == "closed":
        return sorted(float(c) for c in load.concurrency or ())
    if replay is not None and not load.rate:
        return [round(replay.rate, 3)]
    return load.rates()


def _level_value(key: str, value: float) -> float | int:
    return int(value) if key == "concurrency" or float(value).is_integer() else value


def expand(load: LoadOptions, folder: Path, grid_cells: list[Cell], requests: list[Request], repeats: int
           ) -> tuple[list[Cell], list[WorkItem], list[Level]]:
    """Cells, items and levels of a load run: each grid point's cells at each level, ascending.

    A level sends ``load.requests`` (or rate × ``duration_s``, or the cases × ``repeats``) requests, after
    rate × ``warmup_s`` warm-up ones (open loop).

    Each level sends the grid point's cases in the same seeded order (cases shuffled anew each cycle through
    them), so levels and grid points are compared on the same requests; ``repeat`` counts the cycles.
    """
    replay = None
    names = sorted({f"{s}/{c}" for _, _, s, c, _, _ in requests} | {c for _, _, _, c, _, _ in requests})
    if load.arrival == "replay":
        assert load.replay is not None
        replay = read_replay((folder / load.replay).resolve(), known_cases=names)
    by_grid: dict[str, list[Request]] = {}
    for req in requests:
        by_grid.setdefault(req[0].cell_id, []).append(req)
    key = load.level_key
    cells: list[Cell] = []
    items: list[WorkItem] = []
    levels: list[Level] = []
    for grid_cell in grid_cells:
        cases = by_grid.get(grid_cell.cell_id, [])
        for value in level_values(load, replay):
            params = {**grid_cell.params, key: _level_value(key, value)}
            digest = hashlib.sha1(canonical(params).encode()).hexdigest()[:8]
            cell = Cell(cell_id=f"c-{digest}", params=params, label=cell_label(params))
            due, warmup, order = _schedule(load, value, replay, cases, repeats)
            counts: dict[tuple[str, str], int] = {}
            ids = []
            for req in order:
                _, target, suite, case_id, messages, sent = req
                repeat = counts.get((suite, case_id), 0)
                counts[(suite, case_id)] = repeat + 1
                item = WorkItem(item_id=f"{cell.cell_id}/{suite}/{case_id}/{repeat}", cell_id=cell.cell_id,
                                suite=suite, case_id=case_id, repeat=repeat, messages=messages, params=sent,
                                target=target)
                items.append(item)
                ids.append(item.item_id)
            cells.append(cell)
            levels.append(Level(cell.cell_id, grid_cell.cell_id, key, float(value), due, warmup, load.warmup_s,
                                tuple(ids)))
    return cells, items, levels


def _schedule(load: LoadOptions, value: float, replay: Replay | None, cases: list[Request], repeats: int
              ) -> tuple[tuple[float, ...] | None, int, list[Request]]:
    """A level's due offsets (None: closed loop), how many items are warm-up, and which case each item asks."""
    if replay is not None:
        due = replay.at_rate(value if load.rate else None)
        named = {**{f"{r[2]}/{r[3]}": r for r in cases}, **{r[3]: r for r in cases}}
        picks = _seeded(cases, len(due), load.seed)
        order = [named[c] if c is not None else pick for c, pick in zip(replay.cases, picks, strict=True)]
        return tuple(due), sum(t < load.warmup_s for t in due), order
    if load.requests is not None:
        measured = load.requests
    elif load.duration_s is not None:
        measured = max(1, math.ceil(value * load.duration_s))
    else:
        measured = len(cases) * repeats
    if load.arrival == "closed":
        return None, 0, _seeded(cases, measured, load.seed)
    warmup = math.ceil(value * load.warmup_s)
    n = warmup + measured
    due = offsets(load.arrival, value, n, burstiness=load.burstiness, seed=load.seed)
    return tuple(due), warmup, _seeded(cases, n, load.seed)


def _seeded(cases: list[Request], n: int, seed: int) -> list[Request]:
    """``n`` requests cycling through ``cases``, each cycle in its own seeded order."""
    if not cases:
        return []
    rng = random.Random(seed)
    out: list[Request] = []
    while len(out) < n:
        cycle = list(cases)
        rng.shuffle(cycle)
        out.extend(cycle)
    return out[:n]
