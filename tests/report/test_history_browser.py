"""history.html in a real browser (headless Chromium over the DevTools protocol): it renders without console
errors, fetches nothing, marks the run that broke, and hostile text in labels and run ids stays inert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from evalharness.history import write_history
from tests.history.runs import broken, good, make_history
from tests.report.cdp import CHROMIUM, Browser
from tests.report.factory import HOSTILE

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"{CHROMIUM} is missing (Debian: apt-get install chromium; .ci/run installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser() as b:
        yield b


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("history-browser")
    runs = make_history(root, [good, good, broken, good], grid={"stop": [HOSTILE, "<b>bold</b>"]}, reports=True)
    summary = json.loads((runs[0] / "summary.json").read_text())
    summary["run_id"] = f"first {HOSTILE}"
    (runs[0] / "summary.json").write_text(json.dumps(summary))
    write_history([str(runs[0].parent)], root / "history")
    return root / "history" / "history.html"


def count(browser: Browser, selector: str) -> int:
    n: int = browser.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")
    return n


def test_the_history_renders_without_console_errors_or_network(browser: Browser, page: Path) -> None:
    browser.open(page)
    assert browser.problems() == []
    assert count(browser, "#runs-table tbody tr") == 4
    assert count(browser, "#runs-table tbody tr.regressed") == 1
    assert browser.evaluate("document.querySelector('#runs-table tbody tr.regressed td').textContent") == "3"
    assert count(browser, "details.cell") == 2 and count(browser, "details.cell[open]") == 2
    assert count(browser, "figure[data-metric='pass_rate'] svg circle.mark") == 2  # one per cell, on run 3
    assert count(browser, "svg path.band") >= 2 and count(browser, "svg path.trend") >= 2
    assert count(browser, "#runs-table a[href$='report.html']") == 4
    # Nothing was fetched: the page is one file (its CSP would refuse anything else anyway).
    assert browser.evaluate("performance.getEntriesByType('resource').length") == 0


def test_the_run_that_broke_is_named_under_its_chart(browser: Browser, page: Path) -> None:
    browser.open(page)
    marks: list[str] = browser.evaluate(
        "Array.from(document.querySelectorAll(\"figure[data-metric='pass_rate'] .marks li\")).map(l => l.textContent)")
    assert len(marks) == 2 and all(m.startswith("first regressed in run 20261201-100200-0002 (#3)") for m in marks)
    tip: str = browser.evaluate("document.querySelector('circle.mark title').textContent")
    assert "100.0% → 0.0%" in tip


def test_hostile_text_stays_inert_and_reads_as_text(browser: Browser, page: Path) -> None:
    browser.open(page)
    assert "PWNED" not in browser.evaluate("document.title")
    assert not browser.evaluate("document.body.hasAttribute('data-pwned')")
    assert count(browser, "script") == 0 and count(browser, "img") == 0 and count(browser, "b") == 0
    visible: str = browser.evaluate("document.body.innerText")
    assert f"first {HOSTILE}" in visible and "<b>bold</b>" in visible
    assert browser.problems() == []
