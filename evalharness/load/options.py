"""The ``load:`` section of a config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Arrival = Literal["constant", "poisson", "gamma", "closed", "replay"]
#: The cell parameters a load level sets (next to the grid's), and that ``where:`` may name.
LEVEL_KEYS = ("rate", "concurrency")
#: Levels of a search given ``max_rate`` and no ``rate``: max_rate / 32, / 16, … max_rate.
SEARCH_LEVELS = 6


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SLO(_Strict):
    """Per-request service-level objectives; a request is *good* when it completed and meets every one given."""

    ttft_s: float | None = Field(None, gt=0)
    e2e_s: float | None = Field(None, gt=0)
    tpot_s: float | None = Field(None, gt=0)

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Search(_Strict):
    """The capacity search: the highest measured rate whose ``slo_attainment`` is at least this."""

    slo_attainment: float = Field(0.9, gt=0, le=1)
    max_rate: float | None = Field(None, gt=0)


class LoadOptions(_Strict):
    """How requests arrive at each load level.

    Open loop (``constant``, ``poisson``, ``gamma``, ``replay``): each level is a ``rate`` in requests per
    second, and each request is sent when it is due whether or not earlier ones have finished. Closed loop
    (``closed``): each level is a ``concurrency``, that many requests in flight, the next sent as one ends.
    """

    arrival: Arrival = "poisson"
    rate: list[float] | None = Field(None, min_length=1)
    concurrency: list[int] | None = Field(None, min_length=1)
    #: The gamma distribution's shape: 1 is Poisson, larger is smoother, smaller burstier (CV = 1/sqrt(shape)).
    burstiness: float = Field(1.0, gt=0)
    #: Requests per level and grid point (warm-up not included); or ``duration_s`` (open loop: rate × duration).
    requests: int | None = Field(None, ge=1, le=1_000_000)
    duration_s: float | None = Field(None, gt=0)
    #: Requests due (open loop) or sent (closed) in the level's first seconds are sent but left out of its figures.
    warmup_s: float = Field(0.0, ge=0)
    #: Open loop: the most requests in flight; a request due while it is reached waits, and its lag shows it.
    max_in_flight: int = Field(512, ge=1, le=65_536)
    seed: int = 1
    #: Open loop: processes of this machine the schedule is spread over (load/spread.py), for rates one event
    #: loop cannot hold; each sends every Nth request, with 1/N of max_in_flight and of run.rpm/tpm.
    workers: int = Field(1, ge=1, le=64)
    #: ``replay``: a JSONL file (relative to the config) of ``{"offset_s": ..., "case": optional id}`` lines.
    replay: str | None = None
    slo: SLO = Field(default_factory=SLO)
    search: Search | None = None

    @model_validator(mode="after")
    def _levels(self) -> LoadOptions:
        if self.arrival == "closed":
            if self.workers != 1:
                raise ValueError("workers spreads an open-loop schedule over processes; a closed loop is sent "
                                 "by one (raise concurrency instead)")
            if self.concurrency is None:
                raise ValueError("arrival: closed needs concurrency: [...] (requests in flight, one level each)")
            if self.rate is not None:
                raise ValueError("arrival: closed sweeps concurrency, not rate; remove rate (or pick an open-loop "
                                 "arrival: constant, poisson, gamma)")
            if self.duration_s is not None:
                raise ValueError("duration_s sets an open-loop level's requests (rate × duration); a closed loop "
                                 "takes requests")
            if self.search is not None:
                raise ValueError("search finds the highest rate meeting the SLO: it needs an open-loop arrival")
        else:
            if self.concurrency is not None:
                raise ValueError(f"arrival: {self.arrival} sweeps rate; concurrency is for arrival: closed")
            if self.arrival == "replay":
                if not self.replay:
                    raise ValueError("arrival: replay needs replay: FILE.jsonl (lines of {offset_s, case})")
            elif self.rate is None and not (self.search and self.search.max_rate):
                raise ValueError(f"arrival: {self.arrival} needs rate: [...] (requests per second, one level each), "
                                 "or search: {max_rate: R} to sweep R/32, R/16, … R")
        if self.replay and self.arrival != "replay":
            raise ValueError("replay: FILE is read for arrival: replay only")
        if self.requests is not None and self.duration_s is not None:
            raise ValueError("give requests or duration_s, not both")
        if self.search and self.search.max_rate is not None and self.rate:
            over = [r for r in self.rate if r > self.search.max_rate]
            if over:
                raise ValueError(f"rate {over[0]} is above search.max_rate ({self.search.max_rate})")
        for name, values in (("rate", self.rate), ("concurrency", self.concurrency)):
            if values and len(set(values)) != len(values):
                raise ValueError(f"{name} repeats a level; each level must differ")
            if values and any(v <= 0 for v in values):
                raise ValueError(f"every {name} must be above 0")
        return self

    def rates(self) -> list[float]:
        """The open-loop levels, ascending: ``rate``, or without it ``search.max_rate`` halved five times."""
        if self.rate:
            return sorted(self.rate)
        top = self.search.max_rate if self.search and self.search.max_rate else 0.0
        return [float(f"{top / 2 ** k:.3g}") for k in range(SEARCH_LEVELS - 1, -1, -1)] if top else []

    @property
    def worker_in_flight(self) -> int:
        """Each worker's share of ``max_in_flight``."""
        return -(-self.max_in_flight // self.workers)

    @property
    def level_key(self) -> str:
        """``concurrency`` for a closed loop, ``rate`` for an open one."""
        return "concurrency" if self.arrival == "closed" else "rate"
