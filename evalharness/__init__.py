"""evalharness: evaluate and benchmark OpenAI-compatible chat APIs."""

__version__ = "0.1.0"
