"""Reading a stored record the same way in every stage (the store writes records, scoring and reports read
them): helpers of the record's own fields, with no I/O, so scoring need not import the store."""

from __future__ import annotations

from evalharness.types import Record


def attempt_count(record: Record) -> int:
    """How many attempts a record took (its ``attempts`` list, or their count in a compact record)."""
    attempts = record.get("attempts")
    if isinstance(attempts, int):
        return attempts
    return len(attempts or ())
