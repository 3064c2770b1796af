"""Errors raised by the simulators.

Hierarchy::

    IngestError (ingest.errors)     root of the ingest package
    └── SimulatorError              root of the simulators; raised for bad run arguments
        ├── SpecError                   a source spec that cannot be simulated (source, field, reason)
        ├── ScenarioError               unknown scenario, or no source the scenario can act on
        └── PublishError                a sink could not deliver (target, reason); wraps paho/socket errors

Every exception carries its data as attributes, so the CLI can print *what* is wrong without
parsing messages, and no paho or socket exception escapes ``ingest.simulators.publish``.
"""

from __future__ import annotations

from ingest.errors import IngestError


class SimulatorError(IngestError):
    """Root of every error raised by ``ingest.simulators``."""


class SpecError(SimulatorError):
    """A source spec that cannot be simulated."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = source
        self.field = field
        self.reason = reason
        super().__init__(f"source {source!r}: {field}: {reason}")


class ScenarioError(SimulatorError):
    """An unknown scenario, or a scenario that finds nothing to act on."""

    def __init__(self, scenario: str, reason: str) -> None:
        self.scenario = scenario
        self.reason = reason
        super().__init__(f"scenario {scenario!r}: {reason}")


class PublishError(SimulatorError):
    """A sink could not deliver samples."""

    def __init__(self, target: str, reason: str) -> None:
        self.target = target
        self.reason = reason
        super().__init__(f"publishing to {target}: {reason}")
