"""Deterministic simulators of the monitoring network (issue 5, ``envwatch simulate``).

Pure generation (no clock, no I/O): :func:`simulate` turns source specs, a start, a duration and
a seed into :class:`Delivery` objects (an :class:`ingest.schemas.Sample` and the simulated
instant it is sent), in delivery order, optionally transformed by a scripted scenario
(:data:`SCENARIOS`). :mod:`ingest.simulators.publish` sends them (MQTT, HJ 212 over TCP, JSON
lines), paced by a :class:`SimClock`. Timelines of the scenarios: ``docs/simulators.md``.
"""

from __future__ import annotations

from rules.beijing import BEIJING

from ingest.simulators.errors import PublishError, ScenarioError, SimulatorError, SpecError
from ingest.simulators.generate import check_start, label_times, simulate
from ingest.simulators.model import Delivery, SimClock, SourceSpec
from ingest.simulators.network import default_specs, forecast_spec, specs_from_catalog
from ingest.simulators.scenarios import SCENARIOS, Event, Scenario, make_scenario

__all__ = [
    "BEIJING",
    "SCENARIOS",
    "Delivery",
    "Event",
    "PublishError",
    "Scenario",
    "ScenarioError",
    "SimClock",
    "SimulatorError",
    "SourceSpec",
    "SpecError",
    "check_start",
    "default_specs",
    "forecast_spec",
    "label_times",
    "make_scenario",
    "simulate",
    "specs_from_catalog",
]
