"""``envwatch`` commands: backtest (filled in by its issue)."""

from __future__ import annotations
