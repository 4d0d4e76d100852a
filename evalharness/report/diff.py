"""Where a repeat left the modal output: the common prefix, the differing middle, the common suffix.

Segments are plain text; the template escapes them and wraps the differing part in <mark>. Prefix and
suffix trimming (not a full edit script) matches how ``first_divergence`` is defined and stays linear.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from evalharness.scoring.metrics import first_divergence

# Long shared stretches are elided down to this much context either side of the change.
CONTEXT = 160
# The differing part is cut here; the full text is in results.jsonl.
MAX_CHANGED = 1600


@dataclass(frozen=True)
class Segment:
    text: str
    kind: str  # "same", "changed" (the part to <mark>), or "elided" (a note standing for skipped text)


def diff_segments(modal: str, other: str) -> list[Segment]:
    """``other`` as segments relative to ``modal``: unchanged prefix, changed middle, unchanged suffix."""
    start = first_divergence(modal, other)
    # The suffix may not reach back into the prefix of either string.
    room = min(len(modal), len(other)) - start
    suffix = len(os.path.commonprefix([modal[::-1], other[::-1]]))  # noqa: RUF071 - characters
    suffix = min(suffix, room)
    middle = other[start:len(other) - suffix]
    segments: list[Segment] = []
    segments += _context(other[:start], keep_end=True)
    if middle:
        segments.append(Segment(middle[:MAX_CHANGED], "changed"))
        if len(middle) > MAX_CHANGED:
            segments.append(Segment(f"…[{len(middle) - MAX_CHANGED:,} more changed characters]", "elided"))
    elif start < len(modal) - suffix:
        # Nothing was inserted here: the modal output had text that this one lacks.
        segments.append(Segment(f"[{len(modal) - suffix - start:,} characters missing]", "elided"))
    segments += _context(other[len(other) - suffix:] if suffix else "", keep_end=False)
    return segments


def _context(text: str, *, keep_end: bool) -> list[Segment]:
    """Unchanged text, elided to CONTEXT characters next to the change when it is long."""
    if not text:
        return []
    if len(text) <= 2 * CONTEXT:
        return [Segment(text, "same")]
    skipped = Segment(f"…[{len(text) - CONTEXT:,} identical characters]…", "elided")
    return [skipped, Segment(text[-CONTEXT:], "same")] if keep_end else [Segment(text[:CONTEXT], "same"), skipped]
