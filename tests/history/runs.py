"""A config's stored runs for history tests: several synthetic runs of one grid in ``reports/<name>/``, each
scored as ``evalharness report`` scores it, with answers chosen per run (a broken run answers wrong)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalharness.report import write_reports
from evalharness.store import write_json
from tests.report.factory import load, make_run

CASES: dict[str, dict[str, Any]] = {f"echo/w{i}": {"expect": {"contains": "ok"}, "schema": None, "extract": None}
                                    for i in range(6)}
GRID: dict[str, list[Any]] = {"temperature": [0, 1.0]}


def good(case: str, params: dict[str, Any], repeat: int) -> str | None:
    return f"ok, {case}"


def broken(case: str, params: dict[str, Any], repeat: int) -> str | None:
    return f"no, {case}"


def make_history(root: Path, answers: list[Callable[[str, dict[str, Any], int], str | None]], *,
                 name: str = "echo", grid: dict[str, list[Any]] | None = None, reports: bool = False,
                 label: Callable[[int], str] | None = None, repeats: int = 5) -> list[Path]:
    """``reports/<name>/<run-id>/`` for each answer function, a minute apart, oldest first."""
    folder = root / "reports" / name
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, answer in enumerate(answers):
        run_id = label(k) if label else f"20261201-10{k:02d}00-{k:04x}"
        scratch = root / f"scratch-{k}"
        made = make_run(scratch, grid=GRID if grid is None else grid, cases=CASES, repeats=repeats, answer=answer,
                        gates=[{"metric": "pass_rate", "where": {}, "min": 0.9}])
        run_dir = folder / run_id
        shutil.move(str(made), run_dir)
        shutil.rmtree(scratch)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        manifest.update(run_id=run_id, started_at=f"2026-12-01T10:{k:02d}:00+00:00")
        manifest["config"]["name"] = name
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
        manifest, summary, records = load(run_dir)
        write_json(run_dir / "summary.json", summary)
        if reports:
            write_reports(run_dir, manifest, summary, records)
        out.append(run_dir)
    return out


def one_case_broken(case: str, params: dict[str, Any], repeat: int) -> str | None:
    return f"no, {case}" if case == "echo/w0" else f"ok, {case}"
