"""The load metrics (evalharness/load/metrics.py), after the built-in ones: measured in a run with ``load:``,
each of a level's measured (not warm-up) requests, over the level's window (first sent to last finished).

They are shown in report.html's Load section and the console's level table (evalharness/report/load.py), not in
the table of every metric, where a run without load would list each as not measured.
"""

from __future__ import annotations

from evalharness.scoring.catalogue.model import Computed, Metric, register

_LOAD = Computed("cell", "evalharness.load.metrics.load_metrics")
_PER_WINDOW = ("value", "n", "window_s")

for _metric in (
    Metric("achieved_rate_rps", "number", "latency", "sent req/s", "Rate requests were sent at: (requests - 1) "
           "/ (last sent - first sent); next to the level's `rate`, it shows whether the client kept the "
           "schedule.", "requests per second", _LOAD, fields=("value", "n")),
    Metric("throughput_rps", "number", "latency", "req/s", "Completed requests per second of the level's window "
           "(vLLM's request throughput).", "requests per second", _LOAD, higher_is_better=True,
           fields=_PER_WINDOW),
    Metric("output_tps", "number", "latency", "out tok/s", "Completion tokens (usage, or counted) of completed "
           "requests per second of the window (vLLM's output token throughput).", "tokens per second", _LOAD,
           higher_is_better=True, fields=_PER_WINDOW),
    Metric("goodput_rps", "number", "latency", "goodput", "Requests meeting every `load.slo` bound per second of "
           "the window (DistServe's goodput, as vLLM's `--goodput`); a failed request is never good.",
           "requests per second", _LOAD, higher_is_better=True, fields=_PER_WINDOW),
    Metric("slo_attainment", "rate", "latency", "SLO met", "Share of the level's requests meeting every "
           "`load.slo` bound (`ttft_s`, `e2e_s`, `tpot_s`; a one-token answer meets any TPOT bound); a failed "
           "request does not.", "share of requests", _LOAD, higher_is_better=True, title="SLO attainment"),
    Metric("schedule_lag_s", "latency", "latency", "lag", "How late each request was sent: sent - due (open "
           "loop: its scheduled time; closed loop: when its slot freed), including waits for "
           "`max_in_flight` and rate limits; `capped` counts the requests due while `max_in_flight` were out.",
           "seconds", _LOAD, higher_is_better=False,
           fields=("p50", "p90", "p95", "p99", "mean", "min", "max", "n", "capped")),
    Metric("in_flight_mean", "number", "latency", "in flight", "Mean requests in flight over the window: the "
           "sum of request durations (sent to finished) / the window.", "requests", _LOAD, fields=("value", "n")),
):
    register(_metric)
