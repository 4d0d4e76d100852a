"""The run directory: manifest.json, results.jsonl (append-only, flushed per record), summary.json."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from evalharness.errors import UsageError

MANIFEST = "manifest.json"
RESULTS = "results.jsonl"
SUMMARY = "summary.json"
SUPERSEDED = "superseded.jsonl"


def new_run_id() -> str:
    """Sortable and unique: ``20261127-214422-3fa1``."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename), so a killed run never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8",
                   errors="backslashreplace")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def iter_records(run_dir: Path) -> Iterator[dict[str, Any]]:
    """Every complete record in results.jsonl; a torn last line (a run killed mid-write) is skipped."""
    path = run_dir / RESULTS
    if not path.exists():
        return
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                break
            try:
                yield orjson.loads(raw)
            except ValueError:
                try:  # orjson refuses what json accepts, e.g. an escaped lone surrogate
                    yield json.loads(raw)
                except ValueError:
                    continue


def set_aside_failures(run_dir: Path) -> list[dict[str, Any]]:
    """For a resume: move failed records to superseded.jsonl, so their items are sent again.

    results.jsonl keeps one record per planned item; the failed attempts stay on disk for the audit (and the
    budget). The rewrite is atomic: a run killed in between keeps every record in one file or the other.
    Returns the records that stay.
    """
    records = read_records(run_dir)
    failed = [r for r in records if not r.get("ok")]
    if not failed:
        return records
    kept = [r for r in records if r.get("ok")]
    with (run_dir / SUPERSEDED).open("ab") as fh:
        for record in failed:
            fh.write(json.dumps(record, separators=(",", ":")).encode("ascii") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp = run_dir / (RESULTS + ".tmp")
    with tmp.open("wb") as fh:
        for record in kept:
            fh.write(json.dumps(record, separators=(",", ":")).encode("ascii") + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, run_dir / RESULTS)
    return kept


def read_superseded(run_dir: Path) -> list[dict[str, Any]]:
    """Failed records that a resume set aside (see ``set_aside_failures``)."""
    path = run_dir / SUPERSEDED
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    return list(iter_records(run_dir))


class ResultWriter:
    """Appends records to results.jsonl; each is flushed to the OS as soon as it is written."""

    def __init__(self, run_dir: Path) -> None:
        path = run_dir / RESULTS
        _drop_torn_tail(path)
        self._fh: IO[bytes] = path.open("ab")

    def write(self, record: dict[str, Any]) -> None:
        try:
            line = orjson.dumps(record, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # a lone surrogate in model output: json's \u escapes keep it exactly
            line = json.dumps(record, separators=(",", ":")).encode("ascii")
        self._fh.write(line + b"\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def _drop_torn_tail(path: Path) -> None:
    """Cut a partial last line left by a killed run, so appends start on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as fh:
        data = fh.read()
        if data.endswith(b"\n"):
            return
        fh.truncate(data.rfind(b"\n") + 1)


def open_run_dir(run_dir: Path) -> Path:
    """Check that ``run_dir`` holds a run (for ``report`` and ``--resume``)."""
    if not (run_dir / MANIFEST).is_file():
        raise UsageError(f"{run_dir} is not a run directory (no {MANIFEST})")
    return run_dir
