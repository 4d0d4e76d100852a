"""Targets as an axis: config, plan, a run on several targets through backends, comparisons and reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import evalharness
from evalharness import backend as kinds
from evalharness.cli import main
from evalharness.config import load_config
from evalharness.errors import ConfigError
from evalharness.params import build_body
from evalharness.plan import make_plan
from evalharness.probe.side_by_side import render_side_by_side, side_by_side_table

ONE = """\
name: t
target: {base_url: http://127.0.0.1:9/v1, model: m}
suites: [suite.yaml]
grid:
  temperature: [0, 1]
repeats: 2
"""

MANY = """\
name: t
targets:
  - {name: a, base_url: http://127.0.0.1:9/v1, model: m}
  - name: b
    base_url: http://127.0.0.1:9/v1
    model: m2
    thinking: {via: soft_switch}
    extra_body: {repeat_penalty: 1.1}
    params: {seed: null, top_k: k}
suites: [suite.yaml]
defaults: {seed: 7, top_k: 5, thinking: off}
grid:
  temperature: [0, 1]
repeats: 2
"""


class Canned:
    """A backend answering every request with ``text``, or failing every one as a refused connection."""

    def __init__(self, text: str = "Paris", *, down: bool = False) -> None:
        self.text, self.down, self.bodies = text, down, []  # type: ignore[var-annotated]

    async def complete(self, body: dict[str, Any]) -> evalharness.Outcome:
        self.bodies.append(body)
        await asyncio.sleep(0.001)  # as a server would, it lets the other targets' requests go meanwhile
        if self.down:
            return evalharness.Outcome(ok=False, error_kind=kinds.CONNECT, error="connection refused", e2e_s=0.001)
        return evalharness.Outcome(ok=True, status=200, content=self.text, finish_reason="stop", e2e_s=0.001)

    async def aclose(self) -> None:
        pass


def test_one_target_keeps_its_cell_ids_and_params(write_config: Callable[..., Path]) -> None:
    plain = make_plan(load_config(write_config(ONE)))
    named = make_plan(load_config(write_config(ONE.replace("model: m}", "model: m, name: x}"))))
    assert [c.cell_id for c in plain.cells] == [c.cell_id for c in named.cells]
    assert all("target" not in c.params for c in plain.cells)
    assert {i.target for i in plain.items} == {"m"} and {i.target for i in named.items} == {"x"}
    assert [i.item_id for i in plain.items] == [i.item_id for i in named.items]


def test_every_grid_point_runs_on_every_target_shaped_its_way(write_config: Callable[..., Path]) -> None:
    plan = make_plan(load_config(write_config(MANY)))
    assert [c.label for c in plan.cells] == ["target=a temperature=0", "target=a temperature=1",
                                             "target=b temperature=0", "target=b temperature=1"]
    assert len(plan.items) == 4 * 2 * 2 and len({i.item_id for i in plan.items}) == len(plan.items)
    a = next(i for i in plan.items if i.target == "a")
    b = next(i for i in plan.items if i.target == "b")
    body_a, body_b = build_body("m", a.messages, a.params, stream=False), build_body("m2", b.messages, b.params,
                                                                                     stream=False)
    assert "target" not in body_a and body_a["seed"] == 7 and body_a["top_k"] == 5
    assert body_a["chat_template_kwargs"] == {"enable_thinking": False}  # a's thinking.via: the default
    # b: seed dropped, top_k renamed, its extra_body merged, thinking as a soft switch in the message.
    assert "seed" not in body_b and body_b["k"] == 5 and "top_k" not in body_b and body_b["repeat_penalty"] == 1.1
    assert b.messages[-1]["content"].endswith("/no_think") and "chat_template_kwargs" not in body_b


@pytest.mark.parametrize(("change", "key", "words"), [
    (("name: b\n", "name: a\n"), "targets[1].name", "two targets are named 'a'"),
    (("suites:", "compare_to: c\nsuites:"), "compare_to", "no target is named 'c'"),
    (("params: {seed: null, top_k: k}", "params: {sead: null}"), "targets[1].params.sead", "unknown parameter"),
    (("repeats: 2", "repeats: 2\ngates: [{metric: pass_rate, where: {target: z}, min: 1}]"),
     "gates[0].where.target", "no target is named 'z'"),
    (("name: t\n", "name: t\ntarget: {kind: local}\n"), None, "not both"),
    (("    model: m2\n", "    model: m2\n    pricing: {currency: EUR}\n"), "targets[1].pricing.currency",
     "one currency"),
])
def test_target_mistakes_name_key_and_line(write_config: Callable[..., Path], change: tuple[str, str],
                                           key: str | None, words: str) -> None:
    path = write_config(MANY.replace(*change))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert words in str(info.value)
    if key is not None:
        assert info.value.key == key and info.value.line is not None


def test_a_target_that_is_down_fails_its_own_cells(write_config: Callable[..., Path]) -> None:
    config = MANY + "gates:\n  - {metric: pass_rate, where: {target: a}, min: 1}\n"
    run = evalharness.run(str(write_config(config)), backend={"a": Canned(), "b": Canned(down=True)})
    assert not run.complete and "target b failed" in (run.stop_reason or "")
    status = {t["name"]: t for t in run.summary["targets"]}
    assert status["a"]["status"] == "ok" and status["a"]["requests"] == 8 and status["a"]["errors"] == 0
    assert status["b"]["status"] == "failed" and "failed the same way" in (status["b"]["reason"] or "")
    assert {r["target"] for r in run.records if r["ok"]} == {"a"}
    # The gate on target a judges only a's cells, which passed the case that asks for Paris.
    judged = [g for g in run.gates if g.gate == 0]
    assert len(judged) == 2 and all(g.cell and g.cell.startswith("target=a") for g in judged)
    assert main(["report", str(run.run_dir)]) == 3  # re-scored, it is still incomplete
    markdown = (run.run_dir / "summary.md").read_text()
    assert "### Targets" in markdown and "| b | m2 | failed: target unreachable: 5 requests in a row" in markdown


def test_an_optional_target_that_is_down_leaves_the_run_complete(write_config: Callable[..., Path]) -> None:
    config = MANY.replace("  - name: b\n", "  - name: b\n    optional: true\n")
    run = evalharness.run(str(write_config(config)), backend={"a": Canned(), "b": Canned(down=True)})
    assert run.complete and run.passed
    assert [t["status"] for t in run.summary["targets"]] == ["ok", "failed"]


def test_targets_are_compared_per_grid_point_against_compare_to(write_config: Callable[..., Path]) -> None:
    config = MANY.replace("suites:", "compare_to: b\nsuites:").replace("repeats: 2", "repeats: 4")
    run = evalharness.run(str(write_config(config)), backend={"a": Canned("Paris"), "b": Canned("London")})
    compared = run.summary["target_comparisons"]
    assert [(c["target"], c["reference_target"], c["point"]) for c in compared] == [
        ("a", "b", "temperature=0"), ("a", "b", "temperature=1")]
    pass_rate = compared[0]["metrics"]["pass_rate"]
    assert pass_rate["before"] == 0.0 and pass_rate["after"] == 0.5  # a answers the capital case right
    html = (run.run_dir / "report.html").read_text()
    assert '<section id="targets">' in html and "a</b> vs b" in html


def test_an_optional_target_without_its_key_is_skipped(write_config: Callable[..., Path],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("NO_SUCH_KEY_FOR_B", raising=False)
    path = write_config(MANY.replace("    model: m2\n", "    model: m2\n    optional: true\n"
                                                        "    api_key_env: NO_SUCH_KEY_FOR_B\n"))
    assert main(["validate", str(path)]) == 0
    assert "target b skipped: NO_SUCH_KEY_FOR_B (its API key) is not set" in capsys.readouterr().out
    run = evalharness.run(str(path), backend={"a": Canned()})
    assert run.complete and {c.params["target"] for c in run.cells} == {"a"}
    assert [t["status"] for t in run.summary["targets"]] == ["ok", "skipped"]
    # Not optional, the missing key stops the run before anything is sent.
    with pytest.raises(ConfigError, match="NO_SUCH_KEY_FOR_B"):
        evalharness.run(str(write_config(MANY.replace("    model: m2\n", "    model: m2\n"
                                                                       "    api_key_env: NO_SUCH_KEY_FOR_B\n"))),
                        backend={"a": Canned()})


def test_compare_match_target(write_config: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    old = evalharness.run(str(write_config(ONE)), backend=Canned("Paris"), out="old")
    new = evalharness.run(str(write_config(MANY)), backend={"a": Canned("Paris"), "b": Canned("Paris")}, out="new")
    assert main(["compare", str(old.run_dir), str(new.run_dir)]) == 2  # no cell has the same params
    capsys.readouterr()
    assert main(["compare", str(old.run_dir), str(new.run_dir), "--match-target", "m=b", "--json", "c.json"]) == 0
    result = json.loads(Path("c.json").read_text())
    assert [c["label"] for c in result["cells"]] == ["temperature=0", "temperature=1"]
    assert main(["compare", str(old.run_dir), str(new.run_dir), "--match-target", "m=zz"]) == 2
    assert "has no target 'zz'" in capsys.readouterr().err


def test_probe_side_by_side_marks_where_targets_differ() -> None:
    docs = [{"name": "llama", "results": [{"parameter": "seed", "verdict": "honored", "evidence": "same"},
                                          {"parameter": "top_k", "verdict": "honored", "evidence": "x"}]},
            {"name": "vllm", "results": [{"parameter": "seed", "verdict": "honored", "evidence": "same"},
                                         {"parameter": "top_k", "verdict": "ignored", "evidence": "<y>"}]},
            {"name": "hosted", "skipped": "skipped: KEY (its API key) is not set", "results": []}]
    table = side_by_side_table(docs).splitlines()
    assert table[0].split() == ["parameter", "llama", "vllm", "hosted"]
    assert table[2].split() == ["seed", "honored", "honored", "–"]
    assert table[3].split() == ["*", "top_k", "honored", "ignored", "–"]
    assert "hosted: skipped: KEY (its API key) is not set" in table
    html = render_side_by_side({"harness_version": "0", "targets": docs})
    assert '<tr class="differs"><td><code>top_k' in html and "&lt;y&gt;" in html


def test_the_budget_bounds_the_whole_run_not_each_target(write_config: Callable[..., Path]) -> None:
    # No usage in the answers: each request is charged its worst case, about 0.05 at these prices.
    config = MANY.replace("repeats: 2", "repeats: 2\npricing: {input_per_1k: 1, output_per_1k: 1}\n"
                                         "run: {budget: 0.25, concurrency: 1}\ndefaults: {max_tokens: 16}")
    config = config.replace("defaults: {seed: 7, top_k: 5, thinking: off}\n", "")
    run = evalharness.run(str(write_config(config)), backend={"a": Canned(), "b": Canned()})
    assert not run.complete and "budget" in (run.stop_reason or "")
    assert sum(r["budget_charge"] for r in run.records) <= 0.25 and len(run.records) < 16
    assert {r["target"] for r in run.records} == {"a", "b"}  # both targets spent from the one budget


def test_a_bundled_server_that_does_not_start_fails_only_its_target(write_config: Callable[..., Path]) -> None:
    config = MANY.replace("""  - name: b
    base_url: http://127.0.0.1:9/v1
    model: m2
""", """  - name: b
    kind: local
    startup_timeout_s: 0.01
""")
    run = evalharness.run(str(write_config(config)), backend={"a": Canned()})
    status = {t["name"]: t for t in run.summary["targets"]}
    assert status["a"]["status"] == "ok" and status["a"]["requests"] == 8
    assert status["b"]["status"] == "failed" and "did not answer within 0.01 s" in (status["b"]["reason"] or "")
    assert not run.complete and (run.run_dir / "server-b.log").exists()


def test_each_target_is_priced_with_its_own_table(write_config: Callable[..., Path]) -> None:
    class Billed(Canned):
        async def complete(self, body: dict[str, Any]) -> evalharness.Outcome:
            return evalharness.Outcome(ok=True, status=200, content="Paris", finish_reason="stop", e2e_s=0.001,
                                       usage={"prompt_tokens": 1000, "completion_tokens": 0})

    config = MANY.replace("    model: m2\n", "    model: m2\n    pricing: {input_per_1k: 2}\n").replace(
        "suites:", "pricing: {input_per_1k: 1}\nsuites:")
    run = evalharness.run(str(write_config(config)), backend={"a": Billed(), "b": Billed()})
    cost = {t: sum(r["cost"] for r in run.records if r["target"] == t) for t in ("a", "b")}
    assert cost == {"a": 8.0, "b": 16.0}
    assert [round(c["cost_ratio"], 6) for c in run.summary["target_comparisons"]] == [2.0, 2.0]
