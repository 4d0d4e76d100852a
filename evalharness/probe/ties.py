"""Judging a sampling filter that should collapse sampling to the greedy output (top_k=1, top_p≈0, min_p=1).

A filter that keeps only the most likely token makes a warm, seeded sample byte-identical to the greedy output
— unless several tokens are *tied* for most likely. In reduced precision (bfloat16, float16) logits are
rounded coarsely, ties are common, and an honoured ``top_k=1`` keeps every tied token: the constrained sample
follows the greedy output until the first tie, then drifts. Calling that "ignored" would send the user
looking for a bug that is not there; a false "ignored" is worse than "inconclusive". So a sample that differs
from greedy is called ignored only on evidence that the filter did nothing:

- the constrained samples are byte-identical to the same seeds without the filter, or they leave the greedy
  output as early as the unconstrained samples do, *and*
- the server's log-probabilities (where it gives them) show no tie where they leave it, *and*
- the constrained samples do not agree with each other (agreement under different seeds means the filter
  made the choice deterministic: greedy itself moved).

Anything else is "inconclusive (numerical ties …)" with the evidence. Pure functions: outputs in, verdict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evalharness.probe.prober import Finding, quote

#: Log-probabilities within this many nats are a tie: bfloat16 keeps 8 bits of mantissa, so logits around
#: 10–20 are rounded in steps of 0.06–0.125, and tokens that differ by less than that come out equal.
TIE_NATS = 0.01
TIES = "numerical ties"


@dataclass(frozen=True)
class Tie:
    """Two or more tokens tied for most likely at one position of the greedy output."""

    position: int                 # token index in the greedy output
    tokens: tuple[str, ...]
    logprob: float


def common_prefix(a: str, b: str) -> int:
    """Characters ``a`` and ``b`` share from the start."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def spells(entries: Sequence[dict[str, Any]] | None, greedy: str) -> bool:
    """Whether ``entries`` (``logprobs.content``) are the tokens of ``greedy``: log-probabilities of another
    output (a greedy answer that did not reproduce) cannot tell where this one has ties."""
    return bool(entries) and "".join(str(e.get("token") or "") for e in entries or ()) == greedy


def tie_at(entries: Sequence[dict[str, Any]], offset: int) -> Tie | None:
    """The tie at the token that holds character ``offset`` of the output ``entries`` spell; None if none."""
    start = 0
    for position, entry in enumerate(entries):
        token = str(entry.get("token") or "")
        if start + len(token) > offset:
            best: dict[str, float] = {}
            for alt in entry.get("top_logprobs") or ():
                value = alt.get("logprob")
                if isinstance(value, (int, float)) and alt.get("token") is not None:
                    best.setdefault(str(alt["token"]), float(value))
            if len(best) < 2:
                return None
            ranked = sorted(best.items(), key=lambda kv: -kv[1])
            top = ranked[0][1]
            tied = tuple(t for t, v in ranked if top - v <= TIE_NATS)
            return Tie(position, tied, top) if len(tied) > 1 else None
        start += len(token)
    return None


def judge_collapse(name: str, setting: str, greedy: str, tested: Sequence[str], controls: Sequence[str | None],
                   greedy_logprobs: Sequence[dict[str, Any]] | None) -> Finding:
    """The verdict on a filter whose constrained samples (``tested``, one per seed) are not all the greedy
    output. ``controls`` are the same seeds without the filter (None where that request failed);
    ``greedy_logprobs`` the server's log-probabilities of the greedy output (None where it gives none)."""
    entries = greedy_logprobs if spells(greedy_logprobs, greedy) else None
    reach = [common_prefix(t, greedy) for t in tested]
    left = min(range(len(tested)), key=lambda i: reach[i] if tested[i] != greedy else len(greedy) + 1)
    drifted = tested[left]
    where = reach[left]
    tie = tie_at(entries, where) if entries else None
    shown = f"{quote(drifted)}, not the greedy {quote(greedy)}"
    if tie is not None:
        tokens = " and ".join(repr(t) for t in tie.tokens)
        return Finding(name, "inconclusive",
                       f"{TIES}: {setting} followed the greedy output for {where} characters, then left it at token "
                       f"{tie.position}, where the server's log-probabilities tie {tokens} (log-probability "
                       f"{tie.logprob:.4f}): a filter that keeps the best token keeps them all — {shown}")
    if len(tested) > 1 and len(set(tested)) == 1:
        return Finding(name, "inconclusive",
                       f"{TIES}?: {setting} gave the same output for every seed, so the filter made sampling "
                       f"deterministic, yet not the greedy output: {shown}")
    known = [c for c in controls if c is not None]
    # Without controls, only a sample that leaves greedy at its first character is clear evidence.
    baseline = max((common_prefix(c, greedy) for c in known), default=0)
    if where > baseline:
        return Finding(name, "inconclusive",
                       f"{TIES}?: {setting} followed the greedy output for {where} characters, longer than the "
                       f"same seeds without it ({baseline}), then drifted: {shown}" + (
                           "" if entries else "; no log-probabilities of the greedy output to tell a tie"))
    same = len(known) == len(tested) and all(t == c for t, c in zip(tested, known, strict=True))
    because = ("byte-identical to the same seeds without it" if same
               else f"it left the greedy output after {where} characters, as the same seeds without it do"
               if known else "it left the greedy output at its first character")
    checked = "; the server's log-probabilities show no tie there" if entries else ""
    return Finding(name, "ignored", f"{setting} still sampled, {because}{checked}: {shown}")
