"""What each check did in a cell, for summary.json: runs, passes, failures, errors of the check itself (with
their tracebacks, the first few), and mean score; and the state of each check of one's own at scoring time."""

from __future__ import annotations

from collections.abc import Sequence

from evalharness.scoring.metrics import CaseSpec, case_key
from evalharness.types import CheckTally, OwnCheck, Record

#: Errors (with traceback) kept per check per cell; the counts are always complete.
ERROR_SAMPLES = 3


def check_tallies(records: Sequence[Record], cases: dict[str, CaseSpec]) -> dict[str, CheckTally]:
    """Per check that ran on these records' completed samples (built-in and own, by the name reports use)."""
    out: dict[str, CheckTally] = {}
    scores: dict[str, list[float]] = {}
    for record in records:
        spec = cases.get(case_key(record))
        if not record["ok"] or spec is None or spec.expect is None:
            continue
        kinds = {ref.ref: ref.kind for ref in spec.checks}
        for outcome in spec.outcomes(record):
            tally = out.setdefault(outcome.check, {
                "kind": "built-in" if outcome.builtin else kinds.get(outcome.check, "check"),
                "runs": 0, "passed": 0, "failed": 0, "errors": 0, "score_mean": None, "error_samples": []})
            tally["runs"] += 1
            tally["passed"] += outcome.passed
            tally["failed"] += not outcome.passed
            if outcome.score is not None:
                scores.setdefault(outcome.check, []).append(outcome.score)
            if outcome.error:
                tally["errors"] += 1
                if len(tally["error_samples"]) < ERROR_SAMPLES:
                    tally["error_samples"].append({
                        "case": case_key(record), "item_id": record["item_id"], "repeat": record["repeat"],
                        "error": outcome.error, "traceback": outcome.traceback})
    for name, values in scores.items():
        out[name]["score_mean"] = sum(values) / len(values)
    return out


def own_checks(cases: dict[str, CaseSpec]) -> list[OwnCheck]:
    """Each check of one's own the run's cases use, once: where it is, and whether it could be found again as
    it was (``status``: ``ok``, ``changed`` with a note, or ``missing`` with the problem)."""
    seen: dict[tuple[str, str, str | None], OwnCheck] = {}
    for key, spec in cases.items():
        for resolved in spec.resolved():
            ref = resolved.ref
            entry = seen.setdefault((ref.kind, ref.ref, ref.path), {
                "check": ref.ref, "kind": ref.kind, "path": ref.path, "sha256": ref.sha256, "source": ref.source,
                "status": resolved.status, "note": resolved.problem or resolved.note, "cases": []})
            entry["cases"].append(key)
    return list(seen.values())
