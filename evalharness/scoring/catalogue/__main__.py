"""``python -m evalharness.scoring.catalogue --markdown > docs/metrics.md``: the metric reference."""

from __future__ import annotations

import argparse

from evalharness.scoring.catalogue import markdown

parser = argparse.ArgumentParser(prog="python -m evalharness.scoring.catalogue",
                                 description="Print the metric catalogue.")
parser.add_argument("--markdown", action="store_true", required=True, help="as docs/metrics.md (Markdown)")
parser.parse_args()
print(markdown(), end="")
