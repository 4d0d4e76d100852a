"""Report view functions and writers, without a browser: escaping, diffs, ranking, Pareto front, sizes."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import xml.etree.ElementTree as ET
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from evalharness import app
from evalharness.report import write_reports
from evalharness.report.boxes import latency_boxes
from evalharness.report.charts import CDF_POINTS, cdf_points, pareto_front
from evalharness.report.diff import CONTEXT, diff_segments
from evalharness.report.drilldown import MAX_PAIRS, TEXT_BUDGET, VARIANT_OVERHEAD, drilldown_view
from evalharness.report.heatmap import choose_axes, heatmap_metrics
from evalharness.report.html import render_html
from evalharness.report.junit import render_junit
from evalharness.report.markdown import MAX_BYTES, md, render_markdown
from evalharness.report.outcomes import build_outcomes
from evalharness.report.ranking import best_setting
from evalharness.report.results_csv import csv_field, safe_text
from evalharness.report.view import run_time
from evalharness.store import read_json, read_records
from evalharness.summary import build_summary
from tests.report.factory import HOSTILE, cell_comparison, load, make_run


def _rate(value: float, lo: float, hi: float, n: int = 20) -> dict[str, Any]:
    return {"value": value, "ci95": [lo, hi], "n": n}


def _cell(cell_id: str, params: dict[str, Any] | None = None, **metrics: dict[str, Any]) -> dict[str, Any]:
    return {"cell_id": cell_id, "label": cell_id, "params": params or {}, "n": 10, "metrics": metrics}


# --- escaping -------------------------------------------------------------------------------------------------

def test_a_hostile_answer_is_shown_as_text_and_never_as_markup(tmp_path: Path) -> None:
    manifest, summary, records = load(make_run(tmp_path))
    html = render_html(manifest, summary, records)
    assert HOSTILE not in html
    assert "&lt;script&gt;document.title=&#34;PWNED&#34;&lt;/script&gt;&lt;img src=x onerror=" in html
    # Our own script is the only one, and no <img> exists at all.
    assert html.count("<script") == 1 and "<img" not in html
    # Error messages and reasoning are model/server text too.
    assert "&lt;html&gt;&lt;body&gt;Bad Gateway" in html and "Thinking about &lt;it&gt;" in html
    # The diff of a divergent repeat escapes the part it marks.
    assert "<mark> and more &lt;b&gt;bold&lt;/b&gt;</mark>" in html


def test_the_page_allows_exactly_its_own_script_and_nothing_from_the_network(tmp_path: Path) -> None:
    manifest, summary, records = load(make_run(tmp_path))
    html = render_html(manifest, summary, records)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp is not None
    script = html[html.index("<script>") + len("<script>"):html.index("</script>")]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = unescape(csp.group(1))
    assert f"script-src 'sha256-{digest}'" in policy and "default-src 'none'" in policy
    assert not re.search(r'(src|href)="https?:', html)


def test_markdown_text_cannot_break_a_table_or_inject_html() -> None:
    assert md("a|b <script> *x*\nc") == "a\\|b &lt;script&gt; \\*x\\* c"
    assert md("response_format=json_object") == "response_format=json_object"


# --- the diff against the modal output ------------------------------------------------------------------------

def test_diff_marks_only_the_part_between_the_shared_prefix_and_suffix() -> None:
    segs = diff_segments("The capital is Paris.", "The capital is Lyon.")
    assert [(s.text, s.kind) for s in segs] == [("The capital is ", "same"), ("Lyon", "changed"), (".", "same")]


def test_diff_of_a_shorter_output_says_what_is_missing() -> None:
    segs = diff_segments("abc def", "abc")
    assert [s.kind for s in segs] == ["same", "elided"] and "4 characters missing" in segs[1].text


def test_diff_elides_a_long_shared_prefix_but_keeps_context_next_to_the_change() -> None:
    modal = "x" * 5000 + "END"
    segs = diff_segments(modal, "x" * 5000 + "FIN")
    assert segs[0].kind == "elided" and "4,840 identical characters" in segs[0].text
    assert segs[1].text == "x" * CONTEXT and segs[2].text == "FIN"


@given(st.text(max_size=40), st.text(max_size=40))
def test_diff_segments_rebuild_the_other_output_when_nothing_is_elided(modal: str, other: str) -> None:
    segs = diff_segments(modal, other)
    if not any(s.kind == "elided" for s in segs):
        assert "".join(s.text for s in segs) == other


# --- ranking and the Pareto front -----------------------------------------------------------------------------

def test_best_setting_is_clear_only_when_its_interval_is_above_every_other() -> None:
    clear = best_setting([_cell("a", pass_rate=_rate(0.95, 0.85, 0.99)), _cell("b", pass_rate=_rate(0.5, 0.3, 0.7))])
    assert clear is not None and clear.leader["cell_id"] == "a" and clear.clearly_best
    close = best_setting([_cell("a", pass_rate=_rate(0.6, 0.4, 0.8)), _cell("b", pass_rate=_rate(0.5, 0.3, 0.7)),
                          _cell("c", pass_rate=_rate(0.1, 0.0, 0.3))])
    assert close is not None and not close.clearly_best
    assert [c["cell_id"] for c in close.contenders] == ["b"]


def test_lower_is_better_metrics_rank_the_smallest_first() -> None:
    best = best_setting([_cell("slow", error_rate=_rate(0.3, 0.2, 0.4)), _cell("ok", error_rate=_rate(0.0, 0.0, 0.1))])
    assert best is not None and best.leader["cell_id"] == "ok" and best.clearly_best


def _dominated(p: tuple[float, float], q: tuple[float, float]) -> bool:
    return q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1])


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), max_size=12))
def test_pareto_front_is_exactly_the_undominated_points(raw: list[tuple[int, int]]) -> None:
    points = [(float(c), float(q)) for c, q in raw]
    expected = {i for i, p in enumerate(points) if not any(_dominated(p, q) for q in points)}
    assert pareto_front(points) == expected


def test_cdf_is_exact_for_small_samples_and_bounded_for_large_ones() -> None:
    small = cdf_points([1.0, 2.0])
    assert small == [(1.0, 0.0), (1.0, 0.0), (1.0, 0.5), (2.0, 0.5), (2.0, 1.0)]
    big = cdf_points([float(i) for i in range(50_000)])
    assert len(big) == CDF_POINTS + 1 and big[0] == (0.0, 0.0) and big[-1] == (49_999.0, 1.0)


# --- heat-maps ------------------------------------------------------------------------------------------------

def test_heatmap_axes_are_the_ones_the_metric_moves_along() -> None:
    cells = []
    for t in (0, 1):
        for seed in (None, 42):
            for rf in (None, "json"):
                value = 0.9 - 0.5 * t + (0.05 if rf else 0.0)  # seed changes nothing
                cells.append(_cell(f"{t}{seed}{rf}", {"temperature": t, "seed": seed, "response_format": rf},
                                   json_valid_rate=_rate(value, value - 0.1, value + 0.1)))
    json_valid = next(m for m in heatmap_metrics() if m.metric == "json_valid_rate")
    assert choose_axes(cells, json_valid) == ("temperature", "response_format", ["seed"])


# --- sampling keeps report.html bounded -----------------------------------------------------------------------

def test_the_drilldown_stays_within_its_budget_on_a_huge_run() -> None:
    cells = [{"cell_id": f"c{i}", "label": f"cell {i}", "params": {}} for i in range(20)]
    cases = {f"s/case{i}": {"expect": {"contains": "x"}, "schema": None, "extract": None} for i in range(400)}
    records = [{"item_id": f"c{c}/s/case{k}/{r}", "cell_id": f"c{c}", "suite": "s", "case_id": f"case{k}",
                "repeat": r, "ok": True, "content": f"{r % 7} " + "y" * 3000, "timings": {}}
               for c in range(20) for k in range(400) for r in range(3)]
    outcomes = build_outcomes({"cases": cases}, {"cells": cells}, records)
    keys = {f"c{i}": f"c{i}" for i in range(20)}
    view = drilldown_view(outcomes, keys, keys)
    shown = sum(len(v["text"]) + sum(len(s["text"]) for s in v["segments"] if s["kind"] != "elided")
                for case in view["cases"] for row in case["rows"] for v in row["variants"])
    assert shown <= TEXT_BUDGET + 2 * 2100  # the budget is checked before each output is added
    assert sum(len(case["rows"]) for case in view["cases"]) <= MAX_PAIRS + len(cells)
    assert "cases shown" in view["note"] and "answer text stops" in view["note"]


def test_short_answers_cannot_make_the_drilldown_big_either() -> None:
    cells = [{"cell_id": f"c{i}", "label": f"cell {i}", "params": {}} for i in range(30)]
    cases = {f"s/case{i}": {"expect": None, "schema": None, "extract": None} for i in range(100)}
    records = [{"item_id": f"c{c}/s/case{k}/{r}", "cell_id": f"c{c}", "suite": "s", "case_id": f"case{k}",
                "repeat": r, "ok": True, "content": f"answer {r}", "timings": {}}
               for c in range(30) for k in range(100) for r in range(8)]
    outcomes = build_outcomes({"cases": cases}, {"cells": cells}, records)
    keys = {f"c{i}": f"c{i}" for i in range(30)}
    variants = sum(len(row["variants"]) for case in drilldown_view(outcomes, keys, keys)["cases"]
                   for row in case["rows"])
    assert variants <= TEXT_BUDGET // VARIANT_OVERHEAD + 1


def test_summary_md_fits_a_github_step_summary_even_for_a_huge_grid() -> None:
    metrics = {"pass_rate": _rate(0.5, 0.4, 0.6), "e2e_s": {"p50": 1.0, "p95": 2.0, "n": 10}}
    cells = [{**_cell(f"c-{i:05d}", {"temperature": i}, **metrics), "label": f"temperature={i} " + "x" * 80}
             for i in range(30_000)]
    summary = {"name": "big", "run_id": "r", "target": {"model": "m"}, "complete": True, "passed": True,
               "totals": {"requests": 1, "planned": 1, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0,
                          "cost": 0.0, "currency": "CNY", "usage_reported": 1},
               "cells": cells, "gates": []}
    text = render_markdown(summary)
    assert len(text.encode()) < 1024 * 1024 and len(text.encode()) <= MAX_BYTES + 2000
    assert "more settings not shown" in text and "**Best setting:" in text


# --- comparisons ----------------------------------------------------------------------------------------------

def test_comparisons_are_rendered_when_the_summary_has_them_and_absent_otherwise(tmp_path: Path) -> None:
    manifest, summary, records = load(make_run(tmp_path))
    summary.pop("comparisons", None)  # a summary from before comparisons existed
    assert 'id="comparisons"' not in render_html(manifest, summary, records)
    summary["comparisons"] = cell_comparison(summary)
    html = render_html(manifest, summary, records)
    assert 'id="comparisons-table"' in html
    assert "+25.0 pp" in html and "-10.0 pp – +60.0 pp" in html and "×1.2" in html
    assert "finding-worse" in html and "inconclusive" in html


# --- junit.xml and results.csv --------------------------------------------------------------------------------

def test_junit_has_a_test_per_gate_and_per_case_expectation_with_reasons(tmp_path: Path) -> None:
    manifest, summary, records = load(make_run(tmp_path))
    root = ET.fromstring(render_junit(summary, build_outcomes(manifest, summary, records)))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"gates", "cases: qa", "cases: json", "cases: free"}
    assert len(suites["gates"].findall("testcase")) == len(summary["gates"])
    gate_failures = [f.get("message") for f in suites["gates"].iter("failure")]
    assert gate_failures and all(m and m.startswith("pass_rate = ") for m in gate_failures)
    qa = suites["cases: qa"]
    assert len(qa.findall("testcase")) == 4 and qa.get("failures") == "2"
    messages = [f.get("message") or "" for f in qa.iter("failure")]
    assert all("1 of 3 samples failed: does not contain 'Paris'" in m for m in messages)
    assert len(suites["cases: json"].findall(".//error")) == 2  # the failed requests at temperature 1
    assert len(suites["cases: free"].findall(".//skipped")) == 4  # no expect checks
    assert root.get("tests") == str(len(summary["gates"]) + 12)


def test_junit_stays_valid_xml_when_an_answer_holds_control_characters(tmp_path: Path) -> None:
    def answer(case: str, params: dict[str, Any], repeat: int) -> str:
        return "bad \x00\x1b[31m\ud800 ]]> </failure>"
    manifest, summary, records = load(make_run(tmp_path, answer=answer, cases={
        "qa/x": {"expect": {"contains": "Paris"}, "schema": None, "extract": None}}))
    root = ET.fromstring(render_junit(summary, build_outcomes(manifest, summary, records)))
    details = "".join(f.text or "" for f in root.iter("failure"))
    assert "]]> </failure>" in details and "\x00" not in details


def test_results_csv_has_one_row_per_record_with_flattened_timings(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, usage=True)
    manifest, summary, records = load(run_dir)
    write_reports(run_dir, manifest, summary, records)
    with (run_dir / "results.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(records) == 36
    first = rows[0]
    assert float(first["e2e_s"]) > 0 and int(first["completion_tokens"]) > 0 and first["param.temperature"] == "0"
    hostile = [r for r in rows if r["case_id"] == "hostile"]
    assert all(r["content"].startswith("Answer: <script>") and r["passed"] == "" for r in hostile)
    failed = [r for r in rows if r["ok"] == "false"]
    assert len(failed) == 2 and all(r["passed"] == "false" and r["error_kind"] == "http_5xx" for r in failed)


def test_compact_records_score_and_report_exactly_as_stored_ones(tmp_path: Path) -> None:
    # `evalharness report` holds records compactly (chunk times in arrays, attempts counted, texts shared):
    # every number and every report file must be what the records as stored give.
    run_dir = make_run(tmp_path, usage=True)
    manifest = read_json(run_dir / "manifest.json")
    outputs = {}
    for compact in (False, True):
        records = read_records(run_dir, compact=compact)
        summary = build_summary(manifest, records, complete=True)
        out = tmp_path / f"compact-{compact}"
        out.mkdir()
        write_reports(out, manifest, summary, records)
        files = ("results.csv", "junit.xml", "summary.md")
        outputs[compact] = (summary, *((out / name).read_bytes() for name in files))
    assert outputs[True] == outputs[False]
    assert {r["attempts"] for r in read_records(run_dir, compact=True)} == {1}


_csv_values = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(),
                        st.text(alphabet=st.sampled_from('ab ,"\r\n\t;=\'é\u2028'), max_size=12), st.text(max_size=8))


@given(st.lists(st.lists(_csv_values, min_size=2, max_size=6), max_size=5))
def test_csv_lines_are_what_csv_writer_writes(rows: list[list[Any]]) -> None:
    # results.csv is encoded field by field for speed; it must be byte for byte what csv.writer writes.
    expected = io.StringIO()
    csv.writer(expected).writerows(rows)
    assert "".join(",".join(map(csv_field, row)) + "\r\n" for row in rows) == expected.getvalue()


def test_results_csv_round_trips_text_with_commas_quotes_and_newlines(tmp_path: Path) -> None:
    tricky = 'He said "no", then:\r\nline two,\n\n"quoted"\u2028end'

    def answer(case: str, params: dict[str, Any], repeat: int) -> str:
        return tricky
    run_dir = make_run(tmp_path, answer=answer, cases={"qa/x": {"expect": None, "schema": None, "extract": None}})
    manifest, summary, records = load(run_dir)
    write_reports(run_dir, manifest, summary, records)
    with (run_dir / "results.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(records) and {r["content"] for r in rows} == {tricky}
    sent = {r["item_id"]: r["params"] for r in records}
    assert all(json.loads(row["params"]) == sent[row["item_id"]] for row in rows)


def test_latency_boxes_draw_one_box_per_measured_setting_at_its_percentiles() -> None:
    ttft = [[0.1 * i for i in range(1, 101)], [], [0.5, 0.5, 0.7]]
    svg = str(latency_boxes(["#1", "#2", "#3"], ttft, [[1.0, 2.0, 3.0]] * 3))
    assert svg.count('<g class="box">') == 2 + 3  # #2 measured no TTFT; all three have e2e
    assert "#1: p5 595 ms, p25 2.58 s, median 5.05 s, p75 7.53 s, p95 9.50 s" in svg
    assert latency_boxes(["#1"], [[]], [[]]) is None


def test_spreadsheet_formulas_in_model_output_are_defused() -> None:
    assert safe_text("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert safe_text("-1+2") == "'-1+2" and safe_text("Paris") == "Paris" and safe_text(None) == ""


# --- the command ----------------------------------------------------------------------------------------------

def test_evalharness_report_rebuilds_every_report_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = make_run(tmp_path)
    code = app.report(str(run_dir))
    assert code == 1  # the synthetic run fails its pass_rate gate
    out = capsys.readouterr().out
    for name in ("report.html", "summary.md", "junit.xml", "results.csv"):
        assert (run_dir / name).stat().st_size > 0 and str(run_dir / name) in out
    assert "FAILED" in (run_dir / "report.html").read_text(encoding="utf-8")


# --- runs at the edges still render ---------------------------------------------------------------------------

@pytest.mark.parametrize("grid", [{}, {"temperature": [0, 1.0]}])
def test_a_run_without_a_two_axis_grid_renders(tmp_path: Path, grid: dict[str, list[Any]]) -> None:
    run_dir = make_run(tmp_path, grid=grid)
    manifest, summary, records = load(run_dir)
    html = render_html(manifest, summary, records)
    assert 'id="cdf-e2e"' in html
    # With one setting there is nothing to choose: no "best setting".
    assert ('id="best-label"' in html) == bool(grid)
    assert ('id="heatmaps"' in html) == bool(grid)
    if not grid:
        assert "Only one setting was measured" in html


def test_a_run_where_every_request_failed_says_so_instead_of_crashing(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, answer=lambda case, params, repeat: None)
    manifest, summary, records = load(run_dir)
    html = render_html(manifest, summary, records)
    assert "No completed request has latency timings" in html
    assert "none can be recommended" in html and 'id="best-label"' not in html
    assert "request failed · http_5xx" in html
    write_reports(run_dir, manifest, summary, records)
    root = ET.parse(run_dir / "junit.xml").getroot()
    assert root.get("errors") == "12"


def test_run_time_runs_to_the_response_that_ended_last_not_the_one_that_started_last() -> None:
    records = [{"started_at": "2026-11-27T10:00:00.000+00:00", "timings": {"e2e_s": 1.0}},
               {"started_at": "2026-11-27T10:00:05.000+00:00", "timings": {"e2e_s": 30.0}},  # ends last
               {"started_at": "2026-11-27T10:00:20.000+00:00", "timings": {"e2e_s": 0.5}},
               {"started_at": "2026-11-27T10:00:21.000+00:00", "timings": {}}]
    assert run_time(records) == 35.0
    assert run_time([]) is None


@pytest.mark.parametrize("usage", [True, False])
def test_the_cost_axis_is_money_when_known_and_says_what_stands_in_when_not(tmp_path: Path, usage: bool) -> None:
    manifest, summary, records = load(make_run(tmp_path, usage=usage))
    html = render_html(manifest, summary, records)
    if usage:
        assert "cost per 1k requests (CNY)" in html and "stands in for it" not in html
    else:
        assert "Cost is unknown (the server reported no token usage), so median end-to-end latency stands in" in html
    assert 'class="pt front-pt"' in html
