"""The alert rule set as the worker sees it: read from a YAML file, hot-reloaded.

Which file (:func:`rules_file`): ``ENVWATCH_ALERT_RULES`` when set (a missing file is a start-up
error naming it), else ``alert-rules.yaml`` in the catalogue directory when there is one, else
none — then the built-in rules (``alerts.rules.DEFAULT_RULES``, the same as the shipped file).

:class:`RulesView` holds the current :class:`alerts.rules.AlertRules`. ``maybe_reload()`` re-reads
the file when its modification time changed; a file with errors is **not** applied (the running
rules stay) and every problem is logged with file, line, field and reason, as for the catalogue.
A new rule set is counted in ``reloads``; the locality stage hands it to each locality's engine
(``Engine.set_rules``: an edited rule keeps its alerts, a removed rule's alerts are closed with
``rule_removed``) and the notify stage reads escalation chains from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.rules import AlertRules, alert_rules_from_text, default_rules
from rules.catalog import ALERT_RULES_FILES
from rules.errors import ConfigError, ConfigProblem

log = logging.getLogger(__name__)

#: The alert-rules file's name in the catalogue directory (rules.catalog skips it).
FILE_NAME = "alert-rules.yaml"


def rules_file(explicit: Path | None, config_dir: Path | None) -> Path | None:
    """The alert-rules file to read: ``explicit`` (ENVWATCH_ALERT_RULES, ``--rules``), else the
    catalogue directory's ``alert-rules.yaml`` (or ``.yml``) when it exists, else None (built-in rules)."""
    if explicit is not None:
        return explicit
    if config_dir is not None and config_dir.is_dir():
        for name in (FILE_NAME, *sorted(ALERT_RULES_FILES - {FILE_NAME})):
            candidate = config_dir / name
            if candidate.is_file():
                return candidate
    return None


def load_alert_rules_file(path: Path, *, catalog: Any = None) -> AlertRules:
    """Read and validate one alert-rules file (with a ``catalog``: also against it,
    ``alerts.rules.alert_rules_from_text``). Raises :class:`ConfigError` naming the file (and
    the line, field and reason of every problem)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([ConfigProblem(str(path), "(file)", f"cannot read: {reason}")]) from exc
    return alert_rules_from_text(str(path), text, catalog=catalog)


def _mtime(path: Path | None) -> float | None:
    if path is None:
        return None
    try:
        return path.stat().st_mtime
    except OSError:
        return None


@dataclass
class RulesView:
    """The worker's current alert rules; call it for them (``LocalityStep`` takes a callable)."""

    path: Path | None
    rules: AlertRules = field(default_factory=default_rules)
    reloads: int = 0
    _mtime: float | None = None

    def __post_init__(self) -> None:
        if self.path is not None:
            self.rules = load_alert_rules_file(self.path)  # at start-up an error stops the worker
            self._mtime = _mtime(self.path)
        log.info(
            "alert rules loaded from %s: %d rules",
            self.path or "the built-in set",
            len(self.rules.rules),
        )

    def __call__(self) -> AlertRules:
        return self.rules

    def maybe_reload(self) -> bool:
        """Reload when the file changed. True when a new rule set applies."""
        if self.path is None:
            return False
        mtime = _mtime(self.path)
        if mtime == self._mtime:
            return False
        self._mtime = mtime  # a broken file is not retried until it changes again
        try:
            rules = load_alert_rules_file(self.path)
        except ConfigError as exc:
            log.error("alert rules reload rejected, keeping the running ones:\n%s", exc)
            return False
        old = {r.id for r in self.rules.rules}
        new = {r.id for r in rules.rules}
        self.rules = rules
        self.reloads += 1
        log.info(
            "alert rules reloaded from %s: %d rules (added %s; removed %s)",
            self.path,
            len(rules.rules),
            ", ".join(sorted(new - old)) or "none",
            ", ".join(sorted(old - new)) or "none",
        )
        return True
