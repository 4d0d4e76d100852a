"""``evalharness history``: runs found and ordered, cells matched by params, the run where a regression first
appeared marked by compare's verdicts, pair verdicts cached, bad input named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from evalharness import pairs
from evalharness.cli import main
from evalharness.errors import UsageError
from evalharness.history import build_history, write_history
from tests.history.runs import broken, good, make_history


def history_of(folder: Path, out: Path | None = None) -> dict[str, Any]:
    assert main(["history", str(folder), *(["--out", str(out)] if out else [])]) == 0
    data: dict[str, Any] = json.loads(((out or folder) / "history.json").read_text())
    return data


def marked(data: dict[str, Any]) -> list[int]:
    return [i for i, r in enumerate(data["runs"]) if r["regressions"]]


def test_the_broken_run_in_the_middle_is_the_one_marked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = make_history(tmp_path, [good, good, broken, good])
    data = history_of(runs[0].parent)
    assert [r["run_id"] for r in data["runs"]] == [p.name for p in runs]
    assert marked(data) == [2]
    regressions = data["runs"][2]["regressions"]
    assert {(r["cell"], r["metric"], r["against"]) for r in regressions} == {
        ("temperature=0", "pass_rate", runs[1].name), ("temperature=1.0", "pass_rate", runs[1].name)}
    assert all(r["before"] == 1.0 and r["after"] == 0.0 for r in regressions)
    # The run that fixed it improved: not a regression. Gate verdicts are per run.
    assert [r["passed"] for r in data["runs"]] == [True, True, False, True]
    assert data["runs"][2]["gates_failed"][0]["metric"] == "pass_rate"
    assert data["runs"][0]["against"] is None and data["runs"][3]["against"] == runs[2].name
    out = capsys.readouterr().out
    assert out.startswith("4 runs, 1 with a failed gate, 1 with a regression against the run before\n")
    assert f"  {runs[2].name}: REGRESSED pass_rate [temperature=0]: 100.0% → 0.0%" in out


def test_a_regression_is_marked_where_it_first_appeared_not_on_every_run_after(tmp_path: Path) -> None:
    runs = make_history(tmp_path, [good, broken, broken, broken])
    data = history_of(runs[0].parent)
    assert marked(data) == [1]
    values = [r["cells"][data["cells"][0]["key"]]["pass_rate"]["value"] for r in data["runs"]]
    assert values == [1.0, 0.0, 0.0, 0.0]  # the dip stays; only its first run is a regression


def test_each_cell_carries_its_value_and_interval_per_run(tmp_path: Path) -> None:
    runs = make_history(tmp_path, [good, broken])
    data = history_of(runs[0].parent)
    assert [c["label"] for c in data["cells"]] == ["temperature=0", "temperature=1.0"]
    point = data["runs"][0]["cells"][data["cells"][0]["key"]]["pass_rate"]
    assert point["value"] == 1.0 and point["n"] == 30 and point["ci95"][0] < 1.0 == point["ci95"][1]
    latency = data["runs"][0]["cells"][data["cells"][0]["key"]]["e2e_s.p50"]
    assert latency["value"] > 0 and latency["ci95"][0] <= latency["value"] <= latency["ci95"][1]
    # No case expects JSON: json_valid_rate has no value and is left out rather than shown as 0.
    assert "json_valid_rate" not in data["runs"][0]["cells"][data["cells"][0]["key"]]


def test_cells_match_by_params_and_a_new_grid_point_is_a_new_series(tmp_path: Path) -> None:
    first = make_history(tmp_path, [good, good], grid={"temperature": [0]})
    second = make_history(tmp_path, [good, broken], grid={"temperature": [0, 1.0]},
                          label=lambda k: f"20261202-10{k:02d}00-{k:04x}")
    for k, run_dir in enumerate(second):  # later than the first two
        manifest = json.loads((run_dir / "summary.json").read_text())
        manifest["started_at"] = f"2026-12-02T10:{k:02d}:00+00:00"
        (run_dir / "summary.json").write_text(json.dumps(manifest))
    data = history_of(first[0].parent)
    assert len(data["runs"]) == 4
    by_label = {c["label"]: c["key"] for c in data["cells"]}
    assert list(by_label) == ["temperature=0", "temperature=1.0"]
    assert [by_label["temperature=1.0"] in r["cells"] for r in data["runs"]] == [False, False, True, True]
    assert [by_label["temperature=0"] in r["cells"] for r in data["runs"]] == [True] * 4
    # The broken run regressed in both cells; the cell that first appeared in run 3 is judged from there on.
    assert marked(data) == [3]
    assert {r["cell"] for r in data["runs"][3]["regressions"]} == {"temperature=0", "temperature=1.0"}


def test_a_rebuild_judges_nothing_again_until_a_run_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = make_history(tmp_path, [good, good, broken])
    folder = runs[0].parent
    judged: list[str] = []
    real = pairs.judge_pair

    def counting(base: Any, new: Any, question: pairs.Question) -> pairs.PairVerdict:
        judged.append(new.run_id)
        return real(base, new, question)

    monkeypatch.setattr(pairs, "judge_pair", counting)
    first = build_history([str(folder)], folder)
    assert judged == [runs[1].name, runs[2].name]
    again = build_history([str(folder)], folder)
    assert judged == [runs[1].name, runs[2].name] and again == first
    # Re-scored (a new summary.json): the pairs it is in are judged again, and nothing else.
    summary = runs[1] / "summary.json"
    summary.write_text(summary.read_text() + " ")
    build_history([str(folder)], folder)
    assert judged[2:] == [runs[1].name, runs[2].name]
    # Other tolerances ask another question: judged again.
    build_history([str(folder)], folder, question=pairs.Question(rate_tolerance=0.5))
    assert len(judged) == 6


def test_runs_are_found_in_folders_and_globs_and_incomplete_ones_are_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = make_history(tmp_path, [good, good, broken])
    summary = json.loads((runs[1] / "summary.json").read_text())
    summary.update(complete=False, stop_reason="budget exhausted")
    (runs[1] / "summary.json").write_text(json.dumps(summary))
    unscored = runs[0].parent / "20261201-200000-dead"
    shutil.copytree(runs[0], unscored)
    (unscored / "summary.json").unlink()
    out = tmp_path / "hist"
    assert main(["history", str(runs[0].parent / "2026*"), "--out", str(out)]) == 0
    data = json.loads((out / "history.json").read_text())
    assert [r["run_id"] for r in data["runs"]] == [runs[0].name, runs[2].name]
    assert marked(data) == [1]  # judged against the run before it that completed
    assert sorted(Path(s["run_dir"]).name for s in data["skipped"]) == [runs[1].name, unscored.name]
    err = capsys.readouterr().err
    assert f"{runs[1].name}: incomplete: budget exhausted" in err and "no summary.json" in err
    assert main(["history", str(runs[0]), str(runs[2]), "--out", str(out)]) == 0
    assert len(json.loads((out / "history.json").read_text())["runs"]) == 2


def test_bad_input_is_a_usage_error_naming_the_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", str(tmp_path / "missing")]) == 2
    assert f"{tmp_path / 'missing'} is not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["history", str(tmp_path / "empty")]) == 2
    assert "holds no run" in capsys.readouterr().err
    assert main(["history", str(tmp_path / "nothing-*")]) == 2
    assert "no folder matches" in capsys.readouterr().err
    with pytest.raises(UsageError, match="no complete run"):
        runs = make_history(tmp_path, [good])
        (runs[0] / "summary.json").unlink()
        build_history([str(runs[0])], tmp_path)


def test_last_keeps_the_latest_runs(tmp_path: Path) -> None:
    runs = make_history(tmp_path, [good, broken, good, good])
    assert main(["history", str(runs[0].parent), "--last", "2"]) == 0
    data = json.loads((runs[0].parent / "history.json").read_text())
    assert [r["run_id"] for r in data["runs"]] == [runs[2].name, runs[3].name] and marked(data) == []


def test_the_page_links_each_report_and_names_the_run_that_broke(tmp_path: Path) -> None:
    runs = make_history(tmp_path, [good, broken, good], reports=True)
    write_history([str(runs[0].parent)], tmp_path / "out")
    html = (tmp_path / "out" / "history.html").read_text()
    for run in runs:
        link = f'href="../reports/echo/{run.name}/report.html"'
        assert link in html and (tmp_path / "out" / "../reports/echo" / run.name / "report.html").is_file()
    assert html.count('<circle class="mark"') == 2  # the broken run's mark in each cell's pass-rate chart
    assert f"first regressed in run {runs[1].name} (#2) against {runs[0].name}: 100.0% → 0.0%" in html
    assert "<script" not in html and 'content="default-src &#39;none&#39;; style-src' in html


def test_runs_judged_over_processes_give_the_same_history(tmp_path: Path) -> None:
    runs = make_history(tmp_path, [good, good, broken, good, broken])
    one = build_history([str(runs[0].parent)], tmp_path / "one", jobs=1)
    two = build_history([str(runs[0].parent)], tmp_path / "two", jobs=2)  # 4 pairs: a pool of 2 workers
    assert one == two and marked(one) == [2, 4]
