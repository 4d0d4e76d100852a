"""Stored runs as comparisons read them: cells by params, case specs, and each cell's comparison units."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalharness.plan import canonical
from evalharness.scoring.metrics import CaseSpec
from evalharness.scoring.paired import Units, cell_units
from evalharness.store import MANIFEST, open_run_dir, read_json, read_records
from evalharness.types import Manifest, PlannedCell, Record, RunRef


@dataclass
class RunData:
    """A stored run, as comparisons need it: cells by params, case specs, and records per cell."""

    run_dir: Path | None
    manifest: Manifest
    records: list[Record]
    _units: dict[str, dict[str, Units]] = field(default_factory=dict, repr=False)
    _by_cell: dict[str, list[Record]] | None = field(default=None, repr=False)
    _cases: dict[str, CaseSpec] | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", ""))

    @property
    def cells(self) -> list[PlannedCell]:
        return self.manifest["plan"]["cells"]

    def cell_by_params(self) -> dict[str, PlannedCell]:
        return {canonical(c["params"]): c for c in self.cells}

    def units(self, cell_id: str) -> dict[str, Units]:
        """The comparison units of one cell (computed once)."""
        if cell_id not in self._units:
            if self._by_cell is None or self._cases is None:
                # Grouped once: a grid of many cells must not scan every record per cell.
                self._by_cell = {}
                for r in self.records:
                    self._by_cell.setdefault(r["cell_id"], []).append(r)
                self._cases = {key: CaseSpec.from_manifest(spec) for key, spec in self.manifest["cases"].items()}
            self._units[cell_id] = cell_units(self._by_cell.get(cell_id, []), self._cases)
        return self._units[cell_id]

    def judge_noise(self, cell_id: str) -> float:
        """How much this cell's judges disagree with themselves: the mean share of a model-graded check's
        votes against its majority (``judging.disagreement``; 0 without judges or with one repeat)."""
        from evalharness.judging import disagreement

        self.units(cell_id)  # groups the records by cell
        assert self._by_cell is not None
        return disagreement(self._by_cell.get(cell_id, []))

    def describe(self) -> RunRef:
        return {"run_dir": str(self.run_dir) if self.run_dir else None,
                "path": str(self.run_dir.resolve()) if self.run_dir else None,
                "run_id": self.run_id, "name": self.manifest.get("config", {}).get("name")}


def load_run(path: str | Path) -> RunData:
    """Read a run directory (manifest and records); a folder that is not a run is a usage error."""
    from evalharness.judgerun import read_judgements  # it builds on the flow's modules
    from evalharness.judging import attach_judged

    run_dir = open_run_dir(Path(path))
    manifest: Manifest = read_json(run_dir / MANIFEST)
    records = read_records(run_dir, compact=True)
    if manifest.get("judges"):  # the verdicts of model-graded checks are in judgements.jsonl
        attach_judged(manifest, records, read_judgements(run_dir))
    return RunData(run_dir, manifest, records)
