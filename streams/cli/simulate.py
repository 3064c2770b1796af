"""``envwatch`` commands: simulate (filled in by its issue)."""

from __future__ import annotations
