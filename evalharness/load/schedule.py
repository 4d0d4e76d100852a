"""Arrival schedules: when each request of a level is due, as a pure function of the arrival, rate and seed.

Offsets are seconds from the level's start; the first request is due at 0. Inter-arrival gaps are
``constant`` (1/rate), ``poisson`` (exponential, mean 1/rate, CV 1) or ``gamma`` (shape ``burstiness``, scale
1/(rate × burstiness): mean 1/rate, CV 1/sqrt(burstiness)) — the gamma parametrisation of vLLM's
``bench serve --burstiness``. ``replay`` takes the offsets of a file, rescaled to a rate when one is given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalharness.errors import ConfigError


def gaps(arrival: str, rate: float, n: int, *, burstiness: float = 1.0, seed: int = 1) -> list[float]:
    """``n`` inter-arrival gaps (seconds) of an open-loop arrival process at ``rate`` requests per second."""
    if rate <= 0:
        raise ValueError("rate must be above 0")
    rng = np.random.default_rng(seed)
    if arrival == "constant":
        return [1.0 / rate] * n
    if arrival == "poisson":
        return [float(g) for g in rng.exponential(1.0 / rate, n)]
    if arrival == "gamma":
        return [float(g) for g in rng.gamma(burstiness, 1.0 / (rate * burstiness), n)]
    raise ValueError(f"no generated schedule for arrival {arrival!r}")


def offsets(arrival: str, rate: float, n: int, *, burstiness: float = 1.0, seed: int = 1) -> list[float]:
    """When each of ``n`` requests is due, from the level's start: 0, then the running sum of the gaps."""
    if n <= 0:
        return []
    steps = gaps(arrival, rate, n - 1, burstiness=burstiness, seed=seed)
    return [0.0, *(float(t) for t in np.cumsum(steps))]


@dataclass(frozen=True)
class Replay:
    """A recorded arrival pattern: offsets (seconds, ascending) and, where given, the case each request asks."""

    offsets: tuple[float, ...]
    cases: tuple[str | None, ...]

    @property
    def rate(self) -> float:
        """Its own mean rate: requests per second over its span (requests - 1 gaps)."""
        span = self.offsets[-1] - self.offsets[0]
        return (len(self.offsets) - 1) / span if span > 0 else float(len(self.offsets))

    def at_rate(self, rate: float | None) -> list[float]:
        """Its offsets from its first, stretched or squeezed to a mean ``rate`` (as recorded: None)."""
        start = self.offsets[0]
        scale = 1.0 if rate is None else self.rate / rate
        return [(t - start) * scale for t in self.offsets]


def read_replay(path: Path, *, known_cases: Sequence[str] = ()) -> Replay:
    """Read a replay file: one JSON object a line, ``offset_s`` (seconds) and optionally ``case`` (an id, or
    ``suite/id``); lines may come in any order. Errors name the file and line."""
    if not path.is_file():
        raise ConfigError(f"replay file not found: {path}", key="load.replay")
    rows: list[tuple[float, str | None]] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"not JSON: {exc.msg}", file=str(path), line=lineno) from exc
        offset = obj.get("offset_s") if isinstance(obj, dict) else None
        if not isinstance(offset, (int, float)) or isinstance(offset, bool) or offset < 0:
            raise ConfigError("each line needs offset_s, seconds from the start (a number >= 0)",
                              file=str(path), line=lineno, key="offset_s")
        case = obj.get("case")
        if case is not None and (not isinstance(case, str) or (known_cases and case not in known_cases)):
            raise ConfigError(f"unknown case {case!r}", file=str(path), line=lineno, key="case",
                              hint=f"cases are {', '.join(known_cases)}" if known_cases else None)
        rows.append((float(offset), case))
    if len(rows) < 2:
        raise ConfigError("a replay file needs at least 2 lines", file=str(path))
    rows.sort(key=lambda r: r[0])
    return Replay(tuple(r[0] for r in rows), tuple(r[1] for r in rows))
