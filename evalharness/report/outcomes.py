"""Per case × cell outcomes of every record: distinct outputs and expect failures, computed once per report.

The determinism view, the drill-down, junit.xml and results.csv all need them; checking expectations is the
costly part (JSON Schema validation), so identical outputs of a case are checked once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from evalharness.scoring.metrics import CaseSpec, sample_failures
from evalharness.scoring.usercheck import CheckOutcome
from evalharness.types import Manifest, Record, Summary


@dataclass
class Pair:
    """One case in one cell: its records in repeat order and what they amount to."""

    case: str
    cell_id: str
    records: list[Record] = field(default_factory=list)
    # Failed expect checks per record, parallel to ``records`` (a failed request fails with its error).
    failures: list[list[str]] = field(default_factory=list)
    # Checks of the case's own that errored on each record (raised, or returned no verdict), parallel too.
    check_errors: list[list[CheckOutcome]] = field(default_factory=list)
    # Completed outputs (content, "" when none) with their counts, most common first after ``finish``.
    outputs: Counter[str] = field(default_factory=Counter)
    # Failed requests, and records failing their checks (failed requests included).
    errors: int = 0
    failed: int = 0

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def distinct(self) -> int:
        return len(self.outputs)

    @property
    def modal(self) -> str | None:
        return self.outputs.most_common(1)[0][0] if self.outputs else None


@dataclass
class Outcomes:
    """Every (case, cell) pair of a run, in manifest case order and summary cell order."""

    cases: list[str]
    cell_ids: list[str]
    specs: dict[str, CaseSpec]
    pairs: dict[tuple[str, str], Pair]
    # Failures of each record by item_id, for the CSV.
    by_item: dict[str, list[str]]

    def pair(self, case: str, cell_id: str) -> Pair | None:
        return self.pairs.get((case, cell_id))

    def has_expect(self, case: str) -> bool:
        spec = self.specs.get(case)
        return bool(spec and spec.expect is not None)


def record_case(record: Record) -> str:
    return f"{record['suite']}/{record['case_id']}"


def build_outcomes(manifest: Manifest, summary: Summary, records: list[Record]
                   ) -> Outcomes:
    """Group the records by case and cell and check each against its case's expectations."""
    specs = {key: CaseSpec.from_manifest(spec) for key, spec in manifest["cases"].items()}
    pairs: dict[tuple[str, str], Pair] = {}
    by_item: dict[str, list[str]] = {}
    memo: dict[tuple[str, str | None], list[str]] = {}
    grouped: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for record in records:
        grouped[(record_case(record), record["cell_id"])].append(record)
    for (case, cell_id), recs in grouped.items():
        recs.sort(key=lambda r: r["repeat"])
        pair = Pair(case=case, cell_id=cell_id, records=recs)
        spec = specs.get(case) or CaseSpec()
        for r in recs:
            if r["ok"] and spec.checks:  # a check of one's own sees more than the content; it memoises itself
                failures = sample_failures(r, spec)
                pair.outputs[r.get("content") or ""] += 1
            elif r["ok"]:
                key = (case, r.get("content"))
                seen = memo.get(key)
                failures = seen if seen is not None else memo.setdefault(key, sample_failures(r, spec))
                pair.outputs[r.get("content") or ""] += 1
            else:
                failures = sample_failures(r, spec)
                pair.errors += 1
            pair.failures.append(failures)
            pair.check_errors.append([o for o in spec.outcomes(r) if o.error] if r["ok"] and spec.checks else [])
            pair.failed += bool(failures)
            by_item[r["item_id"]] = failures
        pairs[(case, cell_id)] = pair
    cases = list(manifest["cases"])
    cases += sorted({case for case, _ in pairs} - set(cases))
    return Outcomes(cases=cases, cell_ids=[c["cell_id"] for c in summary["cells"]], specs=specs, pairs=pairs,
                    by_item=by_item)
