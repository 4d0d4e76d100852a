"""The pytest plugin (on once evalharness is installed; inert unless used).

- The ``evalharness_run`` fixture runs a config from a test and returns the typed ``Run``::

      def test_greedy_is_good(evalharness_run):
          run = evalharness_run("configs/ci-gate.yaml", overrides={"repeats": 2})
          assert run.passed

- ``pytest --evalharness CONFIG`` collects the config as test items: one per gate and cell it applies to
  (per gate for a totals or baseline gate), and one per case with ``expect`` checks in each cell, marked
  ``evalharness_gate`` and ``evalharness_case``. The run happens once per config, when its first item
  runs; its folder is kept and named in the terminal summary. Without other paths on the command line only
  the configs are collected.

Gate items fail with the gate's message; case items fail when a sample misses its checks or a request
failed, as junit.xml's test cases do. ``evalharness run``'s exit code is decided by the gates alone, so
``-m evalharness_gate`` asks what it asks.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr
    from _pytest.terminal import TerminalReporter

    from evalharness.config import Gate
    from evalharness.results import Run
    from evalharness.types import GateVerdict as GateVerdictData

_CONFIGS = pytest.StashKey[set[Path]]()
_RUNS = pytest.StashKey[list[tuple[str, "Run"]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("evalharness", "evaluate a chat API with evalharness")
    group.addoption("--evalharness", action="append", default=[], metavar="CONFIG",
                    help="collect an evalharness config as test items: its gates and case expectations "
                         "(may be given more than once)")
    group.addoption("--evalharness-out", metavar="DIR",
                    help="where --evalharness runs go: DIR/<name>/<run-id> (default: reports/<name>/<run-id>)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RUNS] = []
    paths: list[str] = config.getoption("evalharness")
    config.stash[_CONFIGS] = {Path(p).resolve() for p in paths}
    if not paths:
        return
    config.addinivalue_line("markers", "evalharness_gate: a gate verdict of an --evalharness config")
    config.addinivalue_line("markers", "evalharness_case: a case's expectations in one cell of an --evalharness config")
    # `pytest --evalharness CONFIG` means the config: the testpaths (or the current folder) pytest would
    # otherwise collect are left out unless named on the command line.
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        config.args += paths
    else:
        config.args = list(paths)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.resolve() in parent.config.stash.get(_CONFIGS, set()):
        return ConfigFile.from_parent(parent, path=file_path)
    return None


class Failed(Exception):
    """An item's verdict: shown as its message alone, without a traceback."""


class ConfigFile(pytest.File):
    """An evalharness config: its items are planned from the config; it runs once, for the first of them."""

    _run: Run | None = None
    _error: str | None = None

    def collect(self) -> Iterator[pytest.Item]:
        from evalharness.api import load
        from evalharness.errors import EvalHarnessError
        from evalharness.plan import make_plan

        try:
            self.loaded = load(self.path)
            plan = make_plan(self.loaded)
        except EvalHarnessError as exc:
            raise self.CollectError(f"evalharness: {exc}") from exc
        cells = [(c.cell_id, c.label, c.params) for c in plan.cells]
        from evalharness.fanout import gate_defaults

        defaults = gate_defaults(self.loaded.config.model_dump(mode="json", exclude_none=False))
        yield from _gate_items(self, self.loaded.config.gates, cells, defaults)
        for suite in self.loaded.suites:
            for case in suite.cases:
                if case.expect is None and suite.schemas.get(case.id) is None:
                    continue
                for cell_id, label, _ in cells:
                    yield CaseItem.from_parent(self, name=f"case {suite.name}/{case.id} [{label}]",
                                               case=f"{suite.name}/{case.id}", cell_id=cell_id)

    def run(self) -> Run:
        """The config's run, executed the first time an item asks (an error fails every item alike)."""
        from evalharness.api import run
        from evalharness.errors import EvalHarnessError
        from evalharness.store import new_run_id

        if self._error is not None:
            raise Failed(self._error)
        if self._run is None:
            out = self.config.getoption("evalharness_out")
            try:
                # A new folder each session: a folder that holds records would be finished, not run again.
                folder = Path(out) / self.loaded.config.name / new_run_id() if out else None
                self._run = run(self.path, out=folder)
            except EvalHarnessError as exc:
                self._error = f"evalharness: error: {exc}"
                raise Failed(self._error) from exc
            shown = os.path.relpath(self.path, self.config.invocation_params.dir)
            self.config.stash[_RUNS].append((shown, self._run))
        if not self._run.complete:
            raise Failed(f"the run stopped early: {self._run.stop_reason} (run directory {self._run.run_dir})")
        return self._run


def _gate_items(parent: ConfigFile, gates: list[Gate], cells: list[tuple[str, str, Any]],
                defaults: dict[str, Any]) -> Iterator[GateItem]:
    from evalharness.gates import matches_where
    from evalharness.report.fmt import gate_bound

    for index, gate in enumerate(gates):
        # A config gate has the bound fields its verdicts repeat (min, max, per_case, baseline, ...).
        bound = gate_bound(cast("GateVerdictData", gate.model_dump()), ascii_only=True)
        matched = [(cell_id, label) for cell_id, label, params in cells
                   if matches_where(params, gate.where, defaults)]
        if gate.baseline is not None or gate.metric.startswith("totals.") or not matched:
            where = "run" if gate.metric.startswith("totals.") or not matched else "every cell"
            yield GateItem.from_parent(parent, name=f"gate {gate.metric} {bound} [{where}]", index=index,
                                       cell_id=None)
            continue
        for cell_id, label in matched:
            yield GateItem.from_parent(parent, name=f"gate {gate.metric} {bound} [{label}]", index=index,
                                       cell_id=cell_id)


class _Item(pytest.Item):
    parent: ConfigFile

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, Failed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class GateItem(_Item):
    """One gate in one cell (or the whole run, for a totals or baseline gate, or one no cell matches)."""

    def __init__(self, *, index: int, cell_id: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.index = index
        self.cell_id = cell_id
        self.add_marker("evalharness_gate")

    def runtest(self) -> None:
        run = self.parent.run()
        gate = self.parent.loaded.config.gates[self.index]
        mine = [v for v in run.gates if v.gate == self.index]
        if self.cell_id is not None:
            in_cell = [v for v in mine if v.cell_id == self.cell_id]
            if not in_cell:
                unmeasured = [v for v in mine if v.cell_id is None and not v.passed]
                if unmeasured:
                    raise Failed(unmeasured[0].message)
                cell = next(c for c in run.cells if c.cell_id == self.cell_id)
                metric = cell.metrics.get(gate.metric.partition(".")[0])
                pytest.skip(f"{gate.metric} has no value in this cell"
                            + (f": {metric.reason}" if metric and metric.reason else ""))
            mine = in_cell
        failed = [v for v in mine if not v.passed]
        if failed:
            raise Failed("\n".join(v.message for v in failed) + f"\n(run directory {run.run_dir})")


class CaseItem(_Item):
    """One case's ``expect`` checks over its repeats in one cell."""

    def __init__(self, *, case: str, cell_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.cell_id = cell_id
        self.add_marker("evalharness_case")

    def runtest(self) -> None:
        run = self.parent.run()
        found = [o for o in run.cases if o.case == self.case and o.cell_id == self.cell_id]
        if not found:
            raise Failed(f"no sample of {self.case} was stored in this cell (run directory {run.run_dir})")
        if not found[0].passed:
            raise Failed(found[0].message)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    runs = terminalreporter.config.stash.get(_RUNS, [])
    if not runs:
        return
    terminalreporter.write_sep("-", "evalharness runs")
    for config, run in runs:
        verdict = "PASSED" if run.passed else ("INCOMPLETE" if not run.complete else "FAILED")
        terminalreporter.write_line(f"{config}: {verdict} — run directory {run.run_dir}")


@pytest.fixture
def evalharness_run(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Run]:
    """Run a config from a test: ``evalharness_run(config, overrides=None, **options) -> Run``.

    ``config`` is a YAML path or a mapping, ``options`` those of ``evalharness.run``; the run goes to a
    folder under the test's ``tmp_path`` unless ``out`` says otherwise, and is named in the terminal summary.
    """
    from evalharness.api import run

    def run_config(config: str | os.PathLike[str] | Mapping[str, Any], **options: Any) -> Run:
        options.setdefault("out", tmp_path / f"run-{len(os.listdir(tmp_path))}")
        result = run(config, **options)
        request.config.stash[_RUNS].append((str(config) if not isinstance(config, Mapping) else
                                            f"{request.node.nodeid} (a config mapping)", result))
        return result

    return run_config
