"""``evalharness merge SHARD_DIR... --out DIR``: the shards of one plan joined into one run, scored again.

The shards must come from the same plan (the manifest's ``item_ids_digest``, the whole plan's in every shard)
and together hold it exactly once: a shard missing, given twice, or with a record another shard also has is
a usage error (exit 2). ``allow_partial`` merges what there is into a run marked incomplete instead. The
records are copied line by line (never all held at once) and the merged run is scored by the same path as
any run, so its summary is the one a single run over the same records would have.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

from evalharness.errors import UsageError
from evalharness.flow import Finished, finish
from evalharness.scoring.bycell import count_records
from evalharness.shards import Layout
from evalharness.store import MANIFEST, RESULTS, SUPERSEDED, new_run_id, open_run_dir, read_json, write_json
from evalharness.types import Manifest, MergedShard, ShardInfo


@dataclass(frozen=True)
class _Part:
    run_dir: Path
    manifest: Manifest
    shard: ShardInfo


def _parts(dirs: Sequence[str | Path]) -> list[_Part]:
    parts = []
    for d in dirs:
        run_dir = open_run_dir(Path(d))
        manifest: Manifest = read_json(run_dir / MANIFEST)
        shard = manifest.get("shard")
        if not shard:
            raise UsageError(f"{run_dir} is not a shard (its manifest has no shard); shards are made with "
                             f"evalharness run CONFIG --shard K/N")
        parts.append(_Part(run_dir, manifest, shard))
    if not parts:
        raise UsageError("merge needs at least one shard directory")
    return parts


def _check_same_plan(parts: list[_Part]) -> None:
    first = parts[0]
    for part in parts[1:]:
        if part.manifest["plan"]["item_ids_digest"] != first.manifest["plan"]["item_ids_digest"]:
            raise UsageError(f"{part.run_dir} and {first.run_dir} are shards of different plans (their configs' "
                             f"cells, cases or repeats differ); merge only shards of one config")
        if part.shard["count"] != first.shard["count"]:
            raise UsageError(f"{part.run_dir} is shard {part.shard['index']}/{part.shard['count']} but "
                             f"{first.run_dir} is of {first.shard['count']} shards; merge shards of one split")


def _check_coverage(parts: list[_Part], allow_partial: bool) -> list[str]:
    """Every shard once; returns what is missing (only when ``allow_partial``)."""
    count = parts[0].shard["count"]
    seen = Counter(p.shard["index"] for p in parts)
    for index, n in sorted(seen.items()):
        if n > 1:
            dirs = ", ".join(str(p.run_dir) for p in parts if p.shard["index"] == index)
            raise UsageError(f"shard {index}/{count} is given {n} times ({dirs}); give each shard once")
    missing = [f"{i}/{count}" for i in range(1, count + 1) if i not in seen]
    if missing and not allow_partial:
        raise UsageError(f"shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing: the merge would "
                         f"not cover the plan (give every shard, or --allow-partial for an incomplete run)")
    return missing


def _copy_records(part: _Part, layout: Layout, out: IO[bytes], seen: set[bytes]) -> int:
    """Append a shard's complete records to ``out``; each must belong to the shard and to no other."""
    path = part.run_dir / RESULTS
    if not path.exists():
        return 0
    index, count = part.shard["index"], part.shard["count"]
    n = 0
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):  # a torn last line of a killed shard: not a record
                break
            record = orjson.loads(raw)
            key = hashlib.sha1(str(record["item_id"]).encode()).digest()[:12]
            if key in seen:
                raise UsageError(f"{part.run_dir}: item {record['item_id']} is also in another shard; a record "
                                 f"must be merged once")
            seen.add(key)
            if layout.shard_of(record["cell_id"], f"{record['suite']}/{record['case_id']}", int(record["repeat"]),
                               count) != index:
                raise UsageError(f"{part.run_dir}: item {record['item_id']} is not of shard {index}/{count}; "
                                 f"was results.jsonl edited or copied from another run?")
            out.write(raw)
            n += 1
    return n


def merge(dirs: Sequence[str | Path], out: str | Path, *, allow_partial: bool = False,
          gates: bool = True) -> Finished:
    """Merge shard run directories into the run directory ``out`` and score it (module docstring)."""
    parts = sorted(_parts(dirs), key=lambda p: p.shard["index"])
    _check_same_plan(parts)
    missing = _check_coverage(parts, allow_partial)
    short = [p for p in parts if count_records(p.run_dir) < p.shard["requests"]]
    if short and not allow_partial:
        p = short[0]
        raise UsageError(f"shard {p.shard['index']}/{p.shard['count']} in {p.run_dir} has "
                         f"{count_records(p.run_dir)} of its {p.shard['requests']} records; finish it with "
                         f"evalharness run CONFIG --resume {p.run_dir} (or merge with --allow-partial)")
    run_dir = Path(out)
    if (run_dir / MANIFEST).exists() or (run_dir / RESULTS).exists():
        raise UsageError(f"{run_dir} already holds a run; merge into a new folder")
    if any(run_dir.resolve() == p.run_dir.resolve() for p in parts):
        raise UsageError(f"{run_dir} is one of the shards; merge into a new folder")
    run_dir.mkdir(parents=True, exist_ok=True)
    seen: set[bytes] = set()
    merged: list[MergedShard] = []
    layout = Layout.from_manifest(parts[0].manifest)
    with (run_dir / (RESULTS + ".tmp")).open("wb") as fh:
        for part in parts:
            n = _copy_records(part, layout, fh, seen)
            merged.append({"run_dir": str(part.run_dir), "run_id": part.manifest["run_id"],
                           "index": part.shard["index"], "count": part.shard["count"], "records": n})
    (run_dir / (RESULTS + ".tmp")).replace(run_dir / RESULTS)
    with (run_dir / SUPERSEDED).open("wb") as fh:  # failed attempts a resume set aside: the audit keeps them
        for part in parts:
            if (part.run_dir / SUPERSEDED).exists():
                with (part.run_dir / SUPERSEDED).open("rb") as src:
                    shutil.copyfileobj(src, fh)
    manifest = _merged_manifest(parts, run_dir, merged)
    write_json(run_dir / MANIFEST, manifest)
    planned = manifest["plan"]["requests"]
    stop_reason = None
    if missing or short or len(seen) < planned:
        stop_reason = (f"merged {len(seen)} of {planned} planned requests"
                       + (f"; shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing" if missing else ""))
    return finish(run_dir, complete=stop_reason is None, stop_reason=stop_reason, gates=gates)


def _merged_manifest(parts: list[_Part], run_dir: Path, merged: list[MergedShard]) -> Manifest:
    """The first shard's manifest as the whole plan's: no ``shard``, every planned request, the earliest start,
    and which shards it was made of."""
    manifest: Manifest = read_json(parts[0].run_dir / MANIFEST)
    manifest.pop("shard", None)
    manifest.pop("resumed_at", None)  # type: ignore[typeddict-item]
    manifest["run_id"] = run_dir.resolve().name or new_run_id()
    manifest["started_at"] = min(p.manifest["started_at"] for p in parts)
    manifest["plan"]["requests"] = parts[0].shard["plan_requests"]
    manifest["merged_from"] = merged
    return manifest
