"""envwatch's pure domain core.

Nothing in this package reads the clock, the environment, files or the network: standards are
data, time is passed in as the event's own timestamp, and every function is deterministic.
Allowed imports: the standard library and pydantic (architecture.md §3; enforced by
``rules/ruff.toml`` and ``tests/test_layering.py``).
"""
