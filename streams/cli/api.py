"""``envwatch api``: the alerts service (streams/api, docs/api.md)."""

from __future__ import annotations
