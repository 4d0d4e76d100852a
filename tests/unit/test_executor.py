"""run.executor: what the Ray executor refuses (clear config errors), how it shares a run out over its workers,
and the error that says how to install Ray when it is missing."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from evalharness.cli import main
from evalharness.config import RunOptions, load_config
from evalharness.errors import ConfigError
from evalharness.rayrun import split
from evalharness.remote import share

BASE = """\
name: t
target: {base_url: http://127.0.0.1:9/v1, model: m}
suites: [suite.yaml]
defaults: {max_tokens: 8}
run: {executor: ray}
"""
TWO = BASE.replace("target: {base_url: http://127.0.0.1:9/v1, model: m}",
                   "targets:\n  - {name: a, base_url: http://127.0.0.1:9/v1, model: m}\n"
                   "  - {name: b, base_url: http://127.0.0.1:8/v1, model: m}")


@pytest.mark.parametrize(("text", "key", "line", "words"), [
    (TWO, "run.executor", 7, "runs one target; this config has 2 (targets: a, b)"),
    (BASE.replace("{executor: ray}", "{executor: ray, budget: 1.0}"), "run.executor", 5, "run.budget"),
    (BASE + "load:\n  arrival: poisson\n  rate: [2]\n  requests: 4\n", "run.executor", 5, "load schedules"),
    (BASE.replace("{executor: ray}", "{budget: 1.0}") + "load:\n  arrival: poisson\n  rate: [2]\n  requests: 4\n"
     "  workers: 2\n", "load.workers", 10, "does not enforce run.budget"),
    (BASE.replace("{executor: ray}", "{ray_address: 'ray://head:10001'}"), "run.ray_address", 5,
     "applies to run.executor: ray"),
    (BASE.replace("{executor: ray}", "{executor: dask}"), "run.executor", 5, "'local' or 'ray'"),
])
def test_what_the_ray_executor_refuses_names_key_and_line(write_config: Callable[..., Path], text: str, key: str,
                                                         line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(text))
    assert info.value.key == key and info.value.line == line
    assert words in str(info.value)


def test_a_ray_config_for_one_target_loads(write_config: Callable[..., Path]) -> None:
    run = load_config(write_config(BASE.replace("{executor: ray}", "{executor: ray, ray_workers: 3}"))).config.run
    assert (run.executor, run.ray_workers, run.ray_address) == ("ray", 3, None)


def test_each_worker_gets_its_share_of_concurrency_and_rate_limits() -> None:
    each = share(RunOptions(concurrency=5, rpm=60, tpm=9000, executor="ray"), 2)
    assert (each.concurrency, each.rpm, each.tpm, each.executor) == (3, 30, 4500, "local")
    assert share(RunOptions(concurrency=1), 4).concurrency == 1


def test_items_are_dealt_over_the_workers_once_each() -> None:
    slices = split(list(range(7)), 3)  # type: ignore[arg-type]
    assert slices == [[0, 3, 6], [1, 4], [2, 5]]
    assert split([1], 3) == [[1]]  # type: ignore[list-item]  # no idle worker is started


def test_missing_ray_says_how_to_install_it(write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    path = write_config(BASE.replace("run: {executor: ray}\n", ""))
    assert main(["run", str(path), "--executor", "ray", "--out", str(tmp_path / "run")]) == 2
    assert "pip install 'evalharness[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
