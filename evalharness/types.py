"""The shapes of the data that flows from stage to stage: a record (one line of results.jsonl), a metric
value, a cell summary, a gate verdict, a comparison, the manifest and the run summary (summary.json).

They are ``TypedDict``s, so they are plain dicts at run time: the files are written and read exactly as
before, and mypy checks what each stage reads of what the one before wrote. The attempt's own outcome is a
dataclass (``backend.Outcome``), since it never leaves the process. ``dict[str, Any]`` remains only at the
JSON edges: a response body, a line read back, a YAML document.

Keys marked ``NotRequired`` are absent in some files (older runs, compact records, keys only some
verdicts carry); readers use ``.get`` for them. This module imports nothing of the project, so every stage
can import it.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

#: A comparison's verdict: ``None`` when the data cannot say.
Verdict = Literal["regressed", "improved", "unchanged", "inconclusive"]


# --- results.jsonl ----------------------------------------------------------------------------------------

class Attempt(TypedDict):
    """One attempt at a request (a record keeps every one; its timings are those of the last)."""

    status: int | None
    error_kind: str | None
    error: str | None
    queue_s: float
    e2e_s: float | None
    retry_after_s: NotRequired[float]
    retry_after_header: NotRequired[str | None]
    wait_s: NotRequired[float]


class Timings(TypedDict):
    """The last attempt's timings, in seconds; ``chunk_times`` since the request was sent (an array of
    doubles in a compact record)."""

    queue_s: float
    ttft_s: float | None
    ttfc_s: float | None
    e2e_s: float | None
    chunk_times: Any


class Usage(TypedDict, total=False):
    """OpenAI's usage object as the server sent it (or as counted: see ``usage_source``)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, Any] | None
    completion_tokens_details: dict[str, Any] | None


class UsageCount(TypedDict):
    """How counted usage was obtained (a record's ``usage_count``)."""

    endpoint: str
    prompt_estimated: bool


class LoadClock(TypedDict):
    """A load run's request on its level's monotonic clock: seconds from the level's start."""

    due_s: float
    sent_s: float
    done_s: float


class Record(TypedDict):
    """One line of results.jsonl: a planned item's final outcome, written by the runner, read by every stage
    after it. A compact record (``store.read_records(compact=True)``) has ``attempts`` as a count."""

    item_id: str
    cell_id: str
    suite: str
    case_id: str
    repeat: int
    params: dict[str, Any]
    started_at: str
    ok: bool
    http_status: int | None
    error_kind: str | None
    error: str | None
    content: str | None
    reasoning: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str | None
    usage: Usage | None
    usage_source: NotRequired[Literal["server", "counted"] | None]
    usage_count: NotRequired[UsageCount | None]
    cost: float | None
    cached_saving: NotRequired[float | None]
    budget_charge: NotRequired[float]
    logprobs: list[dict[str, Any]] | None
    timings: Timings
    attempts: list[Attempt] | int
    response_id: NotRequired[str | None]
    usage_check: NotRequired[dict[str, Any] | None]
    target: NotRequired[str]
    # A load run's (load/driver.py): when the request was due and sent (as started_at is written), sent - due,
    # the level's clock, and whether it was a warm-up request (sent, left out of the level's figures).
    scheduled_at: NotRequired[str]
    sent_at: NotRequired[str]
    schedule_lag_s: NotRequired[float]
    load_clock: NotRequired[LoadClock]
    warmup: NotRequired[bool]
    # An open-loop request due while load.max_in_flight were in flight (it waited for a slot).
    capped: NotRequired[bool]
    # With load.workers above 1: the process that sent it (0 is the run's own; load/spread.py).
    load_worker: NotRequired[int]
    #: In memory only, never in results.jsonl: the model-graded checks of this sample, from judgements.jsonl
    #: (``judging.attach_judged``).
    judged: NotRequired[list[JudgedCheck]]


class JudgedCheck(TypedDict):
    """One model-graded check (``expect.judge`` / ``judge_score``) of one sample: every judge repeat's vote
    (``pass``, ``fail``, ``unparsable``, or ``missing`` where no judgement is stored) and the majority."""

    check: Literal["judge", "judge_score"]
    judge: str
    rubric: str
    votes: list[str]
    scores: list[float | None]
    reasons: list[str | None]
    #: ``pass``, ``fail``, ``unparsable`` (no vote could be read) or ``unjudged`` (no judgement stored).
    verdict: str
    score: float | None
    min: float | None


# --- judgements.jsonl -----------------------------------------------------------------------------------

class Judgement(TypedDict):
    """One line of judgements.jsonl: one call of a judge, cached by ``key`` (the request's SHA-256 and the
    judge repeat), so ``evalharness report`` and a resumed run never send it again."""

    key: str
    judge: str
    repeat: int
    request: dict[str, Any]
    started_at: str
    ok: bool
    http_status: int | None
    error_kind: str | None
    error: str | None
    content: str | None
    usage: Usage | None
    cost: float | None
    e2e_s: float | None
    attempts: int


class JudgeTotals(TypedDict):
    """summary.json's ``judges``: the judges' own calls, tokens and cost, apart from the target's."""

    requests: int
    errors: int
    unparsable: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    currency: str
    by_judge: dict[str, dict[str, Any]]


# --- the target ---------------------------------------------------------------------------------------------

class TargetInfo(TypedDict):
    """Where a run's requests went, as the manifest and summary.json say: ``kind`` (``openai``, ``local``, or
    ``python`` for a backend given in Python), its address, and the model the request bodies name."""

    kind: str
    base_url: str
    model: str


class TargetStatus(TargetInfo):
    """One of a run's targets (manifest and summary.json ``targets``): its name, whether it is optional, and
    how it went: ``ok``, ``failed`` (unreachable, crashed, every request failing; ``reason`` says) or
    ``skipped`` (optional, its key absent). summary.json adds its cells, requests and errors."""

    name: str
    optional: bool
    status: Literal["ok", "failed", "skipped"] | str
    reason: str | None
    cells: NotRequired[int]
    requests: NotRequired[int]
    errors: NotRequired[int]


# --- manifest.json ----------------------------------------------------------------------------------------

class PlannedCell(TypedDict):
    """A cell of the plan: its id, label and grid params (its axes only; defaults are in the config)."""

    cell_id: str
    label: str
    params: dict[str, Any]


class ManifestPlan(TypedDict):
    requests: int
    repeats: int
    cases: int
    cells: list[PlannedCell]
    item_ids_digest: str


class CaseEntry(TypedDict):
    """What the manifest keeps of a case for scoring (``scoring.metrics.CaseSpec.to_manifest``): its
    ``expect``, JSON Schema and extractor as the suite gave them, and for a case with checks of its own, the
    checks and what they are shown of the case."""

    expect: dict[str, Any] | None
    schema: dict[str, Any] | None
    extract: dict[str, Any] | None
    checks: NotRequired[list[dict[str, Any]]]
    context: NotRequired[dict[str, Any]]


class ShardInfo(TypedDict):
    """A shard's place in its plan (``run --shard K/N``): ``requests`` of the ``plan_requests`` planned."""

    index: int
    count: int
    requests: int
    plan_requests: int


class MergedShard(TypedDict):
    """One shard a merged run was made of (``evalharness merge``)."""

    run_dir: str
    run_id: str
    index: int
    count: int
    records: int


class Manifest(TypedDict):
    """manifest.json: what was asked (the config with secrets dropped, the plan, each case's spec)."""

    run_id: str
    harness_version: str
    started_at: str
    config_path: str | None
    config_dir: str
    #: The validated config as JSON (``config.Config.model_dump``): read as a JSON document.
    config: dict[str, Any]
    target: TargetInfo
    transport: dict[str, Any]
    plan: ManifestPlan
    #: ``suite/case_id`` -> what scoring needs of the case.
    cases: dict[str, CaseEntry]
    #: Every target of the run and how it went (runs made before targets existed have only ``target``).
    targets: NotRequired[list[TargetStatus]]
    #: The judges by name: what their requests are built of (``judgerun.manifest_judges``).
    judges: NotRequired[dict[str, Any]]
    #: A shard of a plan (``plan.requests`` is then the shard's; ``plan.item_ids_digest`` the whole plan's).
    shard: NotRequired[ShardInfo]
    #: The shards ``evalharness merge`` joined into this run.
    merged_from: NotRequired[list[MergedShard]]


# --- summary.json: metrics --------------------------------------------------------------------------------

class SourceMarks(TypedDict, total=False):
    """How a figure built from usage is marked where any of it was counted (usage.source_fields)."""

    source: str
    sources: dict[str, int]
    prompt_estimated: bool


class MetricValue(SourceMarks, total=False):
    """One metric of a cell as summary.json writes it. Every metric has ``value`` (None when it does not
    apply, with ``reason``); a rate adds ``ci95``, ``n`` and ``successes``; a latency the percentiles,
    ``mean``, ``min``, ``max`` and intervals; a count ``n`` and ``mean``; figures from counted usage
    ``source`` (see usage.source_fields)."""

    value: float | int | None
    reason: str
    n: int
    successes: int
    ci95: list[float]
    unit: str
    mean: float
    min: float
    max: float
    p50: float
    p90: float
    p95: float
    p99: float
    p50_ci95: list[float]
    p95_ci95: list[float]
    by_kind: dict[str, int]
    k: int
    by_k: dict[str, float]
    short_cases: int
    tokens: float | None
    tokens_n: int
    tokens_reason: str
    currency: str
    saving: float
    window_s: float
    capped: int


#: A cell's metrics: every catalogue name, in the catalogue's order.
Metrics = dict[str, MetricValue]


class ErrorSample(TypedDict):
    case: str
    item_id: str
    repeat: int
    error: str | None
    traceback: str | None


class CheckTally(TypedDict):
    """How one check did over a cell's completed samples."""

    kind: str
    runs: int
    passed: int
    failed: int
    errors: int
    score_mean: float | None
    error_samples: list[ErrorSample]


class OwnCheck(TypedDict):
    """A check of the cases' own (by file or by name): where it is, and whether it was found as it was."""

    check: str
    kind: str
    path: str | None
    sha256: str | None
    source: str | None
    status: str
    note: str | None
    cases: list[str]


class CellSummary(TypedDict):
    """One cell of summary.json."""

    cell_id: str
    label: str
    params: dict[str, Any]
    n: int
    metrics: Metrics
    checks: dict[str, CheckTally]


class TokenCheck(TypedDict):
    reported: int
    counted: int
    difference: float | None


class UsageCheck(TypedDict, total=False):
    """Reported usage against the model server's tokenizer on a sample of responses (usage.usage_check)."""

    sample: int
    endpoint: str | None
    completion_tokens: TokenCheck
    prompt_tokens: TokenCheck
    estimated_by_gateway: bool
    note: str


class Totals(TypedDict, total=False):
    """The run's totals in summary.json (a ``totals.*`` gate reads them)."""

    requests: int
    planned: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    usage_reported: int
    usage_source: str | None
    usage_sources: dict[str, int]
    prompt_tokens_estimated: bool
    usage_check: UsageCheck | None
    cached_tokens: int
    cached_saving: float
    currency: str
    errors_by_kind: dict[str, int]
    # The run's duration (first request sent to last finished), and completed requests and completion tokens
    # per second of it.
    duration_s: float | None
    throughput_rps: float | None
    output_tps: float | None


# --- comparisons ------------------------------------------------------------------------------------------

class CaseShare(TypedDict):
    count: int
    n: int


class CaseVerdict(TypedDict):
    """A case whose own samples changed (exact test, Holm-adjusted), as ``compare`` and gates report it."""

    cell: str
    cell_id: str
    metric: str
    case: str
    against: str
    before: CaseShare
    after: CaseShare
    counts: str
    p: float
    p_adjusted: float
    verdict: Literal["regressed", "improved"]
    analysis: str
    test: str
    family: int
    level: float


class MetricComparison(TypedDict, total=False):
    """One metric of ``new`` against ``base`` (``regress.judge``): the change, its intervals, the verdict and
    the question and test behind it. Without data, only ``metric``, ``change``/``verdict`` None and ``reason``."""

    metric: str
    kind: Literal["difference", "ratio"]
    #: The judges' own disagreement, when it widened the tolerance of a rate they decide.
    judge_noise: float
    before: float
    after: float
    change: float | None
    ci: list[float] | None
    ci95: list[float] | None
    level: float
    se: float | None
    mde: float | None
    n: int
    cases: int
    reason: str
    higher_is_better: bool
    tolerance: float
    verdict: Verdict | None
    analysis: str
    test: str
    power: dict[str, float | int]
    # In a cell comparison (findings of one run): what the change reads as, and which field of a latency.
    finding: str | None
    field: str


class CellRef(TypedDict):
    cell_id: str
    label: str


class CaseFinding(TypedDict):
    case: str
    metric: str
    counts: str
    p_adjusted: float
    finding: str
    test: str


class CellComparison(TypedDict):
    """Two cells of one run against each other (summary.json ``comparisons``): findings, not gates."""

    reference: CellRef
    cell: CellRef
    differs_in: list[str]
    metrics: dict[str, MetricComparison]
    cases: list[CaseFinding]


class TargetComparison(CellComparison):
    """A target against the reference target at one grid point (summary.json ``target_comparisons``), on the
    same paired analysis as cells; ``cost_ratio`` is its mean cost per request over the reference's."""

    target: str
    reference_target: str
    point: str
    cost_ratio: float | None


class ComparedCell(TypedDict):
    params: dict[str, Any]
    label: str
    cell_id: str
    base_cell_id: str
    metrics: list[MetricComparison]


class RunRef(TypedDict):
    run_dir: str | None
    path: str | None
    run_id: str
    name: str | None


class Unmatched(TypedDict):
    base_only: list[str]
    new_only: list[str]


class Regression(MetricComparison, total=False):
    cell: str


class Comparison(TypedDict):
    """``compare BASE NEW`` (``regress.compare_runs``): every matched cell and metric, judged together."""

    base: RunRef
    new: RunRef
    level: float
    comparisons: int
    population: str
    analysis: str
    case_level: float
    case_tests: int
    tolerance: dict[str, float]
    cells: list[ComparedCell]
    cases: list[CaseVerdict]
    unmatched_cells: Unmatched
    unmatched_cases: Unmatched
    counts: dict[str, int]
    regressions: list[Regression]
    case_regressions: list[CaseVerdict]
    passed: bool


# --- gates ------------------------------------------------------------------------------------------------

class FailingCase(TypedDict):
    case: str
    successes: int
    n: int
    value: float


class GateVerdict(TypedDict, total=False):
    """One gate's verdict on one cell (or on the run's totals, or a case of a baseline gate).

    ``gate`` is the gate's index in the config's ``gates`` list (several verdicts share it: one per matching
    cell), None for a ``run --baseline`` verdict; the gate's own fields are repeated so that a verdict reads on
    its own.
    """

    gate: int | None
    metric: str
    min: float | None
    max: float | None
    where: dict[str, Any]
    per_case: bool
    min_n: int | None
    cell_id: str | None
    label: str
    value: float | int | None
    passed: bool
    reason: str
    n: int | None
    planned: int | None
    note: str
    failing_cases: list[FailingCase]
    cases_checked: int
    # Baseline gates (baselines.py): the run compared with, and the comparison behind the verdict.
    baseline: str
    baseline_run_id: str
    max_drop: float | None
    max_rise: float | None
    population: str
    tolerance: float
    verdict: Verdict | None
    case: str
    case_verdict: CaseVerdict
    kind: str
    before: float
    after: float
    change: float | None
    ci: list[float] | None
    ci95: list[float] | None
    level: float
    se: float | None
    mde: float | None
    cases: int
    higher_is_better: bool
    analysis: str
    test: str
    power: dict[str, float | int]


# --- summary.json -----------------------------------------------------------------------------------------

class CapacityLevel(TypedDict):
    rate: float
    slo_attainment: float | None
    throughput_rps: float | None


class Capacity(TypedDict):
    """The capacity search's result for one grid point of a load run (load/metrics.py: capacity)."""

    params: dict[str, Any]
    max_rate: float | None
    levels_tried: int
    reason: str
    levels: list[CapacityLevel]


class Summary(TypedDict):
    """summary.json: per-cell metrics, totals, comparisons of cells and gate verdicts."""

    run_id: str
    name: str
    target: TargetInfo
    started_at: str
    complete: bool
    stop_reason: str | None
    passed: bool
    totals: Totals
    cells: list[CellSummary]
    comparisons: list[CellComparison]
    baseline: dict[str, Any] | None
    gates: list[GateVerdict]
    checks: list[OwnCheck]
    # A load run's: capacity per grid point (with load.search), and determinism against load in words.
    capacity: NotRequired[list[Capacity]]
    load_notes: NotRequired[list[str]]
    targets: NotRequired[list[TargetStatus]]
    target_comparisons: NotRequired[list[TargetComparison]]
    judges: NotRequired[JudgeTotals | None]
    #: ``judge_compare``: per entry, the pairs each cell's answer won (``pairwise.comparisons``).
    judge_comparisons: NotRequired[list[dict[str, Any]]]


# --- history.json -----------------------------------------------------------------------------------------

class HistoryPoint(TypedDict):
    """One metric of one cell in one run, as the history shows it: the value and its 95% interval."""

    value: float | None
    ci95: list[float] | None
    n: int | None


class HistoryCell(TypedDict):
    """A cell of the history (every run that has these params): ``key`` names it in each run's ``cells``."""

    key: str
    label: str
    params: dict[str, Any]


class HistoryRegression(TypedDict, total=False):
    """A regression of a run against the run before it, by ``compare``'s verdicts: a cell's metric, or a case
    on its own (with ``case`` and ``counts``)."""

    key: str
    cell: str
    metric: str
    against: str
    before: float
    after: float
    change: float | None
    ci: list[float] | None
    level: float
    case: str
    counts: str
    p_adjusted: float
    message: str


class HistoryGate(TypedDict):
    metric: str
    label: str
    reason: str


class HistoryRun(TypedDict):
    """A complete run in history.json, oldest first."""

    run_id: str
    run_dir: str
    report: str | None
    name: str
    started_at: str
    passed: bool
    gates_failed: list[HistoryGate]
    gates_total: int
    against: str | None
    note: str | None
    #: cell key → metric → value; a metric without a value in this run is absent.
    cells: dict[str, dict[str, HistoryPoint]]
    regressions: list[HistoryRegression]


class HistorySkipped(TypedDict):
    run_dir: str
    reason: str


class History(TypedDict):
    """history.json (``evalharness history``)."""

    generated_by: str
    metrics: list[str]
    analysis: str
    cells: list[HistoryCell]
    runs: list[HistoryRun]
    skipped: list[HistorySkipped]
