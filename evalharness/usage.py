"""Reading token usage: where a record's counts came from, cached prompt tokens, and pricing.

Pure functions of a record's ``usage`` and the config's price table (no I/O): the runner prices each
response with them, and scoring and reports read the stored records with them.

``usage_source`` says where a record's counts came from: ``"server"`` (the response's own ``usage``, used as
it is), ``"counted"`` (the server sent none, so the harness counted the tokens with the server's tokenizer;
see ``tokens.py``) or ``None`` (no counts at all). A figure summed over records of both kinds is ``"mixed"``
and says how many of each it holds: the two are never added up silently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, Literal, NotRequired, TypedDict, cast

from evalharness.types import MetricValue, Record, SourceMarks, Usage, UsageCheck

if TYPE_CHECKING:  # config imports the metric catalogue, which reads usage through this module
    from evalharness.config import Pricing

SERVER: Final = "server"
COUNTED: Final = "counted"
MIXED = "mixed"
UsageSource = Literal["server", "counted"]


class UsageSample(TypedDict):
    """What ``usage_check`` reads of a record (a probe's answers have only this much)."""

    usage: Usage | None
    usage_check: NotRequired[dict[str, Any] | None]


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def cached_tokens(usage: Usage | None) -> int | None:
    """``usage.prompt_tokens_details.cached_tokens`` (prompt tokens served from the server's prompt cache),
    or None where the server does not say. Never more than the prompt itself."""
    details = (usage or {}).get("prompt_tokens_details")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else None
    if cached is None:
        return None
    prompt = _count((usage or {}).get("prompt_tokens"))
    return max(0, min(cached, prompt)) if prompt is not None else max(0, cached)


def cached_rate(pricing: Pricing) -> float:
    """Price per 1,000 cached prompt tokens: ``cached_input_per_1k``, else the ordinary input price."""
    return pricing.input_per_1k if pricing.cached_input_per_1k is None else pricing.cached_input_per_1k


def cost_of(usage: Usage | None, pricing: Pricing) -> float | None:
    """What a response cost: uncached prompt tokens at the input price, cached ones at the cached price,
    completion tokens at the output price. None without usage."""
    if not usage:
        return None
    prompt = _count(usage.get("prompt_tokens")) or 0
    completion = _count(usage.get("completion_tokens")) or 0
    cached = cached_tokens(usage) or 0
    return ((prompt - cached) / 1000 * pricing.input_per_1k + cached / 1000 * cached_rate(pricing)
            + completion / 1000 * pricing.output_per_1k)


def cached_saving(usage: Usage | None, pricing: Pricing) -> float | None:
    """How much less the cached prompt tokens cost than at the input price; None when none were reported."""
    cached = cached_tokens(usage)
    if cached is None:
        return None
    return cached / 1000 * (pricing.input_per_1k - cached_rate(pricing))


def usage_source(record: Record) -> UsageSource | None:
    """Where a record's token counts came from (records stored before the field existed: their usage was
    the server's, when they have any)."""
    source = record.get("usage_source", SERVER if record.get("usage") else None)
    return SERVER if source == SERVER else COUNTED if source == COUNTED else None


def prompt_estimated(record: Record) -> bool:
    """Whether a record's prompt tokens were counted on an approximation of the chat template."""
    count = record.get("usage_count")
    return bool(isinstance(count, dict) and count.get("prompt_estimated"))


def source_fields(records: Iterable[Record]) -> SourceMarks:
    """How a figure summed over ``records`` is marked: ``source`` (server, counted or mixed), for a mixed one
    ``sources`` (records of each kind), and ``prompt_estimated`` where counted prompts were approximations.

    Empty when every record's counts are the server's (or there are none): such figures carry no mark.
    """
    return source_marks([source_of(r) for r in records])


def source_of(record: Record) -> tuple[UsageSource | None, bool]:
    """What ``source_fields`` reads of a record: its ``usage_source`` and whether its prompt was estimated."""
    return usage_source(record), prompt_estimated(record)


def source_marks(sources: Iterable[tuple[UsageSource | None, bool]]) -> SourceMarks:
    """``source_fields`` of records from their ``source_of`` (read once, for figures over several subsets)."""
    counted = Counter(sources)
    kinds: Counter[str] = Counter()
    for (source, _), n in counted.items():
        if source is not None:
            kinds[source] += n
    if not kinds or set(kinds) == {SERVER}:
        return {}
    out: SourceMarks = {"source": COUNTED if set(kinds) == {COUNTED} else MIXED}
    if out["source"] == MIXED:
        out["sources"] = {SERVER: kinds[SERVER], COUNTED: kinds[COUNTED]}
    if any(estimated for _, estimated in counted):
        out["prompt_estimated"] = True
    return out


def with_marks(metric: MetricValue, marks: SourceMarks) -> MetricValue:
    """``metric`` with ``marks`` (``source_fields``) added after its own fields, in place."""
    if "source" in marks:
        metric["source"] = marks["source"]
    if "sources" in marks:
        metric["sources"] = marks["sources"]
    if "prompt_estimated" in marks:
        metric["prompt_estimated"] = marks["prompt_estimated"]
    return metric


#: Relative difference between reported and counted completion tokens, over the sample, above which the
#: reported usage is taken for a gateway's estimate: re-tokenizing generated text can differ from what was
#: generated by a token now and then, which stays well below this over a sample of several responses.
ESTIMATE_THRESHOLD = 0.05


def _share(reported: int, counted: int) -> float | None:
    return abs(reported - counted) / counted if counted else None


def usage_check(records: Iterable[UsageSample]) -> UsageCheck | None:
    """Reported usage against tokens counted with the model server's tokenizer, on the records the run
    sampled for it (``usage_check`` on a record). None when none was sampled: without a tokenizer endpoint
    there is nothing to say.

    A gateway in front of the model (LiteLLM, for streams) may send usage it estimated with a tokenizer of its
    own instead of the model's counts: ``estimated_by_gateway`` is True when completion tokens (and prompt
    tokens, where the count applied the model's chat template) differ by more than ``ESTIMATE_THRESHOLD``.
    """
    sampled = [(usage, check) for r in records if (check := r.get("usage_check")) and (usage := r.get("usage"))]
    if not sampled:
        return None
    out: dict[str, Any] = {"sample": len(sampled), "endpoint": sampled[0][1].get("endpoint")}
    shares = []
    fields = ["completion_tokens"]
    if not any(check.get("prompt_estimated") for _, check in sampled):
        fields.append("prompt_tokens")
    for field in fields:
        reported = sum(_count(usage.get(field)) or 0 for usage, _ in sampled)
        counted = sum(_count(check.get(field)) or 0 for _, check in sampled)
        share = _share(reported, counted)
        out[field] = {"reported": reported, "counted": counted,
                      "difference": None if share is None else round(share, 4)}
        if share is not None:
            shares.append((share, field))
    worst = max(shares, default=None)
    out["estimated_by_gateway"] = bool(worst and worst[0] > ESTIMATE_THRESHOLD)
    if worst and out["estimated_by_gateway"]:
        field = worst[1]
        out["note"] = (f"usage looks estimated by a gateway: reported {field.replace('_', ' ')} differ by "
                       f"{100 * worst[0]:.0f}% from the model server's tokenizer ({out[field]['reported']} "
                       f"reported, {out[field]['counted']} counted, over {len(sampled)} responses)")
    return cast(UsageCheck, out)  # built by field name above: the keys of UsageCheck
