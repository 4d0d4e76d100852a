"""The probe on servers that expose its two old defects: tied logits in reduced precision, and vLLM's
``structured_outputs`` object (a bool there is an HTTP 500)."""

from __future__ import annotations

from typing import Any

import httpx

from evalharness.probe.ties import judge_collapse
from tests.unit.test_probe import GREEDY, FakeServer, probe_fake

FILTERS = ("top_k", "top_p", "min_p")
TIED = " shallow"   # as likely as GREEDY[TIE] in the tied server's rounded logits
TIE = 5


class TiedServer(FakeServer):
    """Honours top_k, top_p and min_p, but as bfloat16 does: at token ``TIE`` the greedy token and ``TIED``
    have equal logits, so a filter that keeps the best token keeps both, and the seed picks one."""

    def __init__(self, logprobs: bool = True) -> None:
        super().__init__(ignore=frozenset() if logprobs else frozenset({"logprobs"}))

    def tokens(self, body: dict[str, Any]) -> list[str]:
        tokens = super().tokens(body)
        seed = self.given(body, "seed")
        if tokens[:TIE] == GREEDY[:TIE] and self.given(body, "temperature") and seed is not None and seed % 2:
            tokens[TIE:] = [TIED, " water", " near", " the", " shore", "."]
        return tokens

    def answer(self, body: dict[str, Any], fmt: str | None) -> dict[str, Any]:
        out = super().answer(body, fmt)
        for position, entry in enumerate((out["choices"][0].get("logprobs") or {}).get("content") or []):
            alternatives = [{"token": entry["token"], "logprob": -0.6931}]
            if position == TIE:
                alternatives.append({"token": TIED, "logprob": -0.6931})
            entry["top_logprobs"] = [*alternatives, {"token": " rock", "logprob": -4.1}]
        return out


def test_tied_logits_make_the_filters_inconclusive_not_ignored() -> None:
    found = probe_fake(TiedServer())
    for name in FILTERS:
        assert found[name].verdict == "inconclusive", found[name]
        # The evidence names the tie the server's log-probabilities show, and where it is.
        assert found[name].evidence.startswith("numerical ties:")
        assert f"token {TIE}" in found[name].evidence and repr(TIED) in found[name].evidence
        assert found[name].evidence.endswith("--dtype float32) to see the filter itself")
    # The rest of the table is unchanged by the ties.
    assert found["temperature"].verdict == found["seed"].verdict == "honored"


def test_without_logprobs_a_longer_greedy_prefix_is_still_not_called_ignored() -> None:
    found = probe_fake(TiedServer(logprobs=False))
    for name in FILTERS:
        assert found[name].verdict == "inconclusive", found[name]
        assert "longer than the same seeds without it (0)" in found[name].evidence
        assert "no log-probabilities" in found[name].evidence


def test_a_filter_that_does_nothing_is_still_ignored_despite_the_logprobs_check() -> None:
    found = probe_fake(FakeServer(ignore=frozenset(FILTERS)))
    for name in FILTERS:
        assert found[name].verdict == "ignored", found[name]
        assert "byte-identical to the same seeds without it" in found[name].evidence
        assert "log-probabilities show no tie there" in found[name].evidence


def test_constrained_samples_that_agree_with_each_other_but_not_with_greedy_are_inconclusive() -> None:
    greedy = "The sea is vast."
    found = judge_collapse("top_k", "top_k=1", greedy, ["A calm sea.", "A calm sea."], ["Wind.", "Salt."], None)
    assert found.verdict == "inconclusive" and "same output for every seed" in found.evidence
    # Different outputs that leave greedy at once, as the unconstrained ones do: the filter did nothing.
    ignored = judge_collapse("top_k", "top_k=1", greedy, ["A calm sea.", "Blue."], ["Wind.", "Salt."], None)
    assert ignored.verdict == "ignored"
    # Log-probabilities of another output (greedy did not reproduce) are not read as evidence either way.
    other = [{"token": "A", "top_logprobs": [{"token": "A", "logprob": -1.0}, {"token": "B", "logprob": -1.0}]}]
    assert judge_collapse("top_k", "top_k=1", greedy, ["Wind.", "Blue."], [None, None], other).verdict == "ignored"


class VllmLikeServer(FakeServer):
    """Answers a bool ``structured_outputs`` as vLLM 0.32 does: HTTP 500 with its exception's message."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/chat/completions" and b'"structured_outputs":true' in request.content:
            return httpx.Response(500, json={"error": {"message": "'bool' object has no attribute 'get'",
                                                       "type": "InternalServerError", "param": None, "code": 500}})
        return super().__call__(request)


def test_a_server_error_is_a_rejection_quoting_the_body_and_the_object_form_is_probed() -> None:
    found = probe_fake(VllmLikeServer())
    bool_form = found["structured_outputs"]
    assert bool_form.verdict == "rejected"
    assert bool_form.evidence.startswith("server error: HTTP 500:")
    assert "'bool' object has no attribute 'get'" in bool_form.evidence
    choice = found["structured_outputs.choice"]
    assert choice.verdict == "honored" and "“OMEGA-3”" in choice.evidence


def test_a_server_that_ignores_the_object_form_is_caught() -> None:
    found = probe_fake(FakeServer(ignore=frozenset({"structured_outputs"})))
    assert found["structured_outputs.choice"].verdict == "ignored"
    assert "yet the answer was “The sea is vast" in found["structured_outputs.choice"].evidence
