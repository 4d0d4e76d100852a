"""Regression verdicts between runs, from synthetic records: compare, baseline gates, summary comparisons."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evalharness.baselines import Baselines, baseline_verdicts, previous_run
from evalharness.cli import main
from evalharness.config import Gate
from evalharness.plan import make_cells
from evalharness.regress import compare_runs
from evalharness.runs import RunData, load_run
from evalharness.summary import build_summary

Content = Callable[[Any, int, int], str]  # (temperature, case index, repeat) -> answer
GRID = {"temperature": [0, 1]}


def manifest_and_records(content: Content, *, cases: int = 8, repeats: int = 2, name: str = "suite-x",
                         started_at: str = "2026-01-01T10:00:00+00:00", slow: float = 1.0,
                         gates: list[dict[str, Any]] | None = None, run_id: str = "run"
                         ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run of ``cases`` cases expecting "yes", over the grid, with latency around 0.5 s x ``slow``."""
    rng = random.Random(1)
    cells = make_cells(GRID)
    records = []
    for cell in cells:
        for i in range(cases):
            for r in range(repeats):
                e2e = slow * (0.5 + 0.02 * rng.random())
                records.append({
                    "item_id": f"{cell.cell_id}/s/c{i}/{r}", "cell_id": cell.cell_id, "suite": "s",
                    "case_id": f"c{i}", "repeat": r, "params": dict(cell.params), "ok": True, "error_kind": None,
                    "error": None, "content": content(cell.params["temperature"], i, r), "usage": None,
                    "cost": None, "logprobs": None, "attempts": [{}],
                    "timings": {"queue_s": 0.0, "ttft_s": 0.1, "ttfc_s": 0.1, "e2e_s": e2e, "chunk_times": []}})
    manifest = {
        "run_id": run_id, "started_at": started_at, "target": {"kind": "test"}, "config_path": "/nowhere/c.yaml",
        "config": {"name": name, "run": {"stream": True}, "pricing": {"currency": "X"}, "gates": gates or []},
        "plan": {"requests": len(records), "repeats": repeats, "cases": cases,
                 "cells": [{"cell_id": c.cell_id, "label": c.label, "params": c.params} for c in cells]},
        "cases": {f"s/c{i}": {"expect": {"contains": "yes"}, "schema": None, "extract": None} for i in range(cases)},
    }
    return manifest, records


def write_run(folder: Path, content: Content, **kwargs: Any) -> Path:
    manifest, records = manifest_and_records(content, run_id=folder.name, **kwargs)
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def good(t: Any, i: int, r: int) -> str:
    """Temperature 0 always answers right; temperature 1 is right half the time."""
    return "yes" if t == 0 or (i + r) % 2 else "no"


def broken(t: Any, i: int, r: int) -> str:
    """The prompt was changed: temperature 0 now always answers wrong; temperature 1 is noise."""
    return "no" if t == 0 else ("yes" if (i * r) % 3 else "no")


def verdicts_of(result: dict[str, Any], label: str) -> dict[str, str | None]:
    [cell] = [c for c in result["cells"] if c["label"] == label]
    return {r["metric"]: r["verdict"] for r in cell["metrics"]}


def test_a_broken_prompt_regresses_and_noise_does_not(tmp_path: Path) -> None:
    result = compare_runs(load_run(write_run(tmp_path / "base", good)), load_run(write_run(tmp_path / "new", broken)))
    t0, t1 = verdicts_of(result, "temperature=0"), verdicts_of(result, "temperature=1")
    assert t0["pass_rate"] == "regressed"
    assert t1["pass_rate"] == "inconclusive"  # 50% -> 31%, but 8 cases of coin flips cannot tell
    assert t0["json_valid_rate"] is None  # nothing expects JSON: not compared, not a silent "unchanged"
    assert [(r["cell"], r["metric"]) for r in result["regressions"]] == [("temperature=0", "pass_rate")]
    assert result["passed"] is False
    [reg] = result["regressions"]
    assert reg["before"] == 1.0 and reg["after"] == 0.0 and reg["ci"][1] < 0


def test_an_identical_rerun_passes_and_says_what_two_repeats_can_tell(tmp_path: Path) -> None:
    result = compare_runs(load_run(write_run(tmp_path / "a", good)), load_run(write_run(tmp_path / "b", good)))
    assert result["passed"] is True and not result["regressions"] and not result["cases"]
    # With the cases fixed, 2 repeats a case cannot rule out a 5-point drop of the pass rate: identical
    # reruns are "unchanged" only where the data can say so, never "regressed" or "improved".
    assert set(result["counts"]) <= {"unchanged", "inconclusive"}
    by_metric = verdicts_of(result, "temperature=0")
    assert by_metric["error_rate"] in ("unchanged", "inconclusive") and by_metric["e2e_s.p50"] == "unchanged"


def test_verdicts_are_judged_together(tmp_path: Path) -> None:
    result = compare_runs(load_run(write_run(tmp_path / "a", good)), load_run(write_run(tmp_path / "b", good)))
    # 2 cells x (pass_rate, exact_match_rate, error_rate, e2e_s.p50) can be compared; the rest do not apply.
    # Half of the 5% goes to these 8 intervals, half to the per-case exact tests.
    assert result["comparisons"] == 8
    assert result["level"] == pytest.approx(1 - 0.025 / 8)
    assert result["case_level"] == pytest.approx(0.975)


def test_a_slowdown_beyond_the_tolerance_regresses(tmp_path: Path) -> None:
    base = load_run(write_run(tmp_path / "a", good))
    # By default only more than twice as slow counts: runs on other machines or at other load differ that much.
    assert verdicts_of(compare_runs(base, load_run(write_run(tmp_path / "b", good, slow=1.6))),
                       "temperature=0")["e2e_s.p50"] != "regressed"
    slower = load_run(write_run(tmp_path / "c", good, slow=3.0))
    assert verdicts_of(compare_runs(base, slower), "temperature=0")["e2e_s.p50"] == "regressed"
    assert verdicts_of(compare_runs(base, slower, latency_tolerance=2.5), "temperature=0")["e2e_s.p50"] == "unchanged"


def test_compare_command_names_each_regression_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    base, new = write_run(tmp_path / "base", good), write_run(tmp_path / "new", broken)
    assert main(["compare", str(base), str(new), "--json", str(tmp_path / "cmp.json")]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED pass_rate [temperature=0]: 100.0% → 0.0% (change -100.0 pts, " in out
    assert "inconclusive (min. detectable" in out
    assert "Question: did this suite change?" in out
    assert out.rstrip().endswith("FAILED: 1 regression (this suite)")
    assert json.loads((tmp_path / "cmp.json").read_text())["regressions"][0]["metric"] == "pass_rate"
    assert main(["compare", str(base), str(base)]) == 0
    assert capsys.readouterr().out.rstrip().endswith("PASSED: no regression (this suite)")


def test_compare_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_run(tmp_path / "base", good)
    assert main(["compare", str(base), str(tmp_path)]) == 2
    assert "is not a run directory" in capsys.readouterr().err
    other_grid = {"top_p": [0.5]}
    other = write_run(tmp_path / "other", good)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["plan"]["cells"] = [{"cell_id": c.cell_id, "label": c.label, "params": c.params}
                                 for c in make_cells(other_grid)]
    (other / "manifest.json").write_text(json.dumps(manifest))
    assert main(["compare", str(base), str(other)]) == 2
    assert "no cell of" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(base), str(base), "--max-drop", "-1"])
    assert exc.value.code == 2


def test_baseline_gate_fails_only_on_a_regression(tmp_path: Path) -> None:
    base = load_run(write_run(tmp_path / "base", good))
    gates = [Gate(metric="pass_rate", baseline="previous", max_drop=0.05),
             Gate(metric="e2e_s.p95", baseline="previous", max_rise=0.5, where={"temperature": 0})]
    manifest, records = manifest_and_records(broken)
    verdicts = baseline_verdicts(gates, RunData(None, manifest, records), Baselines(by_spec={"previous": base}))
    by = {(v["metric"], v["label"]): v for v in verdicts}
    assert len(verdicts) == 3  # pass_rate in both cells; e2e only where temperature is 0
    assert by[("pass_rate", "temperature=0")]["verdict"] == "regressed"
    assert by[("pass_rate", "temperature=0")]["passed"] is False
    assert "regressed against base (this suite): 100.0% → 0.0%" in by[("pass_rate", "temperature=0")]["reason"]
    assert by[("pass_rate", "temperature=1")]["passed"] is True
    assert by[("pass_rate", "temperature=1")]["verdict"] == "inconclusive"
    assert "min. detectable" in by[("pass_rate", "temperature=1")]["reason"]
    assert by[("e2e_s.p95", "temperature=0")]["verdict"] == "unchanged"


def test_previous_with_no_earlier_run_passes_with_a_reason() -> None:
    manifest, records = manifest_and_records(good)
    [v] = baseline_verdicts([Gate(metric="pass_rate", baseline="previous", max_drop=0.0)],
                            RunData(None, manifest, records), Baselines(by_spec={"previous": None}))
    assert v["passed"] is True and "no earlier complete run" in v["reason"]


def test_summary_of_a_run_with_a_baseline(tmp_path: Path) -> None:
    base = load_run(write_run(tmp_path / "base", good))
    manifest, records = manifest_and_records(broken)
    summary = build_summary(manifest, records, complete=True, baselines=Baselines(cli=base))
    assert summary["passed"] is False
    failed = [g for g in summary["gates"] if not g["passed"]]
    assert [(g["metric"], g["label"], g["verdict"]) for g in failed] == [("pass_rate", "temperature=0", "regressed")]
    assert summary["baseline"]["run_id"] == "base"
    clean = build_summary(manifest, records, complete=True, baselines=Baselines(cli=load_run(write_run(
        tmp_path / "same", broken))))
    assert clean["passed"] is True


def test_summary_compares_cells_on_paired_cases() -> None:
    manifest, records = manifest_and_records(good)
    [comparison] = build_summary(manifest, records, complete=True)["comparisons"]
    assert comparison["reference"]["label"] == "temperature=0" and comparison["differs_in"] == ["temperature"]
    pass_rate = comparison["metrics"]["pass_rate"]
    assert (pass_rate["before"], pass_rate["after"], pass_rate["change"]) == (1.0, 0.5, -0.5)
    assert pass_rate["ci95"][1] < 0 and pass_rate["finding"] == "worse"
    assert comparison["metrics"]["e2e_s"]["kind"] == "ratio" and comparison["metrics"]["e2e_s"]["field"] == "p50"
    assert comparison["metrics"]["json_valid_rate"]["change"] is None
    assert comparison["metrics"]["json_valid_rate"]["reason"]


def test_cell_comparisons_stay_bounded_for_big_grids() -> None:
    from evalharness.regress import cell_comparisons

    def cells_of(grid: dict[str, list[Any]]) -> RunData:
        cells = make_cells(grid)
        return RunData(None, {"plan": {"cells": [{"cell_id": c.cell_id, "label": c.label, "params": c.params}
                                                 for c in cells]}, "cases": {}}, [])

    small = cell_comparisons(cells_of({"temperature": [0, 1], "seed": [None, 42], "top_p": [0.5, 1]}), ["pass_rate"])
    # 7 against the first cell, and the 12 one-axis neighbours of a cube less the 3 that involve the first.
    assert len(small) == 7 + 9
    big = cell_comparisons(cells_of({"temperature": [0, 0.5, 1], "seed": [1, 2, 3], "top_p": [0.5, 0.9]}),
                           ["pass_rate"])
    assert len(big) == 17  # 18 cells: only each against the first


def test_previous_is_the_latest_earlier_complete_run_of_the_same_config(tmp_path: Path) -> None:
    def run(name: str, started: str, *, complete: bool = True, config: str = "suite-x") -> Path:
        folder = write_run(tmp_path / name, good, started_at=started, name=config)
        (folder / "summary.json").write_text(json.dumps({"complete": complete}))
        return folder

    run("20260101-100000-aaaa", "2026-01-01T10:00:00+00:00")
    wanted = run("20260102-100000-bbbb", "2026-01-02T10:00:00+00:00")
    run("20260103-100000-cccc", "2026-01-03T10:00:00+00:00", complete=False)
    run("20260104-100000-dddd", "2026-01-04T10:00:00+00:00", config="other")
    me = run("20260105-100000-eeee", "2026-01-05T10:00:00+00:00")
    run("20260106-100000-ffff", "2026-01-06T10:00:00+00:00")  # later: not "previous"
    assert previous_run(me, json.loads((me / "manifest.json").read_text())) == wanted
    first = tmp_path / "20260101-100000-aaaa"
    assert previous_run(first, json.loads((first / "manifest.json").read_text())) is None


def test_cell_findings_report_any_slowdown_the_data_shows(tmp_path: Path) -> None:
    manifest, records = manifest_and_records(good)
    slow_cell = manifest["plan"]["cells"][1]["cell_id"]
    for r in records:
        if r["cell_id"] == slow_cell:
            r["timings"]["e2e_s"] *= 1.3  # 30% slower: within what CI tolerates, but a real difference of cells
    [comparison] = build_summary(manifest, records, complete=True)["comparisons"]
    e2e = comparison["metrics"]["e2e_s"]
    assert e2e["change"] == pytest.approx(1.3, rel=0.05) and e2e["ci95"][0] > 1 and e2e["finding"] == "worse"
