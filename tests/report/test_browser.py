"""report.html in a real browser (headless Chromium over the DevTools protocol): it renders without console
errors, shows its key parts, its script works under the page's CSP, and a hostile answer stays inert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalharness.report import write_reports
from tests.report.cdp import CHROMIUM, Browser
from tests.report.factory import HOSTILE, cell_comparison, load, make_run

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = make_run(tmp_path_factory.mktemp("browser"), usage=True)
    manifest, summary, records = load(run_dir)
    summary["comparisons"] = cell_comparison(summary)
    write_reports(run_dir, manifest, summary, records)
    return run_dir / "report.html"


def count(browser: Browser, selector: str) -> int:
    n: int = browser.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")
    return n


def text(browser: Browser, selector: str) -> str:
    value: str = browser.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")
    return value


def test_the_report_renders_its_key_parts_without_console_errors(browser: Browser, report: Path) -> None:
    browser.open(report)
    assert browser.problems() == []
    assert "FAILED" in text(browser, "#verdict") and "6 of 8 passed" in text(browser, "#verdict")
    assert text(browser, "#best-label") == "temperature=0 response_format=unset"
    assert count(browser, "#leaderboard tbody tr") == 4
    assert count(browser, ".heatmap:not([hidden]) td.sq") == 4  # one visible metric, a square per cell
    assert count(browser, "#cdf-ttft polyline.series") == 4 and count(browser, "#cdf-e2e polyline.series") == 4
    assert count(browser, "#pareto circle") == 4
    assert count(browser, "#determinism-matrix tbody tr") == 3
    assert count(browser, "#comparisons-table tbody tr") == 1
    assert count(browser, "#cells tbody tr") == 4
    assert count(browser, "details.case") == 3 and count(browser, "details.case mark") >= 2


def test_which_setting_wins_is_on_the_first_screen(browser: Browser, report: Path) -> None:
    browser.open(report)
    bottom: float = browser.evaluate("document.querySelector('#leaderboard tbody tr').getBoundingClientRect().bottom")
    height: float = browser.evaluate("window.innerHeight")
    assert bottom < height


def test_a_hostile_answer_stays_inert_and_reads_as_text(browser: Browser, report: Path) -> None:
    browser.open(report)
    browser.evaluate("document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
    assert "PWNED" not in browser.evaluate("document.title")
    assert not browser.evaluate("document.body.hasAttribute('data-pwned')")
    assert count(browser, "img") == 0 and count(browser, "script") == 1
    visible: str = browser.evaluate("document.body.innerText")
    assert HOSTILE in visible and "<b>bold</b>" in visible
    assert browser.problems() == []


def test_tables_sort_and_the_heatmap_metric_can_be_switched(browser: Browser, report: Path) -> None:
    browser.open(report)
    heads = "document.querySelectorAll('#cells thead tr:last-child th')"
    column = f"Array.from({heads}).findIndex(th => th.textContent === 'pass')"
    rows = "Array.from(document.querySelectorAll('#cells tbody tr'))"
    values = f"{rows}.map(r => parseFloat(r.cells[{column}].dataset.sort))"
    browser.evaluate(f"{heads}[{column}].click()")
    ascending: list[float] = browser.evaluate(values)
    assert ascending == sorted(ascending) and ascending[0] < ascending[-1]
    browser.evaluate(f"{heads}[{column}].click()")
    assert browser.evaluate(values) == sorted(ascending, reverse=True)
    shown = "document.querySelector('.heatmap:not([hidden])').dataset.metric"
    assert browser.evaluate(shown) == "pass_rate"
    browser.evaluate("var s = document.getElementById('heatmap-metric'); s.value = 'e2e_s-p50';"
                     "s.dispatchEvent(new Event('change'))")
    assert browser.evaluate(shown) == "e2e_s-p50" and count(browser, ".heatmap:not([hidden])") == 1
    assert browser.problems() == []


def test_the_console_check_catches_a_page_that_errors(browser: Browser, tmp_path: Path) -> None:
    # The checks above mean something only if a broken page is caught.
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><title>x</title><script>throw new Error('boom')</script>", encoding="utf-8")
    browser.open(page)
    problems: list[Any] = browser.problems()
    assert any("boom" in p for p in problems)
