"""junit.xml: a test case per gate and per case expectation in each cell, for CI test reporters.

A ``per_case`` gate that fails is a failing test case per case outside its bound, named by suite/id.

A case × cell test case fails when any of its samples misses the case's ``expect`` checks, and errors when
a request failed; the message says how many and why. Cases without ``expect`` are listed as skipped. The
exit code is decided by the gates alone; this file is for reading the details in CI.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

from evalharness.report.fmt import case_count, gate_bound, gate_subject, gate_value
from evalharness.report.outcomes import Outcomes, Pair
from evalharness.types import GateVerdict, Summary

# Characters XML 1.0 cannot carry even escaped (control characters, lone surrogates): model output may hold them.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
DETAIL_LIMIT = 4000


def xml_text(text: str) -> str:
    """``text`` with characters XML cannot represent replaced by U+FFFD (escaping is ElementTree's job)."""
    return _NOT_XML.sub("\ufffd", text)


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text:
        el.text = xml_text(text)
    return el


def _gate_name(gate: GateVerdict) -> str:
    return f"{gate['metric']} {gate_bound(gate, ascii_only=True)} [{gate_subject(gate)}]"


def _gates_suite(root: ET.Element, gates: list[GateVerdict]) -> None:
    # A failed per_case gate is one test case per failing case.
    failures = sum(len(g["failing_cases"]) if g.get("failing_cases") else int(not g["passed"]) for g in gates)
    tests = sum(len(g["failing_cases"]) if g.get("failing_cases") else 1 for g in gates)
    suite = _el(root, "testsuite", name="gates", tests=str(tests), failures=str(failures), errors="0",
                skipped="0", time="0")
    for gate in gates:
        if gate.get("failing_cases"):
            _failing_cases(suite, gate)
            continue
        case = _el(suite, "testcase", classname="evalharness.gates", name=_gate_name(gate), time="0")
        if not gate["passed"]:
            value = "none" if gate.get("value") is None else gate_value(gate, 6)
            message = f"{gate['metric']} = {value}" + (f": {gate['reason']}" if gate.get("reason") else "")
            _el(case, "failure", message, message=message, type="gate")


def _failing_cases(suite: ET.Element, gate: GateVerdict) -> None:
    """A failed ``per_case`` gate: a failing test case per case outside the bound, named by suite/id."""
    for found in gate["failing_cases"]:
        case = _el(suite, "testcase", classname="evalharness.gates", name=f"{_gate_name(gate)} {found['case']}",
                   time="0")
        message = f"{gate['metric']} of {case_count(found)} (want {gate_bound(gate, ascii_only=True)})"
        _el(case, "failure", message, message=message, type="gate")


def _pair_case(suite: ET.Element, classname: str, label: str, pair: Pair, has_expect: bool) -> tuple[int, int, int]:
    """Append one case × cell test case; returns (failures, errors, skipped) it adds."""
    seconds = sum((r.get("timings") or {}).get("e2e_s") or 0.0 for r in pair.records)
    case = _el(suite, "testcase", classname=classname, name=label, time=f"{seconds:.3f}")
    if pair.errors:
        kinds = Counter(r.get("error_kind") or "unknown" for r in pair.records if not r["ok"])
        message = f"{pair.errors} of {pair.n} requests failed: " + ", ".join(f"{k} × {n}" for k, n in kinds.items())
        detail = "\n".join(f"repeat {r['repeat']}: {r.get('error') or ''}" for r in pair.records if not r["ok"])
        _el(case, "error", detail[:DETAIL_LIMIT], message=message, type="request")
        return 0, 1, 0
    if not has_expect:
        _el(case, "skipped", message="the case has no expect checks")
        return 0, 0, 1
    if pair.failed:
        reasons = Counter(reason for f in pair.failures for reason in f)
        top = "; ".join(reason for reason, _ in reasons.most_common(3))
        message = f"{pair.failed} of {pair.n} samples failed: {top}"
        detail = "\n".join(f"repeat {r['repeat']}: {'; '.join(f)}\n  answer: {(r.get('content') or '')[:300]!r}"
                           for r, f in zip(pair.records, pair.failures, strict=True) if f)
        _el(case, "failure", detail[:DETAIL_LIMIT], message=message[:1000], type="expectation")
        return 1, 0, 0
    return 0, 0, 0


def render_junit(summary: Summary, outcomes: Outcomes) -> bytes:
    """The JUnit XML document (UTF-8 bytes with an XML declaration)."""
    root = ET.Element("testsuites", {"name": xml_text(f"evalharness: {summary['name']}")})
    _gates_suite(root, summary["gates"])
    labels = {c["cell_id"]: c["label"] for c in summary["cells"]}
    by_suite: dict[str, list[str]] = {}
    for case in outcomes.cases:
        by_suite.setdefault(case.split("/", 1)[0], []).append(case)
    for suite_name, cases in by_suite.items():
        suite = _el(root, "testsuite", name=f"cases: {suite_name}")
        counts = [0, 0, 0, 0]  # tests, failures, errors, skipped
        seconds = 0.0
        for case in cases:
            classname = "evalharness." + case.replace("/", ".")
            for cell_id in outcomes.cell_ids:
                pair = outcomes.pair(case, cell_id)
                if pair is None:
                    continue
                added = _pair_case(suite, classname, labels.get(cell_id, cell_id), pair, outcomes.has_expect(case))
                counts = [counts[0] + 1, *(a + b for a, b in zip(counts[1:], added, strict=True))]
                seconds += sum((r.get("timings") or {}).get("e2e_s") or 0.0 for r in pair.records)
        for name, value in zip(("tests", "failures", "errors", "skipped"), counts, strict=True):
            suite.set(name, str(value))
        suite.set("time", f"{seconds:.3f}")
    totals = {name: sum(int(s.get(name, "0")) for s in root) for name in ("tests", "failures", "errors")}
    for name, value in totals.items():
        root.set(name, str(value))
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document


def write_junit(run_dir: Path, summary: Summary, outcomes: Outcomes) -> Path:
    path = run_dir / "junit.xml"
    path.write_bytes(render_junit(summary, outcomes))
    return path
