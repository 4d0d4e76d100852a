"""The metric catalogue: every metric declared once (``model``), the built-in ones (``builtin``), and
docs/metrics.md generated from them (``docs``; ``python -m evalharness.scoring.catalogue --markdown``)."""

from evalharness.scoring.catalogue import builtin as _builtin  # noqa: F401  (registers the built-in metrics)
from evalharness.scoring.catalogue import judged as _judged  # noqa: F401  (and those of model-graded checks)
from evalharness.scoring.catalogue import load as _load  # noqa: F401  (and the load metrics after them)
from evalharness.scoring.catalogue.docs import markdown
from evalharness.scoring.catalogue.model import *  # noqa: F403
from evalharness.scoring.catalogue.model import __all__ as _model_all

__all__ = ["markdown", *_model_all]
