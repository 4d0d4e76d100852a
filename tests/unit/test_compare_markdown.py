"""``compare --format markdown|json``: regressions first, regressed cases named, the rest folded, fit for a
pull request comment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalharness import api
from evalharness.cli import main
from evalharness.report import compare_md
from evalharness.report.compare_md import comparison_markdown
from tests.history.runs import broken, good, make_history, one_case_broken


def test_regressions_come_first_and_the_rest_is_folded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new = make_history(tmp_path, [good, broken])
    assert main(["compare", str(base), str(new), "--format", "markdown"]) == 1
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0] == "### ❌ evalharness echo: 2 regressions"
    assert f"Run `{new.name}` against baseline `{base.name}` — did this suite change?" in lines[2]
    table = lines.index("| setting | metric | before | after | change | interval | verdict |")
    assert lines[table + 2].startswith("| temperature=0 | `pass_rate` | 100.0% | 0.0% | -100.0 pts | [")
    assert lines[table + 2].endswith("| ❌ **regressed** |") and lines[table + 3].startswith("| temperature=1.0 |")
    details = lines.index(next(line for line in lines if line.startswith("<details>")))
    assert details > table + 3 and lines[-1] == "</details>"
    assert "regressed" not in "\n".join(lines[details:])  # only what did not regress is folded
    assert "| temperature=0 | `e2e_s.p50` |" in "\n".join(lines[details:])
    assert "- not compared: `json_valid_rate` (" in text


def test_a_case_that_regressed_on_its_own_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new = make_history(tmp_path, [good, one_case_broken], grid={"temperature": [0]}, repeats=10)
    assert main(["compare", str(base), str(new), "--format", "markdown"]) == 1
    text = capsys.readouterr().out
    assert "**1 case regressed on its own** (Fisher's exact test per case, Holm-adjusted):" in text
    assert "- echo/w0 pass_rate \\[temperature=0\\]: 10/10 → 0/10 (Holm-adjusted p = " in text
    assert text.index("echo/w0") < text.index("<details>")


def test_no_regression_is_a_one_line_verdict_with_everything_folded(tmp_path: Path) -> None:
    base, new = make_history(tmp_path, [good, good])
    text = comparison_markdown(api.compare(base, new).result)
    assert text.startswith("### ✅ evalharness echo: no regression\n")
    assert text.index("<details><summary>every comparison: ") < text.index("| temperature=0 | `pass_rate` |")


def test_json_prints_what_json_file_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new = make_history(tmp_path, [good, broken])
    assert main(["compare", str(base), str(new), "--format", "json", "--json", str(tmp_path / "c.json")]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "c.json").read_text())
    assert [r["metric"] for r in printed["regressions"]] == ["pass_rate", "pass_rate"]


def test_a_long_comparison_is_cut_to_fit_a_comment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, new = make_history(tmp_path, [good, broken])
    monkeypatch.setattr(compare_md, "MAX_CHARS", 1200)
    text = comparison_markdown(api.compare(base, new).result)
    assert "❌ **regressed**" in text  # regressions are never cut
    assert "more rows (all in `compare --format json`)" in text


def test_hostile_labels_cannot_break_the_table_or_inject_html(tmp_path: Path) -> None:
    base, new = make_history(tmp_path, [good, broken], grid={"stop": ["<img src=x onerror=alert(1)>|x"]})
    text = comparison_markdown(api.compare(base, new).result)
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;\\|x" in text
