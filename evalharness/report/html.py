"""report.html: one self-contained file (inline CSS, inline SVG charts, one small inline script).

A Content-Security-Policy in the page allows only that one script (by its hash) and no network at all, so
even a model answer that slipped past escaping could neither run nor fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import jinja2
from markupsafe import Markup

from evalharness import __version__
from evalharness.report.outcomes import Outcomes, build_outcomes
from evalharness.report.view import build_view
from evalharness.types import Manifest, Record, Summary

_ENV = jinja2.Environment(loader=jinja2.PackageLoader("evalharness.report", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
                          lstrip_blocks=True)
# A template only so that packaging ships it with the others; it has no variables.
_SCRIPT = _ENV.get_template("script.js.j2").render()
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode("utf-8")).digest()).decode("ascii")
CSP = (f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'none'")


def render_html(manifest: Manifest, summary: Summary, records: list[Record],
                outcomes: Outcomes | None = None) -> str:
    """The page as a string (``outcomes`` is shared with the other writers when they already built it)."""
    outcomes = outcomes or build_outcomes(manifest, summary, records)
    view = build_view(manifest, summary, records, outcomes)
    return _ENV.get_template("report.html.j2").render(v=view, version=__version__, csp=CSP,
                                                      script=Markup(_SCRIPT))


def write_html(run_dir: Path, manifest: Manifest, summary: Summary, records: list[Record],
               outcomes: Outcomes | None = None) -> Path:
    path = run_dir / "report.html"
    # errors="replace": a lone surrogate in a model answer must not stop the report being written.
    path.write_text(render_html(manifest, summary, records, outcomes), encoding="utf-8", errors="replace")
    return path
