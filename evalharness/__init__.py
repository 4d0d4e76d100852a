"""evalharness: evaluate and benchmark OpenAI-compatible chat APIs."""

from evalharness.scoring.registry import CheckContext, CheckResult, check

__version__ = "0.1.0"

__all__ = ["CheckContext", "CheckResult", "__version__", "check"]
