"""``evalharness probe``: which request parameters a target really honours, each by a small controlled experiment.

``prober`` sends the requests and holds the findings' vocabulary, ``experiments`` is the catalogue of
experiments (its docstring defines the verdicts), ``command`` runs them against a config's target and
writes ``probe.json``, ``probe.html`` and the console table.
"""

from evalharness.probe.command import format_table, probe, probe_target, render_html
from evalharness.probe.experiments import EXPERIMENTS, run_experiments
from evalharness.probe.prober import VERDICTS, Finding, Prober, Tokenizer, Verdict

__all__ = ["EXPERIMENTS", "VERDICTS", "Finding", "Prober", "Tokenizer", "Verdict", "format_table", "probe",
           "probe_target", "render_html", "run_experiments"]
