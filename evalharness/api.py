"""The Python API: run a config, load a stored run, compare two runs; typed results (``results.py``).

    import evalharness
    run = evalharness.run("configs/ci-gate.yaml", overrides={"repeats": 2})
    assert run.passed, [g.message for g in run.gates if not g.passed]

Errors are the exceptions of ``errors.py`` (a bad config is a ``ConfigError``, an unreachable target a
``TargetUnavailable``); a failed gate is not an error, it is ``run.passed`` false. The command line is a thin
layer over these functions: it prints what they return and turns it into an exit code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evalharness import flow
from evalharness.backend import Backend
from evalharness.config import LoadedConfig, config_from_mapping, load_config
from evalharness.crosstarget import matched_run
from evalharness.errors import UsageError
from evalharness.merging import merge as merge_shards
from evalharness.progress import Progress
from evalharness.regress import LATENCY_TOLERANCE, RATE_TOLERANCE, Population, compare_runs
from evalharness.results import Comparison, Run
from evalharness.runs import load_run as load_run_data
from evalharness.shards import Shard
from evalharness.store import SUMMARY, open_run_dir, read_json

#: A config: the path of a YAML file, or the same content as a mapping.
ConfigSource = str | os.PathLike[str] | Mapping[str, Any]
#: A run: a ``Run``, or the path of its folder.
RunSource = Run | str | os.PathLike[str]
#: The report files a run writes beside summary.json, in the order they are written.
REPORT_FILES = ("report.html", "summary.md", "junit.xml", "results.csv")


def load(config: ConfigSource, *, overrides: Mapping[str, Any] | None = None,
         base_dir: str | os.PathLike[str] | None = None) -> LoadedConfig:
    """Load and validate a config (a YAML path or a mapping) with ``overrides`` deep-merged over it.

    The merge: a mapping merges into the mapping under the same key, at any depth; anything else (a list, a
    number, a string, None) replaces the value. ``{"repeats": 2, "defaults": {"max_tokens": 8}}`` changes
    the repeats and one default and keeps every other key; ``{"grid": {"seed": [1]}}`` replaces that axis's
    values. A mapping's paths (suites, baselines) are relative to ``base_dir``, by default the current
    directory; a file's to its own folder. Errors are ConfigErrors naming the key path (and a file's line).
    """
    if isinstance(config, Mapping):
        return config_from_mapping(config, base_dir=base_dir, overrides=overrides)
    if base_dir is not None:
        raise UsageError("base_dir is for a config given as a mapping; a config file's paths are relative "
                         "to its own folder")
    return load_config(os.fspath(config), overrides)


def run(config: ConfigSource, *, out: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Any] | None = None, progress: bool | Progress = False,
        base_dir: str | os.PathLike[str] | None = None, resume: str | os.PathLike[str] | None = None,
        gates: bool = True, baseline: str | os.PathLike[str] | None = None,
        population: Population = "suite", backend: Backend | Mapping[str, Backend] | None = None,
        shard: str | Shard | None = None) -> Run:
    """Run ``config`` against its target, score it, gate it and write its reports; returns the ``Run``.

    ``config`` is a YAML path or a mapping, ``overrides`` merged over it (see ``load``). The run goes to
    ``out``, or ``reports/<name>/<run-id>/`` in the current directory. ``progress=False`` prints nothing;
    ``True`` says on stderr what runs and draws the progress line there when it is a terminal. ``resume``
    finishes the interrupted run in that folder; ``gates=False`` judges no gate; ``baseline`` also gates on
    regressions against that run, for ``population`` (as ``evalharness run --baseline`` does). ``backend``
    answers every request instead of the config's target (backend.py: any object with ``complete`` and
    ``aclose``); the run closes it when it is over. A mapping of target names to backends answers each
    named target's requests with its own (the other targets are called as usual).
    ``shard`` (``"2/4"`` or a ``Shard``) runs only that shard of the plan, as ``evalharness run --shard`` does;
    ``merge`` joins the shards.

    A run that stopped early (budget, interruption, a target that died mid-run) is returned with
    ``complete`` false and its ``stop_reason``; what stops it before anything is stored raises.
    """
    if resume is not None and out is not None:
        raise UsageError("resume and out cannot be combined: a resumed run stays in its folder")
    if baseline is not None and not gates:
        raise UsageError("baseline gates the run on regressions; it cannot be combined with gates=False")
    loaded = load(config, overrides=overrides, base_dir=base_dir)
    if isinstance(progress, Progress):
        shown = progress
    else:
        shown = Progress(enabled=None if progress else False, announce=sys.stderr if progress else None)
    finished = flow.execute(loaded, progress=shown, out=out, resume=resume, gates=gates, baseline=baseline,
                            population=population, backend=backend,
                            shard=Shard.parse(shard) if isinstance(shard, str) else shard)
    return Run(finished.run_dir, finished.summary, finished.reports)


def merge(shards: Sequence[str | os.PathLike[str]], *, out: str | os.PathLike[str], allow_partial: bool = False,
          gates: bool = True) -> Run:
    """Join the shard runs of one plan into the run folder ``out`` and score it (``evalharness merge``).

    Shards missing, given twice or of another plan raise ``UsageError``; ``allow_partial`` merges what there
    is into a run with ``complete`` false instead.
    """
    finished = merge_shards([Path(s) for s in shards], Path(out), allow_partial=allow_partial, gates=gates)
    return Run(finished.run_dir, finished.summary, finished.reports)


def rescore(run_dir: str | os.PathLike[str]) -> Run:
    """Score a stored run again from its records and rewrite summary.json and its reports (no requests)."""
    finished = flow.rescore(Path(run_dir))
    return Run(finished.run_dir, finished.summary, finished.reports)


def load_run(run_dir: str | os.PathLike[str]) -> Run:
    """A stored run, as ``run`` returned it: read from its folder (summary.json; records when asked for)."""
    folder = open_run_dir(Path(run_dir))
    if not (folder / SUMMARY).is_file():
        raise UsageError(f"{folder} has no {SUMMARY} (the run was stopped before it was scored); "
                         f"score it with: evalharness report {folder}")
    return Run(folder, read_json(folder / SUMMARY), [folder / f for f in REPORT_FILES if (folder / f).is_file()])


def compare(base: RunSource, new: RunSource, *, population: Population = "suite",
            max_drop: float = RATE_TOLERANCE, max_slowdown: float = LATENCY_TOLERANCE,
            match_target: tuple[str, str] | None = None) -> Comparison:
    """Regression verdicts of ``new`` against ``base`` (``Run`` objects or run folders), as ``evalharness
    compare`` gives them: ``population`` is the question asked (``suite``: did these cases change;
    ``cases``: would cases like these), ``max_drop`` how far a rate may fall (in rate points) and
    ``max_slowdown`` how much slower a median latency may get (a fraction) before it is a regression.
    ``match_target=(A, B)`` compares the cells of target A in ``base`` with those of target B in ``new``,
    grid point by grid point (runs against different targets: last week's model against this week's)."""
    base_dir, new_dir = _folder(base), _folder(new)
    base_run, new_run = load_run_data(base_dir), load_run_data(new_dir)
    if match_target is not None:
        base_run, new_run = matched_run(base_run, match_target[0]), matched_run(new_run, match_target[1])
    result = compare_runs(base_run, new_run, rate_tolerance=max_drop,
                          latency_tolerance=max_slowdown, population=population)
    if not result["cells"]:
        raise UsageError(f"no cell of {new_dir} has the same params as a cell of {base_dir}; "
                         "compare runs of the same grid")
    return Comparison.from_result(result)


def _folder(source: RunSource) -> Path:
    return source.run_dir if isinstance(source, Run) else Path(source)
