"""Targets as an axis: the grid's cells on every target, and what each target is sent.

With one target, cells are the grid's points as they always were (same ids, no ``target`` param), so runs
and baselines made before targets existed still match; records still carry ``target``. With more, every
grid point is a cell per target, whose params start with ``target: NAME``.

What a target is sent differs where servers differ: its ``thinking.via`` (applied by the plan), its
``extra_body`` merged into the request's, and its ``params`` map, which renames a parameter for this server
(``{repetition_penalty: repeat_penalty}``) or drops it (``{seed: null}``).
"""

from __future__ import annotations

from typing import Any

from evalharness.config import Config, LoadedConfig, Pricing, RunOptions, Target
from evalharness.gates import matches_where
from evalharness.types import PlannedCell

#: The axis a cell's params name its target with (only when the config has more than one).
AXIS = "target"


def is_multi(config: Config | dict[str, Any]) -> bool:
    """Whether the config (as validated, or as a manifest's JSON) has more than one target."""
    targets = config.targets if isinstance(config, Config) else config.get("targets") or [None]
    return len(targets) > 1


def target_names(config: dict[str, Any]) -> list[str]:
    """The targets' names, in order, from a manifest's config (an older one: its single target)."""
    targets = config.get("targets") or [config.get("target") or {}]
    return [Target.model_validate(t).label for t in targets] if targets[0] else ["default"]


def reference_name(config: dict[str, Any]) -> str:
    """The target the others are compared with: ``compare_to``, else the first."""
    return str(config.get("compare_to") or target_names(config)[0])


def cell_target(cell: PlannedCell, config: dict[str, Any]) -> str:
    """Which target a planned cell runs on."""
    return str(cell["params"].get(AXIS) or target_names(config)[0])


def grid_point(params: dict[str, Any]) -> dict[str, Any]:
    """A cell's params without its target: the grid point it is on, shared by every target."""
    return {k: v for k, v in params.items() if k != AXIS}


def gate_defaults(config: dict[str, Any]) -> dict[str, Any]:
    """What a gate's ``where`` matches besides a cell's params: the defaults, and, with one target, its
    name (its cells carry none, yet ``where: {target: NAME}`` should find them)."""
    defaults = dict(config.get("defaults") or {})
    if not is_multi(config):
        defaults[AXIS] = target_names(config)[0]
    return defaults


def where_matches(cell_params: dict[str, Any], where: dict[str, Any], config: dict[str, Any]) -> bool:
    """``gates.matches_where`` with the target known for a config of one target."""
    return matches_where(cell_params, where, gate_defaults(config))


def shape_params(params: dict[str, Any], target: Target) -> dict[str, Any]:
    """The request's params as ``target`` takes them: its ``extra_body`` merged in (the request's own keys
    win), then its ``params`` map applied (a rename, or null to drop)."""
    out = dict(params)
    if target.extra_body:
        out["extra_body"] = {**target.extra_body, **(out.get("extra_body") or {})}
    for name, renamed in target.params.items():
        if name in out:
            value = out.pop(name)
            if renamed is not None:
                out[renamed] = value
    return out


def run_options(config: Config, target: Target) -> RunOptions:
    """The config's ``run`` with the target's own concurrency, rpm and tpm over it."""
    own = target.run.model_dump(exclude_none=True)
    return config.run.model_copy(update=own) if own else config.run


def pricing(config: Config, target: Target) -> Pricing:
    """The target's own price table, else the config's."""
    return target.pricing or config.pricing


def planned_targets(loaded: LoadedConfig) -> list[tuple[Target, str | None]]:
    """Every target with why it is skipped (None: it runs)."""
    return [(t, loaded.skipped(t)) for t in loaded.config.targets]
