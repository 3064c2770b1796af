"""Errors raised by the pure alert core (``alerts`` except ``alerts.notify``).

Hierarchy::

    AlertsError                     root; never raised itself
    ├── RuleConfigError             an alert rule / silence / inhibition declared wrongly (field, reason)
    ├── InvalidEvaluation           an evaluation the rules cannot take (field, value, reason)
    ├── InvalidAction               a human action that does not apply (fingerprint, action, reason)
    │   └── UnknownAlert            an action on a fingerprint the engine does not hold
    └── StateError                  serialised state that cannot be restored (field, reason)

Each exception carries its data as attributes so an agent can log *where* it failed and route the
input to the dead-letter topic without parsing the message.
"""

from __future__ import annotations


class AlertsError(Exception):
    """Root of every error raised by ``alerts``."""


class RuleConfigError(AlertsError):
    """A rule, silence or inhibition rule that is declared wrongly."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"alert configuration: {field}: {reason}")


class InvalidEvaluation(AlertsError):
    """An evaluation that cannot be turned into an observation."""

    def __init__(self, field: str, reason: str, value: object = None) -> None:
        self.field = field
        self.reason = reason
        self.value = value
        super().__init__(f"invalid evaluation: {field}={value!r}: {reason}")


class InvalidAction(AlertsError):
    """A human action (acknowledge, assign, resolve) that does not apply to the alert."""

    def __init__(self, fingerprint: str, action: str, reason: str) -> None:
        self.fingerprint = fingerprint
        self.action = action
        self.reason = reason
        super().__init__(f"cannot {action} alert {fingerprint}: {reason}")


class UnknownAlert(InvalidAction):
    """An action on an alert the engine does not hold."""

    def __init__(self, fingerprint: str, action: str) -> None:
        super().__init__(fingerprint, action, "no such alert")


class StateError(AlertsError):
    """Serialised engine or alert state that cannot be restored."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"cannot restore alert state: {field}: {reason}")
