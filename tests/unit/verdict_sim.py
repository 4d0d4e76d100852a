"""Synthetic runs for verdict tests and simulations: cases that pass with a chosen probability per repeat."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evalharness.plan import make_cells
from evalharness.regress import compare_runs
from evalharness.runs import RunData

SEEDS = {"seed": [None, 42]}


def run_data(pass_probs: Sequence[float], *, repeats: int, rng: np.random.Generator, run_id: str = "run",
             grid: dict[str, list[Any]] | None = None) -> RunData:
    """A stored run in memory: case i passes each repeat with probability ``pass_probs[i]``, in every cell."""
    cells = make_cells(grid or SEEDS)
    records = []
    for cell in cells:
        for i, p in enumerate(pass_probs):
            for r in range(repeats):
                passed = rng.random() < p
                records.append({
                    "item_id": f"{cell.cell_id}/s/c{i}/{r}", "cell_id": cell.cell_id, "suite": "s",
                    "case_id": f"c{i}", "repeat": r, "params": dict(cell.params), "ok": True,
                    "error_kind": None, "error": None, "content": "yes" if passed else f"no {r}",
                    "usage": None, "cost": None, "logprobs": None, "attempts": [{}],
                    "timings": {"queue_s": 0.0, "ttft_s": 0.1, "ttfc_s": 0.1,
                                "e2e_s": float(rng.lognormal(-0.7, 0.3)), "chunk_times": []}})
    manifest = {
        "run_id": run_id, "started_at": "2026-01-01T10:00:00+00:00",
        "target": {"kind": "test", "model": "sim", "base_url": "http://127.0.0.1:9/v1"},
        "config": {"name": "sim", "run": {"stream": True}, "pricing": {"currency": "X"}, "gates": []},
        "plan": {"requests": len(records), "repeats": repeats, "cases": len(pass_probs),
                 "cells": [{"cell_id": c.cell_id, "label": c.label, "params": c.params} for c in cells]},
        "cases": {f"s/c{i}": {"expect": {"contains": "yes"}, "schema": None, "extract": None}
                  for i in range(len(pass_probs))},
    }
    return RunData(None, manifest, records)


def passes(base_probs: Sequence[float], new_probs: Sequence[float], *, repeats: int, trials: int, seed: int,
           population: str = "suite") -> int:
    """In how many of ``trials`` simulated comparisons (base run, new run) nothing regressed."""
    rng = np.random.default_rng(seed)
    passed = 0
    for t in range(trials):
        base = run_data(base_probs, repeats=repeats, rng=rng, run_id=f"base{t}")
        new = run_data(new_probs, repeats=repeats, rng=rng, run_id=f"new{t}")
        passed += bool(compare_runs(base, new, population=population)["passed"])  # type: ignore[arg-type]
    return passed


def write(run: RunData, folder: Path) -> Path:
    """Store a synthetic run as a run directory that ``evalharness compare`` reads."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(run.manifest))
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in run.records))
    return folder
