"""Model-graded checks with a scripted judge: majority verdicts, unparsable votes, agreement figures checked
against statsmodels and by hand, judgements stored once and re-scored without a call, resumes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import evalharness
from evalharness.errors import ConfigError
from evalharness.flow import rescore
from evalharness.judging import SYSTEM, fleiss_kappa, majority
from evalharness.store import read_json

# What the target answers each case, and the judge's scripted replies to that answer, repeat by repeat.
ANSWERS = {"two-of-three": "alpha", "one-of-three": "beta", "garbled": "gamma", "unanimous": "delta"}
PASS, FAIL = '{"reason": "it does", "pass": true}', '{"reason": "it does not", "pass": false}'
REPLIES = {"alpha": [PASS, PASS, FAIL], "beta": [PASS, FAIL, "I cannot decide"], "gamma": ["yes!", "sure", "ok"],
           "delta": [PASS, PASS, PASS]}


class Scripted:
    """The target and the judge in one: the n-th call of the same judge request gets the n-th reply."""

    def __init__(self, *, judge_fails: bool = False) -> None:
        self.seen: Counter[str] = Counter()
        self.judge_calls = 0
        self.judge_fails = judge_fails

    async def complete(self, body: dict[str, Any]) -> evalharness.Outcome:
        messages = body["messages"]
        if messages[0]["content"] != SYSTEM:
            case = messages[-1]["content"].removeprefix("Case: ")
            return evalharness.Outcome(ok=True, status=200, content=ANSWERS[case], finish_reason="stop", e2e_s=0.01)
        self.judge_calls += 1
        if self.judge_fails:
            return evalharness.Outcome(ok=False, status=400, error_kind="http_error", error="HTTP 400: no judge")
        key = json.dumps(body, sort_keys=True)
        answer = messages[1]["content"].split("Answer to grade:\n")[1].split("\n")[0]
        reply = REPLIES[answer][self.seen[key] % 3]
        self.seen[key] += 1
        return evalharness.Outcome(ok=True, status=200, content=reply, finish_reason="stop", e2e_s=0.01,
                                   usage={"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110})

    async def aclose(self) -> None:
        pass


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps({"id": c}) + "\n" for c in ANSWERS))
    (tmp_path / "suite.yaml").write_text(
        'name: graded\ndataset: {path: rows.jsonl}\n'
        'case: {id: "{{ row.id }}", prompt: "Case: {{ row.id }}", expect: {judge: "It answers {{ row.id }}."}}\n')
    return tmp_path


def config(repeats: int = 3, **judge: Any) -> dict[str, Any]:
    return {"name": "graded", "target": {"base_url": "http://127.0.0.1:9/v1", "model": "scripted"},
            "suites": ["suite.yaml"], "repeats": 2, "run": {"max_retries": 0},
            "pricing": {"currency": "USD", "input_per_1k": 1.0, "output_per_1k": 2.0},
            "judges": {"default": {"target": "target", "repeats": repeats, **judge}}}


def test_the_verdict_is_the_majority_and_an_unparsable_reply_is_never_a_pass(suite: Path) -> None:
    backend = Scripted()
    run = evalharness.run(config(), base_dir=suite, out=suite / "run", backend=backend)
    summary = read_json(suite / "run" / "summary.json")
    tally = summary["cells"][0]["checks"]
    # Two repeats of each of 4 cases; identical answers share their judgements: 4 answers x 3 judge repeats.
    assert backend.judge_calls == 12
    assert run.cells[0].metric("pass_rate").value == pytest.approx(4 / 8)  # alpha and delta pass
    assert any(t["passed"] == 4 and t["failed"] == 4 for t in tally.values()), tally
    lines = [json.loads(x) for x in (suite / "run" / "judgements.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and all(x["request"]["response_format"] == {"type": "json_object"} for x in lines)
    report = (suite / "run" / "summary.md").read_text()
    assert "unparsable" in (suite / "run" / "junit.xml").read_text()
    assert "Judges" in report
    html = (suite / "run" / "report.html").read_text()
    # The answers' drill-down shows each sample's verdict, votes and reasons, passes included.
    assert "judge by default: pass (2 pass, 1 fail) — it does; it does not" in html
    assert "judge by default: unparsable (3 unparsable)" in html


def test_majority_of_all_votes() -> None:
    assert majority(["pass", "pass", "fail"]) == "pass"
    assert majority(["pass", "unparsable", "fail"]) == "fail"
    assert majority(["pass", "unparsable", "unparsable"]) == "fail"
    assert majority(["unparsable"] * 3) == "unparsable"
    assert majority(["pass", "pass", "missing", "missing"]) == "fail"  # a tie is no majority
    assert majority(["missing"] * 3) == "unjudged"


def test_agreement_per_cell_matches_a_hand_count_and_statsmodels(suite: Path) -> None:
    from statsmodels.stats.inter_rater import fleiss_kappa as reference

    run = evalharness.run(config(), base_dir=suite, out=suite / "run", backend=Scripted())
    # Votes per graded sample (pass, fail, unparsable): alpha (2,1,0), beta (1,1,1), gamma (0,0,3),
    # delta (3,0,0), each case twice.
    table = [[2, 1, 0], [1, 1, 1], [0, 0, 3], [3, 0, 0]] * 2
    unanimous = run.cells[0].metric("judge_agreement")
    assert (unanimous.value, unanimous.n) == (pytest.approx(4 / 8), 8)
    kappa = run.cells[0].metric("judge_kappa").value
    assert kappa == pytest.approx(reference(table, method="fleiss"))
    # By hand: P_i = (sum n_ij^2 - 3) / 6 -> 1/3, 0, 1, 1; P = 7/12; p_j = (12, 4, 8) / 24; Pe = 224/576.
    assert kappa == pytest.approx((7 / 12 - 224 / 576) / (1 - 224 / 576))
    assert fleiss_kappa([[3, 0, 0], [3, 0, 0]]) is None  # every vote alike: undefined, not 1


def test_report_rescores_from_stored_judgements_without_calling(suite: Path) -> None:
    evalharness.run(config(), base_dir=suite, out=suite / "run", backend=Scripted())
    before = read_json(suite / "run" / "summary.json")
    stored = (suite / "run" / "judgements.jsonl").read_bytes()
    again = rescore(suite / "run").summary
    assert again["cells"][0]["metrics"]["pass_rate"] == before["cells"][0]["metrics"]["pass_rate"]
    assert again["judges"] == before["judges"]
    assert (suite / "run" / "judgements.jsonl").read_bytes() == stored
    # The verdicts come from that file: without it nothing is judged, and nothing passes.
    (suite / "run" / "judgements.jsonl").unlink()
    assert rescore(suite / "run").summary["cells"][0]["metrics"]["pass_rate"]["value"] == 0.0


def test_judge_tokens_and_cost_are_reported_apart(suite: Path) -> None:
    evalharness.run(config(), base_dir=suite, out=suite / "run", backend=Scripted())
    summary = read_json(suite / "run" / "summary.json")
    assert summary["totals"]["prompt_tokens"] == 0  # the target reported no usage
    judges = summary["judges"]
    assert (judges["requests"], judges["prompt_tokens"], judges["completion_tokens"]) == (12, 1200, 120)
    assert judges["cost"] == pytest.approx(12 * (0.1 + 0.02))


def test_a_failed_judge_is_unjudged_and_a_resume_asks_only_for_what_is_missing(suite: Path) -> None:
    failing = Scripted(judge_fails=True)
    first = evalharness.run(config(), base_dir=suite, out=suite / "run", backend=failing)
    assert failing.judge_calls == 12
    assert first.cells[0].metric("pass_rate").value == 0.0
    assert "not judged" in (suite / "run" / "junit.xml").read_text() or \
        "no judge" in (suite / "run" / "junit.xml").read_text()
    working = Scripted()
    resumed = evalharness.run(config(), base_dir=suite, resume=suite / "run", backend=working)
    assert working.judge_calls == 12  # every failed one again, once
    assert resumed.cells[0].metric("pass_rate").value == pytest.approx(0.5)
    again = Scripted()
    evalharness.run(config(), base_dir=suite, resume=suite / "run", backend=again)
    assert again.judge_calls == 0


def test_a_score_judge_passes_at_its_minimum(suite: Path) -> None:
    (suite / "suite.yaml").write_text(
        'name: graded\ndataset: {path: rows.jsonl}\n'
        'case: {id: "{{ row.id }}", prompt: "Case: {{ row.id }}", '
        'expect: {judge_score: {rubric: "It answers {{ row.id }}.", min: 0.5}}}\n')

    class Scores(Scripted):
        async def complete(self, body: dict[str, Any]) -> evalharness.Outcome:
            out = await super().complete(body)
            if body["messages"][0]["content"] == SYSTEM:
                assert '"score"' in body["messages"][1]["content"]
                answer = body["messages"][1]["content"].split("Answer to grade:\n")[1].split("\n")[0]
                out.content = json.dumps({"reason": "r", "score": {"alpha": 0.9, "beta": 0.2}.get(answer, 2)})
            return out

    run = evalharness.run(config(repeats=1), base_dir=suite, out=suite / "run", backend=Scores())
    assert run.cells[0].metric("pass_rate").value == pytest.approx(2 / 8)  # a score of 2 is unparsable
    assert run.cells[0].metric("judge_agreement").value is None  # one repeat: no agreement to measure


def test_a_check_naming_an_unknown_judge_is_a_config_error(suite: Path) -> None:
    cfg = config()
    cfg["judges"] = {"strict": cfg["judges"]["default"]}
    with pytest.raises(ConfigError, match="judge 'default', which the config does not define"):
        evalharness.run(cfg, base_dir=suite, backend=Scripted())
    cfg["judges"] = {"default": {"target": "other"}}
    with pytest.raises(ConfigError, match="no target named 'other'"):
        evalharness.run(cfg, base_dir=suite, backend=Scripted())


class Pairwise(Scripted):
    """Setting temperature 1 answers better; the judge either sees that or always picks the first answer."""

    def __init__(self, *, biased: bool) -> None:
        super().__init__()
        self.biased = biased

    async def complete(self, body: dict[str, Any]) -> evalharness.Outcome:
        messages = body["messages"]
        if messages[0]["content"] != SYSTEM:
            text = "a careful, good answer" if body.get("temperature") == 1 else "meh"
            return evalharness.Outcome(ok=True, status=200, content=text, finish_reason="stop", e2e_s=0.01)
        self.judge_calls += 1
        first = messages[1]["content"].split("First answer:\n")[1].split("\n")[0]
        better = "first" if self.biased or "good" in first else "second"
        return evalharness.Outcome(ok=True, status=200, content=json.dumps({"reason": "r", "better": better}),
                                   finish_reason="stop", e2e_s=0.01)


def pairwise_config() -> dict[str, Any]:
    cfg = config(repeats=1)
    cfg["suites"] = ["plain.yaml"]
    cfg["grid"] = {"temperature": [0, 1]}
    cfg["repeats"] = 2
    cfg["judge_compare"] = [{"a": {"temperature": 0}, "b": {"temperature": 1}, "rubric": "Which is more helpful?"}]
    return cfg


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    (tmp_path / "plain.yaml").write_text("name: plain\ncases:\n" + "".join(
        f"  - {{id: q{i}, prompt: 'Question {i}'}}\n" for i in range(4)))
    return tmp_path


def test_pairwise_a_judge_that_always_picks_the_first_answer_finds_no_winner(plain: Path) -> None:
    backend = Pairwise(biased=True)
    evalharness.run(pairwise_config(), base_dir=plain, out=plain / "run", backend=backend)
    found = read_json(plain / "run" / "summary.json")["judge_comparisons"][0]
    # 4 cases x 2 repeats = 8 pairs, each shown in both orders; the repeats' answers are the same, so the
    # requests are too, and are sent once.
    assert backend.judge_calls == 4 * 2
    assert (found["pairs"], found["a_wins"], found["b_wins"], found["ties"]) == (8, 0, 0, 8)
    assert found["position_bias"] == 8 and found["verdict"] == "inconclusive"


def test_pairwise_a_judge_that_sees_the_better_answer_says_b_is_better(plain: Path) -> None:
    evalharness.run(pairwise_config(), base_dir=plain, out=plain / "run", backend=Pairwise(biased=False))
    found = read_json(plain / "run" / "summary.json")["judge_comparisons"][0]
    assert (found["b_wins"], found["a_wins"], found["ties"]) == (8, 0, 0)
    assert found["p_value"] == pytest.approx(2 / 2 ** 8) and found["verdict"] == "b better"


def test_preference_needs_both_orders_to_agree() -> None:
    from evalharness.pairwise import preference

    assert preference("first", "second") == "a"  # A shown first won, and A shown second won
    assert preference("second", "first") == "b"
    assert preference("first", "first") == "tie"  # the first position won both times: position bias
    assert preference("tie", "second") == "tie"
    assert preference("unparsable", "first") == "unparsable"


def test_judge_compare_must_pick_one_cell_each(plain: Path) -> None:
    cfg = pairwise_config()
    cfg["judge_compare"][0]["a"] = {}
    with pytest.raises(ConfigError, match="matches 2 cells"):
        evalharness.run(cfg, base_dir=plain, backend=Pairwise(biased=True))


def test_a_change_within_the_judges_own_disagreement_is_not_a_regression(suite: Path) -> None:
    from evalharness.regress import judge
    from evalharness.runs import load_run

    evalharness.run(config(), base_dir=suite, out=suite / "run", backend=Scripted())
    run = load_run(suite / "run")  # judgements attached from the run's folder
    # Minority shares of the votes: alpha 1/3, beta 2/3, gamma and delta 0 (each case twice).
    noise = run.judge_noise(run.cells[0]["cell_id"])
    assert noise == pytest.approx((1 / 3 + 2 / 3) / 4)
    before = {(f"s/c{i}", r): 1.0 for i in range(20) for r in range(5)}
    after = {key: 0.0 if key[1] == 0 else 1.0 for key in before}  # a 20-point drop
    assert judge("pass_rate", before, after)["verdict"] == "regressed"
    noisy = judge("pass_rate", before, after, noise=noise)
    assert noisy["verdict"] != "regressed" and noisy["judge_noise"] == pytest.approx(noise)
    assert judge("pass_rate", before, after, noise=0.02)["verdict"] == "regressed"  # well beyond the noise


def test_a_judge_whose_key_variable_is_unset_stops_the_run_before_anything_is_sent(
        suite: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JUDGE_KEY_FOR_TEST", raising=False)
    cfg = config()
    cfg["judges"] = {"default": {"base_url": "https://judge.example/v1", "model": "big", "api_key_env":
                                 "JUDGE_KEY_FOR_TEST"}}
    backend = Scripted()
    with pytest.raises(ConfigError, match="JUDGE_KEY_FOR_TEST is not set") as err:
        evalharness.run(cfg, base_dir=suite, out=suite / "run", backend=backend)
    assert err.value.key == "judges.default.api_key_env"
    assert backend.judge_calls == 0 and not (suite / "run" / "results.jsonl").exists()


def test_a_judge_reuses_the_target_it_names_among_several(suite: Path) -> None:
    """``target: NAME`` sends the judge's requests to that target (its backend here), not to the first one."""
    first, second = Scripted(), Scripted()
    cfg = config()
    del cfg["target"]
    cfg["targets"] = [{"name": "first", "base_url": "http://127.0.0.1:9/v1", "model": "one"},
                      {"name": "second", "base_url": "http://127.0.0.1:9/v1", "model": "two"}]
    cfg["judges"]["default"]["target"] = "second"
    evalharness.run(cfg, base_dir=suite, out=suite / "run", backend={"first": first, "second": second})
    assert first.judge_calls == 0 and second.judge_calls > 0
    manifest = read_json(suite / "run" / "manifest.json")
    assert manifest["judges"]["default"]["model"] == "two"


def test_a_judge_naming_no_target_of_the_config_is_a_config_error(suite: Path) -> None:
    cfg = config()
    cfg["judges"]["default"]["target"] = "elsewhere"
    with pytest.raises(ConfigError, match="no target named 'elsewhere'"):
        evalharness.run(cfg, base_dir=suite, out=suite / "run", backend=Scripted())
