"""Checking a config's ``judges`` against the suites that use them, when the config is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from evalharness.errors import ConfigError
from evalharness.yamlsrc import YamlDoc

if TYPE_CHECKING:  # config.py calls this module; it only reads what config.py defines
    from evalharness.config import Config, Judge, LoadedConfig, Target
    from evalharness.suites import Suite

#: What ``target: NAME`` in a judge may name besides a target's name: the config's (first) target.
OWN_TARGET = "target"


def judged_target(config: Config, judge: Judge) -> Target | None:
    """The target a ``target: NAME`` judge reuses (``target``: the first), or None if there is none so named."""
    if judge.target == OWN_TARGET:
        return config.targets[0]
    return next((t for t in config.targets if t.label == judge.target), None)


def judge_template(judge: Judge, folder: Path) -> str | None:
    """The text of a judge's ``template`` file (relative to ``folder``), or None for the built-in prompt."""
    if judge.template is None:
        return None
    return (folder / judge.template).read_text(encoding="utf-8")


def check_judges(doc: YamlDoc, config: Config, suites: list[Suite], folder: Path) -> None:
    """Every judge check names a judge of the config; every judge's target and template can be used."""
    for name, judge in config.judges.items():
        if judge.target is not None and judged_target(config, judge) is None:
            names = ", ".join(t.label for t in config.targets)
            raise doc.error(("judges", name, "target"), f"no target named {judge.target!r} (the config's "
                            f"targets: {names})",
                            hint=f"name one of them, or target: {OWN_TARGET} for the first, as the judge")
        if judge.template is not None:
            path = folder / judge.template
            try:
                text = judge_template(judge, folder)
            except OSError as exc:
                raise doc.error(("judges", name, "template"), f"cannot read the template {judge.template} "
                                f"(looked in {path}): {exc.strerror or exc}") from exc
            try:
                jinja2.Environment(undefined=jinja2.StrictUndefined).parse(text or "")
            except jinja2.TemplateSyntaxError as exc:
                raise doc.error(("judges", name, "template"),
                                f"{judge.template} line {exc.lineno}: {exc.message}") from exc
    _check_compare(doc, config)
    for suite in suites:
        for case in suite.cases:
            if case.expect is None:
                continue
            for check in case.expect.judge_checks():
                if check.judge in config.judges:
                    continue
                known = ", ".join(config.judges) or "none"
                raise ConfigError(f"case {case.id!r} is graded by the judge {check.judge!r}, which the config "
                                  f"does not define (its judges: {known})", file=str(suite.path),
                                  key="expect.judge", hint="add judges: {default: {kind: local}} (or an endpoint, "
                                  "or target: target) to the config")


def _check_compare(doc: YamlDoc, config: Config) -> None:
    """Every ``judge_compare`` names a judge and two different cells, one each."""
    from evalharness.gates import matches_where  # both build on config.py
    from evalharness.plan import make_cells

    if not config.judge_compare:
        return
    cells = make_cells(config.grid)
    defaults = config.defaults.model_dump(exclude_unset=True)
    for i, entry in enumerate(config.judge_compare):
        if entry.judge not in config.judges:
            raise doc.error(("judge_compare", i, "judge"), f"no judge named {entry.judge!r} in judges")
        picked = []
        for side in ("a", "b"):
            matched = [c.label for c in cells if matches_where(c.params, getattr(entry, side), defaults)]
            if len(matched) != 1:
                raise doc.error(("judge_compare", i, side), f"matches {len(matched)} cells"
                                + (f" ({'; '.join(matched[:4])})" if matched else "")
                                + "; it must pick exactly one", hint="name a value of every grid axis")
            picked.append(matched[0])
        if picked[0] == picked[1]:
            raise doc.error(("judge_compare", i, "b"), f"a and b are the same cell ({picked[0]})")


def judge_plan_line(loaded: LoadedConfig, items: int, cells: int) -> str | None:
    """What the judges will be asked at most, for ``run --dry-run`` (identical answers share requests)."""
    cfg = loaded.config
    if not cfg.judges:
        return None
    graded = 0
    for suite in loaded.suites:
        for case in suite.cases:
            for check in case.expect.judge_checks() if case.expect else []:
                graded += cfg.judges[check.judge].repeats
    per_cell = items // max(1, cells)
    checks = graded * cells * cfg.repeats
    pairs = sum(per_cell * 2 * cfg.judges[c.judge].repeats for c in cfg.judge_compare)
    return (f"  judges: at most {checks + pairs:,} requests ({checks:,} for graded checks, {pairs:,} for "
            f"judge_compare; identical answers share theirs), reported apart from the target's")
