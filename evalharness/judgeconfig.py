"""Checking a config's ``judges`` against the suites that use them, when the config is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from evalharness.errors import ConfigError
from evalharness.yamlsrc import YamlDoc

if TYPE_CHECKING:  # config.py calls this module; it only reads what config.py defines
    from evalharness.config import Config, Judge
    from evalharness.suites import Suite

#: What ``target: NAME`` in a judge may name: the config's own target.
OWN_TARGET = "target"


def judge_template(judge: Judge, folder: Path) -> str | None:
    """The text of a judge's ``template`` file (relative to ``folder``), or None for the built-in prompt."""
    if judge.template is None:
        return None
    return (folder / judge.template).read_text(encoding="utf-8")


def check_judges(doc: YamlDoc, config: Config, suites: list[Suite], folder: Path) -> None:
    """Every judge check names a judge of the config; every judge's target and template can be used."""
    for name, judge in config.judges.items():
        if judge.target is not None and judge.target != OWN_TARGET:
            raise doc.error(("judges", name, "target"), f"no target named {judge.target!r}",
                            hint=f"target: {OWN_TARGET} reuses the config's target as the judge")
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
