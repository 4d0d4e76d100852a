"""The pytest plugin as a user meets it: an inner pytest session against the bundled model (pytester)."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

SUITE = """\
name: mini
cases:
  - id: capital
    prompt: What is the capital of France? Answer in one word.
    expect: {contains: Paris}
  - id: never
    prompt: Say hello.
    expect: {contains: "a phrase no model says: zq7#x"}
  - id: sea
    prompt: Write one sentence about the sea.
"""

CONFIG = """\
name: plugin-check
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 8, temperature: 0, seed: 1}
repeats: 2
run: {concurrency: 1, max_retries: 1}
gates:
  - {metric: error_rate, max: 0.0}
  - {metric: e2e_s.p95, max: 0.000001}   # no real server answers in a microsecond: this gate must fail
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yaml", suite=SUITE, config=CONFIG)
    return pytester


def test_the_fixture_gives_a_typed_run_a_test_can_assert_on(project: pytest.Pytester) -> None:
    project.makepyfile(test_model=textwrap.dedent("""
        def test_errors_are_none(evalharness_run):
            run = evalharness_run("config.yaml", overrides={"gates": [{"metric": "error_rate", "max": 0.0}]})
            assert run.passed and run.complete
            assert run.cell(temperature=0).metric("error_rate").value == 0.0
            assert run.run_dir.is_dir()

        def test_the_capital_is_always_right(evalharness_run):
            run = evalharness_run({"name": "d", "target": {"kind": "local"}, "suites": ["suite.yaml"],
                                   "defaults": {"max_tokens": 8, "temperature": 0}, "repeats": 2,
                                   "gates": [{"metric": "pass_rate", "min": 0.9}]})
            assert run.passed, [g.message for g in run.gates if not g.passed]
    """))
    result = project.runpytest_subprocess("-p", "no:cacheprovider")
    # pass_rate over both cases with checks: `never` fails every time, so the second test fails on its gate.
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*pass_rate = 0.5 (n=4) (want >= 0.9)*", "*evalharness runs*",
                                 "*config.yaml: PASSED — run directory *", "*a config mapping*: FAILED*"])


def test_collecting_a_config_runs_it_once_with_an_item_per_gate_and_case(project: pytest.Pytester) -> None:
    project.makepyfile(test_unrelated="def test_not_collected():\n    assert False\n")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--evalharness", "config.yaml",
                                          "--evalharness-out", "runs", "-v")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines_random([
        "*config.yaml::gate error_rate <= 0 [[]default[]] PASSED*",
        "*config.yaml::gate e2e_s.p95 <= 1e-06 [[]default[]] FAILED*",
        "*config.yaml::case mini/capital [[]default[]] PASSED*",
        "*config.yaml::case mini/never [[]default[]] FAILED*",
        "*e2e_s.p95 = * (want <= 1e-06)*",
        "*2 of 2 samples failed: *zq7#x*",
        "*config.yaml: FAILED — run directory runs/plugin-check/*",
    ])
    [run_dir] = (project.path / "runs" / "plugin-check").iterdir()
    assert (run_dir / "summary.json").is_file()
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 6  # one run for all four items
    # Only the gates decide `evalharness run`'s exit code; -m selects them alone.
    gates_only = project.runpytest_subprocess("-p", "no:cacheprovider", "--evalharness", "config.yaml",
                                              "--collect-only", "-q", "-m", "evalharness_gate")
    gates_only.stdout.fnmatch_lines(["*2/4 tests collected (2 deselected)*"])


def test_without_the_option_the_plugin_collects_nothing(project: pytest.Pytester) -> None:
    project.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_plain.py::test_plain", "1 test collected*"])


def test_a_bad_config_is_a_collection_error_naming_the_key(project: pytest.Pytester) -> None:
    project.makefile(".yaml", bad=CONFIG.replace("repeats: 2", "repeats: 0"))
    result = project.runpytest_subprocess("-p", "no:cacheprovider", "--evalharness", "bad.yaml")
    result.stdout.fnmatch_lines(["*evalharness: *bad.yaml:5: repeats: *greater than or equal to 1*"])
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_each_gate_item_judges_its_own_gate_though_another_has_the_same_fields(pytester: pytest.Pytester) -> None:
    # The two gates differ only in min_n: the first passes, the second (n=2 < 100) must fail, alone.
    pytester.makefile(".yaml", suite="name: one\ncases:\n  - id: sea\n    prompt: Say hello.\n", config="""\
name: twins
target: {kind: local}
suites: [suite.yaml]
defaults: {max_tokens: 4, temperature: 0}
repeats: 2
gates:
  - {metric: error_rate, max: 0.0}
  - {metric: error_rate, max: 0.0, min_n: 100}
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--evalharness", "config.yaml", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*measured on n=2, fewer than min_n=100*"])
