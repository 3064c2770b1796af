"""``envwatch demo``: the walking skeleton on the embedded default."""

from __future__ import annotations
