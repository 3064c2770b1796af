"""``envwatch alerts …``: the alerts service's command line client (docs/api.md)."""

from __future__ import annotations
