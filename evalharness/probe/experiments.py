"""The probe's experiments: one small controlled experiment per request parameter.

A server may accept a parameter and do nothing with it ("some parameters apply only to some models"), and
a seed that does nothing makes a determinism study meaningless. Each experiment compares outputs with and
without the parameter, on prompts chosen so that an honoured parameter must show:

    honored       the output changed the way the parameter says (the evidence shows how)
    ignored       accepted, but the output is what it would have been without it
    rejected      the server answered the request with an error
    inconclusive  the experiment could not tell (the evidence says why)

Outputs are compared for identity, so every request meets the server in the same cache state: the Prober
sends each one right after the same separator request (prefix caches otherwise make a prompt's output
depend on the request before it). Every request is small (≤ 48 output tokens). Requests carry the config's
``defaults.extra_body`` and ``defaults.thinking`` (mapped per ``target.thinking``), so a server that needs
either gets it; every other parameter is set by the experiment itself. Generated text is compared as
reasoning + answer, so a model that is still thinking when the cap cuts it off is compared on its thinking.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from evalharness import backend as kinds
from evalharness.backend import Outcome
from evalharness.errors import TargetUnavailable
from evalharness.probe.prober import OPEN, Finding, Prober, contrast, failure, quote, text_of
from evalharness.probe.ties import TIES, judge_collapse
from evalharness.scoring.checks import is_json, parse_json_strict, schema_errors

# Penalties act only on tokens the answer has already generated, so their prompt must make the greedy answer
# repeat tokens within SHORT tokens: counting repeats its separators whatever the model ("1. 1\n2. 2\n…" here).
# (A short poem did not: SmolLM2's 16 greedy tokens of one repeat nothing, so no penalty could change them.)
COUNTING = "Count from 1 to 20."
JSON_PROMPT = "Name a fruit. Answer in JSON."   # answered in prose without JSON mode; short JSON with it
CHOICES = ("ALPHA-7", "OMEGA-3")  # structured_outputs.choice: nothing the open prompt's answer would say
TOOL_PROMPT = "What is the weather in Paris right now? Use the get_weather tool."
THINK_PROMPT = "What is 17 plus 25?"
SHORT = 16          # output tokens for the sampling experiments
WARM = 1.0          # the "sampling is on" temperature
SEEDS = (11, 12)
TOP_LOGPROBS = 5    # alternatives per position when looking for tied tokens
JSON_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"fruit": {"type": "string"}},
                               "required": ["fruit"], "additionalProperties": False}
JSON_TOKENS = 48
WEATHER_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
FORCE_WEATHER: dict[str, Any] = {"type": "function", "function": {"name": "get_weather"}}

Experiment = Callable[[Prober], Awaitable[list[Finding]]]

#: How to let logit_bias be judged where the target has no tokenize endpoint of its own.
TOKENIZER_HINT = ("A gateway (LiteLLM, a load balancer) usually hides the model server's tokenizer: set "
                  "target.tokenizer_url to the model server's own root (e.g. http://127.0.0.1:8080) and probe again")

#: What would settle an inconclusive verdict, per parameter (said after the evidence). Some depend on the
#: model alone: then the hint says so rather than send the user looking for a setting.
SETTLE: dict[str, str] = {
    "temperature": "two identical requests at temperature 0 differed: probe while nothing else sends to the "
                   "server (batching changes the arithmetic)",
    "seed": "this model is too sure of the prompt for seeds to matter; a less certain model would show it",
    "top_k": "the model's greedy choice wins even when sampling, so there is nothing to filter on this prompt; "
             "a less certain model would show it",
    "top_a": "it needs seeds that reproduce: see the seed row",
    "max_tokens": "the answer ended before the cap; usage from the server (completion_tokens) would settle it",
    "stop": "the greedy answer has no word to stop at",
    "top_logprobs": "it settles once logprobs works (see its row)",
    "response_format.json_object": "the model answers this prompt in JSON even without JSON mode",
    "tools": "the model chose to answer in text; tool_choice (its own row) forces a call",
    "thinking": "set target.thinking.via to the way this server switches thinking (README: thinking)",
}
SETTLE["top_p"] = SETTLE["min_p"] = SETTLE["top_k"]
SETTLE["max_completion_tokens"] = SETTLE["max_tokens"]
TIES_HINT = ("ties come from rounding logits in reduced precision (bfloat16, float16): probe a server that "
             "computes in float32 (vLLM: --dtype float32) to see the filter itself")
FAILED_HINT = "probe again once the target answers reliably (for timeouts, raise run.timeout_s)"


def settle(finding: Finding) -> Finding:
    """An inconclusive finding with what would make it conclusive, where the evidence does not say already."""
    if finding.verdict != "inconclusive" or finding.parameter == "logit_bias":
        return finding
    hint = (FAILED_HINT if "the request failed" in finding.evidence
            else TIES_HINT if finding.evidence.startswith(TIES) else SETTLE.get(finding.parameter))
    if not hint:
        return finding
    return Finding(finding.parameter, finding.verdict, f"{finding.evidence} — to settle it: {hint}")


def greedy_of(p: Prober) -> Awaitable[Outcome]:
    """The baseline most experiments compare with: temperature 0 on the open prompt."""
    return p.shared("greedy", {"temperature": 0, "max_tokens": SHORT}, OPEN)


def seeded(p: Prober, seed: int) -> Awaitable[Outcome]:
    """A warm sample with a seed: the control for the sampling filters."""
    return p.shared(f"seed-{seed}", {"temperature": WARM, "seed": seed, "max_tokens": SHORT}, OPEN)


def counting(p: Prober) -> Awaitable[Outcome]:
    """The greedy count the penalties must change."""
    return p.shared("counting", {"temperature": 0, "max_tokens": SHORT}, COUNTING)


async def temperature_and_seed(p: Prober) -> list[Finding]:
    """Temperature 0 twice should match; seeded samples at temperature 1 should repeat per seed and differ across."""
    g1, g2, u1, u2, s1, s1b, s2 = await asyncio.gather(
        greedy_of(p), p.ask({"temperature": 0, "max_tokens": SHORT}),
        p.ask({"temperature": WARM, "max_tokens": SHORT}), p.ask({"temperature": WARM, "max_tokens": SHORT}),
        seeded(p, SEEDS[0]), p.ask({"temperature": WARM, "seed": SEEDS[0], "max_tokens": SHORT}),
        seeded(p, SEEDS[1]))
    out: list[Finding] = []
    failed = failure("temperature", g1) or failure("temperature", g2) or failure("temperature", u1)
    if failed:
        out.append(failed)
    else:
        samples = [text_of(o) for o in (u1, u2, s1, s2) if o.ok]
        warm = set(samples)
        if text_of(g1) != text_of(g2):
            out.append(Finding("temperature", "inconclusive",
                               f"temperature 0 is not reproducible here: {quote(text_of(g1))} then "
                               f"{quote(text_of(g2))}"))
        elif warm - {text_of(g1)}:
            out.append(Finding("temperature", "honored",
                               f"temperature 0 repeated byte-identically ({quote(text_of(g1))}); at temperature "
                               f"{WARM} {len(warm)} distinct outputs in {len(samples)} samples"))
        else:
            out.append(Finding("temperature", "ignored",
                               f"temperature {WARM} gave the greedy output every time ({quote(text_of(g1))})"))
    failed = failure("seed", s1) or failure("seed", s1b) or failure("seed", s2)
    if failed:
        out.append(failed)
    elif text_of(s1) != text_of(s1b):
        out.append(Finding("seed", "ignored", f"seed {SEEDS[0]} at temperature {WARM} gave different outputs: "
                                              f"{quote(text_of(s1))} then {quote(text_of(s1b))}"))
    elif text_of(s1) != text_of(s2):
        out.append(Finding("seed", "honored", f"seed {SEEDS[0]} twice at temperature {WARM}: identical "
                                              f"({quote(text_of(s1))}); seed {SEEDS[1]}: {quote(text_of(s2))}"))
    else:
        out.append(Finding("seed", "inconclusive", f"seeds {SEEDS[0]} and {SEEDS[1]} gave the same output "
                                                   f"({quote(text_of(s1))}): the prompt leaves too little to chance"))
    return out


async def _collapses_to_greedy(p: Prober, name: str, value: float) -> list[Finding]:
    """A filter set to keep only the best token makes a warm, seeded sample equal the greedy output; where it
    does not, ``ties.judge_collapse`` tells a filter that did nothing from one defeated by tied logits."""
    greedy, *controls = await asyncio.gather(greedy_of(p), *(seeded(p, s) for s in SEEDS))
    tested = await asyncio.gather(*(p.ask({"temperature": WARM, "seed": s, name: value, "max_tokens": SHORT})
                                    for s in SEEDS))
    for o in (greedy, *tested):
        failed = failure(name, o)
        if failed:
            return [failed]
    g = text_of(greedy)
    setting = f"{name}={value} at temperature {WARM} (seeds {SEEDS[0]}, {SEEDS[1]})"
    if all(text_of(o) == g for o in tested):
        if any(c.ok and text_of(c) != g for c in controls):
            return [Finding(name, "honored", f"{setting} gave the greedy output {quote(g)}; "
                                             f"without {name} the same seeds did not")]
        return [Finding(name, "inconclusive", f"the seeded samples equal the greedy output even without {name}")]
    scored = await greedy_logprobs(p)
    return [judge_collapse(name, setting, g, [text_of(o) for o in tested],
                           [text_of(c) if c.ok else None for c in controls], scored.logprobs if scored.ok else None)]


def greedy_logprobs(p: Prober) -> Awaitable[Outcome]:
    """The greedy output again with its log-probabilities, to find tied tokens (asked only when needed)."""
    return p.shared("greedy-logprobs", {"temperature": 0, "max_tokens": SHORT, "logprobs": True,
                                        "top_logprobs": TOP_LOGPROBS}, OPEN)


async def top_k(p: Prober) -> list[Finding]:
    return await _collapses_to_greedy(p, "top_k", 1)


async def top_p(p: Prober) -> list[Finding]:
    return await _collapses_to_greedy(p, "top_p", 0.01)


async def min_p(p: Prober) -> list[Finding]:
    return await _collapses_to_greedy(p, "min_p", 1.0)


async def top_a(p: Prober) -> list[Finding]:
    """top_a=1 drops tokens less likely than p(best)²: a warm seeded sample should change."""
    controls = await asyncio.gather(*(seeded(p, s) for s in SEEDS))
    again = await p.ask({"temperature": WARM, "seed": SEEDS[0], "max_tokens": SHORT})
    tested = await asyncio.gather(*(p.ask({"temperature": WARM, "seed": s, "top_a": 1.0, "max_tokens": SHORT})
                                    for s in SEEDS))
    for o in (*controls, *tested):
        failed = failure("top_a", o)
        if failed:
            return [failed]
    if text_of(again) != text_of(controls[0]):
        return [Finding("top_a", "inconclusive", "seeds do not reproduce here, so a change cannot be told apart "
                                                 "from chance")]
    if any(text_of(t) != text_of(c) for t, c in zip(tested, controls, strict=True)):
        changed = next(t for t, c in zip(tested, controls, strict=True) if text_of(t) != text_of(c))
        control = controls[tested.index(changed)]
        return [Finding("top_a", "honored", f"top_a=1.0 changed the seeded sample: "
                                            f"{contrast(text_of(changed), text_of(control))}")]
    return [Finding("top_a", "ignored", f"with top_a=1.0 both seeded samples were byte-identical to the same "
                                        f"seeds without it ({quote(text_of(controls[0]))})")]


async def _caps(p: Prober, name: str) -> list[Finding]:
    cap = 5
    o = await p.ask({"temperature": 0, name: cap})
    failed = failure(name, o)
    if failed:
        return [failed]
    used = (o.usage or {}).get("completion_tokens")
    counted = f"{used} completion tokens" if used is not None else "no usage reported"
    if isinstance(used, int) and used > cap:
        return [Finding(name, "ignored", f"{name}={cap}: {counted}, finish_reason {o.finish_reason}")]
    if o.finish_reason == "length":
        return [Finding(name, "honored", f"{name}={cap}: {counted}, finish_reason length "
                                         f"({quote(text_of(o))})")]
    return [Finding(name, "inconclusive", f"{name}={cap}: {counted}, finish_reason {o.finish_reason} — "
                                          f"the answer may have ended by itself")]


async def max_tokens(p: Prober) -> list[Finding]:
    return await _caps(p, "max_tokens")


async def max_completion_tokens(p: Prober) -> list[Finding]:
    return await _caps(p, "max_completion_tokens")


async def stop(p: Prober) -> list[Finding]:
    """A word from the middle of the greedy output, as a stop string, must cut the output just before it."""
    greedy = await greedy_of(p)
    failed = failure("stop", greedy, "the greedy baseline: ")
    if failed:
        return [failed]
    g = greedy.content or ""
    words = [w.strip(".,;:!?\"'") for w in g.split()[1:]]
    word = next((w for w in words if len(w) >= 4), None)
    if word is None:
        return [Finding("stop", "inconclusive", f"no word to stop at in the greedy output {quote(g)}")]
    o = await p.ask({"temperature": 0, "max_tokens": SHORT, "stop": [word]})
    failed = failure("stop", o)
    if failed:
        return [failed]
    got = o.content or ""
    if word not in got and len(got) < g.index(word) + len(word):
        return [Finding("stop", "honored", f"stop [{word!r}] ended the output at {quote(got)} "
                                           f"(finish_reason {o.finish_reason})")]
    return [Finding("stop", "ignored", f"stop [{word!r}], yet the output went on: {quote(got)}")]


async def logit_bias(p: Prober) -> list[Finding]:
    """Banning the first token of the greedy output (-100) must make the output start differently."""
    greedy = await greedy_of(p)
    failed = failure("logit_bias", greedy, "the greedy baseline: ")
    if failed:
        return [failed]
    g = greedy.content or ""
    tokenizer = p.tokenizer
    ids = await tokenizer.ids(g) if tokenizer and g else None
    if not ids or tokenizer is None:
        tried = ", ".join(tokenizer.tried) if tokenizer else "none"
        where = f" at {tokenizer.root}" if tokenizer else ""
        return [Finding("logit_bias", "inconclusive", f"no token ids to ban: the server offers no tokenize "
                                                      f"endpoint (tried {tried}{where}). {TOKENIZER_HINT}")]
    token = ids[0]
    o = await p.ask({"temperature": 0, "max_tokens": SHORT, "logit_bias": {str(token): -100}})
    failed = failure("logit_bias", o)
    if failed:
        return [failed]
    got = o.content or ""
    if got == g:
        return [Finding("logit_bias", "ignored", f"banning token {token} (the first of {quote(g)}) left the "
                                                 f"output unchanged")]
    first = await tokenizer.ids(got) if got else []
    if first and first[0] == token:
        return [Finding("logit_bias", "ignored", f"banned token {token} still starts the output {quote(got)}")]
    return [Finding("logit_bias", "honored", f"banning token {token}, the first of {quote(g)}, gave {quote(got)}")]


async def logprobs(p: Prober) -> list[Finding]:
    o = await p.ask({"temperature": 0, "max_tokens": 4, "logprobs": True, "top_logprobs": 3})
    both_failed = failure("top_logprobs", o)
    if both_failed:
        # Tell which of the two the server refuses.
        o = await p.ask({"temperature": 0, "max_tokens": 4, "logprobs": True})
    failed = failure("logprobs", o)
    if failed:
        return [failed, Finding("top_logprobs", "inconclusive", "needs logprobs, which failed")]
    entries = o.logprobs or []
    if not entries:
        return [Finding("logprobs", "ignored", "logprobs=true, but the response has no logprobs.content"),
                both_failed or Finding("top_logprobs", "ignored", "no logprobs in the response at all")]
    tokens = [str(e.get("token")) for e in entries]
    found = Finding("logprobs", "honored", f"{len(entries)} tokens with log-probabilities: {tokens}")
    if both_failed:
        return [found, both_failed]
    alternatives = [len(e.get("top_logprobs") or []) for e in entries]
    if all(n == 3 for n in alternatives):
        return [found, Finding("top_logprobs", "honored", f"top_logprobs=3: 3 alternatives at each of "
                                                          f"{len(entries)} positions")]
    return [found, Finding("top_logprobs", "ignored", f"top_logprobs=3, alternatives per position: {alternatives}")]


async def _penalty(p: Prober, name: str, value: float) -> list[Finding]:
    base, o = await asyncio.gather(counting(p), p.ask({"temperature": 0, "max_tokens": SHORT, name: value},
                                                      COUNTING))
    failed = failure(name, base, "the greedy baseline: ") or failure(name, o)
    if failed:
        return [failed]
    if text_of(o) != text_of(base):
        return [Finding(name, "honored", f"{name}={value} changed the greedy output: "
                                         f"{contrast(text_of(o), text_of(base))}")]
    evidence = f"{name}={value} left the greedy output of a count unchanged ({quote(text_of(o))})"
    if name == "repetition_penalty":
        # llama.cpp's server calls it repeat_penalty: say so when that name works and this one does not.
        alt = await p.ask({"temperature": 0, "max_tokens": SHORT, "extra_body": {"repeat_penalty": value}},
                          COUNTING)
        if alt.ok and text_of(alt) != text_of(base):
            evidence += (f"; llama.cpp's name repeat_penalty (via extra_body) does change it: "
                         f"{contrast(text_of(alt), text_of(base))}")
    return [Finding(name, "ignored", evidence)]


async def frequency_penalty(p: Prober) -> list[Finding]:
    return await _penalty(p, "frequency_penalty", 1.5)


async def presence_penalty(p: Prober) -> list[Finding]:
    return await _penalty(p, "presence_penalty", 1.5)


async def repetition_penalty(p: Prober) -> list[Finding]:
    return await _penalty(p, "repetition_penalty", 1.5)


async def response_formats(p: Prober) -> list[Finding]:
    """JSON mode and a JSON Schema on a prompt the model answers in prose by itself."""
    fmt_schema = {"type": "json_schema", "json_schema": {"name": "fruit", "strict": True, "schema": JSON_SCHEMA}}
    plain, obj, sch = await asyncio.gather(
        p.shared("json-plain", {"temperature": 0, "max_tokens": JSON_TOKENS}, JSON_PROMPT),
        p.ask({"temperature": 0, "max_tokens": JSON_TOKENS, "response_format": {"type": "json_object"}}, JSON_PROMPT),
        p.ask({"temperature": 0, "max_tokens": JSON_TOKENS, "response_format": fmt_schema}, JSON_PROMPT))
    baseline_json = plain.ok and is_json(plain.content)
    out: list[Finding] = []
    name = "response_format.json_object"
    failed = failure(name, obj)
    if failed:
        out.append(failed)
    elif is_json(obj.content):
        out.append(Finding(name, "inconclusive" if baseline_json else "honored",
                           f"strict JSON {quote(obj.content)}" + (
                               "; but the model answered in JSON without it too" if baseline_json
                               else f"; without it: {quote(plain.content)}")))
    elif obj.finish_reason == "length":
        out.append(Finding(name, "inconclusive",
                           f"cut off at {JSON_TOKENS} tokens before the JSON closed: {quote(obj.content)}"))
    else:
        out.append(Finding(name, "ignored", f"not JSON: {quote(obj.content)}"))
    name = "response_format.json_schema"
    failed = failure(name, sch)
    if failed:
        out.append(failed)
    else:
        errors = schema_errors(parse_json_strict(sch.content), JSON_SCHEMA) if is_json(sch.content) else ["not JSON"]
        if not errors:
            out.append(Finding(name, "honored", f"valid against the schema: {quote(sch.content)}"))
        elif sch.finish_reason == "length":
            out.append(Finding(name, "inconclusive", f"cut off at {JSON_TOKENS} tokens: {quote(sch.content)}"))
        else:
            out.append(Finding(name, "ignored", f"{'; '.join(errors[:2])}: {quote(sch.content)}"))
    rejected = out[-1].verdict == "rejected"
    so = await p.ask({"temperature": 0, "max_tokens": 4, "structured_outputs": True})
    out.append(failure("structured_outputs", so) or Finding(
        "structured_outputs", "inconclusive",
        "accepted without error; " + ("this server rejects json_schema, so there is nothing for it to switch"
                                      if rejected else "its effect on json_schema output is not measured")))
    out.append(await structured_choice(p))
    return out


async def structured_choice(p: Prober) -> Finding:
    """vLLM's object form, ``structured_outputs: {choice: [...]}``: the answer must be one of the choices,
    which the model would never write about the sea by itself."""
    name = "structured_outputs.choice"
    greedy, o = await asyncio.gather(greedy_of(p), p.ask({"temperature": 0, "max_tokens": SHORT,
                                                          "structured_outputs": {"choice": list(CHOICES)}}))
    failed = failure(name, o)
    if failed:
        return failed
    got = (o.content or "").strip()
    if got in CHOICES:
        if greedy.ok and (greedy.content or "").strip() in CHOICES:
            return Finding(name, "inconclusive", f"answered {quote(got)}, but the model says that without it too")
        return Finding(name, "honored", f"choice {list(CHOICES)} gave {quote(got)}; without it: "
                                        f"{quote(text_of(greedy))}")
    return Finding(name, "ignored", f"choice {list(CHOICES)}, yet the answer was {quote(text_of(o))}")


async def tools(p: Prober) -> list[Finding]:
    """A tool the prompt asks for (tool_choice unset), a forced call by name, and parallel_tool_calls=false."""
    free, forced, single = await asyncio.gather(
        p.ask({"temperature": 0, "max_tokens": 32, "tools": [WEATHER_TOOL]}, TOOL_PROMPT),
        p.ask({"temperature": 0, "max_tokens": 32, "tools": [WEATHER_TOOL], "tool_choice": FORCE_WEATHER},
              TOOL_PROMPT),
        p.ask({"temperature": 0, "max_tokens": 32, "tools": [WEATHER_TOOL], "tool_choice": FORCE_WEATHER,
               "parallel_tool_calls": False}, TOOL_PROMPT))
    out: list[Finding] = []
    failed = failure("tools", free)
    if failed:
        out.append(failed)
    elif free.tool_calls:
        out.append(Finding("tools", "honored", f"the model called {_calls(free)}"))
    else:
        out.append(Finding("tools", "inconclusive", f"accepted, but the model answered in text without calling "
                                                    f"get_weather (it may choose to): {quote(free.content)}"))
    failed = failure("tool_choice", forced)
    if failed:
        out.append(failed)
    elif any((c.get("function") or {}).get("name") == "get_weather" for c in forced.tool_calls or ()):
        out.append(Finding("tool_choice", "honored", f"forcing get_weather gave the call {_calls(forced)}, "
                                                     f"finish_reason {forced.finish_reason}"))
    else:
        out.append(Finding("tool_choice", "ignored", f"forcing get_weather gave no call to it: "
                                                     f"{quote(forced.content)}"))
    failed = failure("parallel_tool_calls", single)
    if failed:
        out.append(failed)
    else:
        n = len(single.tool_calls or [])
        out.append(Finding("parallel_tool_calls", "ignored" if n > 1 else "inconclusive",
                           f"parallel_tool_calls=false was accepted and gave {n} tool call(s); telling it apart "
                           f"needs a prompt the model answers with several calls" if n <= 1 else
                           f"parallel_tool_calls=false, yet {n} tool calls"))
    return out


def _calls(o: Outcome) -> str:
    calls = [(c.get("function") or {}) for c in o.tool_calls or ()]
    return ", ".join(f"{c.get('name')}({c.get('arguments')})" for c in calls)


async def verbosity(p: Prober) -> list[Finding]:
    greedy, low, high = await asyncio.gather(greedy_of(p), *(p.ask({"temperature": 0, "max_tokens": SHORT,
                                                                   "verbosity": v}) for v in ("low", "high")))
    for o in (greedy, low, high):
        failed = failure("verbosity", o)
        if failed:
            return [failed]
    if text_of(low) == text_of(high) == text_of(greedy):
        return [Finding("verbosity", "ignored", f"low, high and unset gave the same greedy output "
                                                f"({quote(text_of(greedy))})")]
    return [Finding("verbosity", "honored", f"low: {quote(text_of(low))}; high: {quote(text_of(high))}")]


async def thinking(p: Prober) -> list[Finding]:
    """thinking on should bring reasoning that thinking off does not (switched as target.thinking says)."""
    on, off = await asyncio.gather(*(p.ask({"temperature": 0, "max_tokens": 32}, THINK_PROMPT, thinking=mode)
                                     for mode in ("on", "off")))
    via = p.thinking.via
    for o in (on, off):
        failed = failure("thinking", o, f"via {via}: ")
        if failed:
            return [failed]
    r_on, r_off = len(on.reasoning or ""), len(off.reasoning or "")
    if r_on and not r_off:
        return [Finding("thinking", "honored", f"via {via}: on gave {r_on} characters of reasoning, off none "
                                               f"(answer {quote(off.content)})")]
    if r_on and r_off:
        return [Finding("thinking", "ignored", f"via {via}: reasoning both on ({r_on} chars) and off ({r_off} chars)")]
    if not r_on and not r_off and text_of(on) == text_of(off):
        return [Finding("thinking", "ignored", f"via {via}: no reasoning either way and the same answer "
                                               f"{quote(on.content)}")]
    return [Finding("thinking", "inconclusive", f"via {via}: reasoning on {r_on} chars, off {r_off} chars; "
                                                f"answers {quote(on.content)} / {quote(off.content)}")]


EXPERIMENTS: list[Experiment] = [
    temperature_and_seed, top_k, top_p, min_p, top_a, max_tokens, max_completion_tokens, stop, logit_bias,
    logprobs, frequency_penalty, presence_penalty, repetition_penalty, response_formats, tools, verbosity, thinking,
]


async def run_experiments(p: Prober) -> list[Finding]:
    """Every experiment, the first baseline on its own (it tells whether the target answers at all)."""
    first = await greedy_of(p)
    if not first.ok:
        status = first.status
        if first.error_kind in (kinds.CONNECT, kinds.TIMEOUT) or status in (401, 403, 404):
            raise TargetUnavailable(f"the target did not answer a plain request: {first.error}")
        raise TargetUnavailable(f"the target fails even a plain request (temperature 0, max_tokens {SHORT}), "
                                f"so nothing can be probed: {first.error}")
    results = await asyncio.gather(*(experiment(p) for experiment in EXPERIMENTS))
    return [settle(finding) for group in results for finding in group]
