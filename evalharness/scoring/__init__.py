"""Scoring: pure functions from stored records to metrics. No I/O, no network."""
