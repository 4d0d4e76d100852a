"""evalharness: evaluate and benchmark OpenAI-compatible chat APIs.

From Python: ``evalharness.run(config)`` runs a config (a YAML path or a mapping) and returns a ``Run``;
``evalharness.load_run(dir)`` reads a stored one; ``evalharness.compare(base, new)`` gives regression
verdicts. See ``evalharness/api.py``. ``@evalharness.check("name")`` registers a check of your own
(``evalharness/scoring/registry.py``). ``run(config, backend=...)`` sends the requests to a ``Backend`` of your
own, an object whose ``complete`` turns a request body into an ``Outcome`` (``evalharness/backend.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from evalharness.api import compare, load_run, merge, run
    from evalharness.backend import Backend, Outcome
    from evalharness.results import CaseOutcome, Cell, Change, Comparison, GateVerdict, Metric, Run
    from evalharness.scoring.registry import CheckContext, CheckResult, check

__all__ = ["Backend", "CaseOutcome", "Cell", "Change", "CheckContext", "CheckResult", "Comparison", "GateVerdict",
           "Metric", "Outcome", "Run", "__version__", "check", "compare", "load_run", "merge",
           "run"]

_FROM = {"run": "evalharness.api", "load_run": "evalharness.api", "compare": "evalharness.api",
         "merge": "evalharness.api",
         **{name: "evalharness.results" for name in ("Run", "Cell", "Metric", "GateVerdict", "CaseOutcome",
                                                       "Change", "Comparison")},
         **{name: "evalharness.scoring.registry" for name in ("check", "CheckContext", "CheckResult")},
         **{name: "evalharness.backend" for name in ("Backend", "Outcome")}}


def __getattr__(name: str) -> Any:
    # Imported on first use: the pytest plugin loads this package in every pytest session once it is
    # installed, and a session that never asks for a run should not pay for numpy, pydantic and httpx.
    if name not in _FROM:
        raise AttributeError(f"module 'evalharness' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(_FROM[name]), name)
    globals()[name] = value
    return value
