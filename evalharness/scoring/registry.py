"""The registry of named checks: the built-in ones, those registered with ``@evalharness.check(NAME)``, and
those packages ship under the entry point group ``evalharness.checks``.

A check is a function ``fn(answer: str, case: CheckContext) -> bool | float | CheckResult``:

- ``answer`` is the sample's content ("" when the model gave none);
- ``case`` is a ``CheckContext``: what was asked (case id, vars, messages, params) and everything the model
  said (content, reasoning, tool calls), plus the ``args`` the suite gave this check;
- it returns pass/fail, a score in [0, 1] (a pass when at least the check's ``min``, 0.5 unless the suite
  says otherwise), or a ``CheckResult`` with a reason.

A check sees what the model was asked and said, never which repeat or run it is: scoring is a function of
the stored records, so ``evalharness report`` gives the same verdicts again.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeAlias

from evalharness.errors import ConfigError

#: The entry point group a package lists its checks under (``name = "module:function"``).
ENTRY_POINT_GROUP = "evalharness.checks"
#: The score at or above which a check that returns a number passes, unless the suite sets ``min``.
DEFAULT_MIN = 0.5


@dataclass(frozen=True)
class CheckContext:
    """What a check may look at besides the answer. ``args`` are the check's own arguments from the suite."""

    case_id: str
    suite: str
    vars: Mapping[str, Any]
    messages: list[dict[str, Any]]
    expect: Mapping[str, Any]
    params: Mapping[str, Any]
    content: str | None
    reasoning: str | None
    tool_calls: list[dict[str, Any]] | None
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckResult:
    """A check's verdict with its reason (shown in the report and junit.xml) and, optionally, a score."""

    passed: bool
    reason: str = ""
    score: float | None = None


CheckFn: TypeAlias = Callable[[str, CheckContext], "bool | float | CheckResult"]


@dataclass(frozen=True)
class Registered:
    """A named check and where it came from (``built-in``, ``module x.y``, ``entry point ... of dist``)."""

    name: str
    fn: CheckFn
    source: str


_REGISTRY: dict[str, Registered] = {}


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check ``name``, used in a suite as ``expect: {check: NAME}``."""
    def register(fn: CheckFn) -> CheckFn:
        module = getattr(fn, "__module__", None) or "?"
        source = "built-in" if module.startswith("evalharness.") else f"module {module}"
        _REGISTRY[name] = Registered(name, fn, source)
        return fn
    return register


def _builtins() -> None:
    # The built-in checks register themselves where they are defined; importing it here keeps this module
    # free of scoring's imports (suites validate names through the registry, and scoring imports suites).
    importlib.import_module("evalharness.scoring.checks")


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def lookup(name: str) -> Registered:
    """The check registered as ``name``; an entry point is loaded the first time it is asked for.

    Raises ``ConfigError`` (without a location: the caller knows the suite and key) when no check has the
    name, or when its entry point fails to load.
    """
    _builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    found = _entry_points().get(name)
    if found is None:
        raise ConfigError(f"no check is named {name!r}", hint=f"known checks: {', '.join(names())}; a package "
                          f"registers one under the entry point group {ENTRY_POINT_GROUP}")
    dist = f" of {found.dist.name} {found.dist.version}" if found.dist is not None else ""
    where = f"entry point {found.value}{dist}"
    try:
        fn = found.load()
    except Exception as exc:  # user code: any failure to import is the package's, named as such
        raise ConfigError(f"check {name!r} ({where}) failed to load: {type(exc).__name__}: {exc}") from exc
    if not callable(fn):
        raise ConfigError(f"check {name!r} ({where}) is a {type(fn).__name__}, not a function")
    _REGISTRY[name] = Registered(name, fn, where)
    return _REGISTRY[name]


def names() -> list[str]:
    """Every known check name: registered ones and those entry points offer (not loaded)."""
    _builtins()
    return sorted(set(_REGISTRY) | set(_entry_points()))
