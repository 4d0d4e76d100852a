"""The live progress line a user watches during a run."""

from __future__ import annotations

import io

from evalharness.progress import Progress, progress_line


def test_progress_line_shows_counts_rate_and_eta() -> None:
    line = progress_line(done=120, total=400, errors=2, elapsed=40.0)
    assert line.startswith("[120/400]  30%")
    assert "2 errors" in line and "3.0 req/s" in line
    assert "0:40 elapsed" in line and "ETA 1:33" in line


def test_progress_line_before_the_first_result_has_no_eta() -> None:
    assert progress_line(done=0, total=10, errors=0, elapsed=0.0).endswith("ETA ?")
    assert "1 error " in progress_line(done=5, total=10, errors=1, elapsed=3700.0) + " "
    assert "1:01:40 elapsed" in progress_line(done=5, total=10, errors=1, elapsed=3700.0)


def test_progress_stays_quiet_when_not_a_terminal() -> None:
    assert Progress(stream=io.StringIO()).enabled is False
