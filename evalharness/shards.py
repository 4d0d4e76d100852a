"""Shards: a deterministic 1/N of a plan's work items, so one config runs on N machines at once.

The items are dealt round-robin in the plan's canonical order — cell by cell (as the grid lists them), case
by case (as the suites list them), repeat by repeat — so item ``(cell c, case k, repeat r)`` goes to shard
``((c × cases + k) × repeats + r) mod N``. Every machine computes the same split from the item's id and the
plan's layout alone (nothing random, nothing of the shuffled run order), and each shard holds each cell, each
case of a cell and the whole plan within one item of an equal share. An axis added to the grid (a target, a
load level) is a part of the cell and shards the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from evalharness.config import LoadedConfig
from evalharness.errors import UsageError
from evalharness.plan import Plan, WorkItem
from evalharness.types import Manifest, ShardInfo

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")

Item = TypeVar("Item", bound=WorkItem)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (1-based, as ``--shard 2/4`` says it)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``K/N`` with 1 <= K <= N; anything else is a usage error that says what is wanted."""
        match = _SPEC.match(text)
        if not match:
            raise UsageError(f"--shard {text!r}: want K/N, e.g. --shard 1/4 (the first of 4 shards)")
        index, count = int(match[1]), int(match[2])
        if not 1 <= index <= count:
            raise UsageError(f"--shard {text}: K must be between 1 and N (here 1 to {count})")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def select(self, items: Iterable[Item], layout: Layout) -> list[Item]:
        """This shard's items, in the plan's (run) order."""
        return [item for item in items
                if layout.shard_of(item.cell_id, item.case_key, item.repeat, self.count) == self.index]

    def info(self, items: list[WorkItem], plan_requests: int) -> ShardInfo:
        """What the manifest says of the shard (``merge`` checks it against the other shards)."""
        return {"index": self.index, "count": self.count, "requests": len(items), "plan_requests": plan_requests}


@dataclass(frozen=True)
class Layout:
    """The plan's canonical order: each cell's and each case's position, and the repeats."""

    cells: dict[str, int]
    cases: dict[str, int]
    repeats: int

    @classmethod
    def of(cls, cell_ids: Iterable[str], case_keys: Iterable[str], repeats: int) -> Layout:
        return cls({c: i for i, c in enumerate(cell_ids)}, {k: i for i, k in enumerate(case_keys)}, repeats)

    @classmethod
    def of_plan(cls, loaded: LoadedConfig, plan: Plan) -> Layout:
        """The layout of a plan made from ``loaded`` (cases in the order the manifest lists them)."""
        return cls.of((c.cell_id for c in plan.cells), (f"{s.name}/{c.id}" for s in loaded.suites for c in s.cases),
                      plan.repeats)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Layout:
        return cls.of((c["cell_id"] for c in manifest["plan"]["cells"]), manifest["cases"],
                      manifest["plan"]["repeats"])

    def shard_of(self, cell_id: str, case_key: str, repeat: int, count: int) -> int:
        """The shard (1 to ``count``) of the item of this cell, case (``suite/case_id``) and repeat."""
        try:
            position = (self.cells[cell_id] * len(self.cases) + self.cases[case_key]) * self.repeats + repeat
        except KeyError as exc:
            raise UsageError(f"{exc.args[0]} is not in the plan") from None
        return position % count + 1


def mark(manifest: Manifest, shard: Shard, items: list[WorkItem]) -> None:
    """Mark a new run's manifest as a shard: its plan's ``requests`` are the shard's (so it scores, gates and
    resumes as a run of its own), its ``item_ids_digest`` stays the whole plan's (so ``merge`` can tell that
    shards belong together)."""
    manifest["shard"] = shard.info(items, manifest["plan"]["requests"])
    manifest["plan"]["requests"] = len(items)


def resumed(run_dir: Path, info: ShardInfo | None, asked: Shard | None) -> Shard | None:
    """The shard a resumed run is: the one it was started as (``--shard`` may repeat it, not change it)."""
    stored = Shard(info["index"], info["count"]) if info else None
    if asked is not None and asked != stored:
        was = f"shard {stored}" if stored else "not a shard"
        raise UsageError(f"{run_dir} is {was}; it cannot be resumed as shard {asked} (leave --shard out to "
                         f"resume it as it was started)")
    return stored
