"""Errors raised by the pure rule engine.

Hierarchy::

    RulesError                      root; never raised itself
    ├── InvalidReading              a value that cannot be evaluated (factor, value, reason)
    │   ├── UnknownFactor           a factor name outside the vocabulary (rules.factors)
    │   └── UnitMismatch            a value in a unit the rule does not take
    ├── NoStandard                  no edition of a standard covers the event time
    └── ConfigError                 a catalogue problem (file, field path, reason); see rules.catalog

Each exception carries the offending data as attributes so callers (agents, the CLI) can log
*where* it failed and route the input to the dead-letter topic without parsing messages.
"""

from __future__ import annotations


class RulesError(Exception):
    """Root of every error raised by ``rules``."""


class InvalidReading(RulesError):
    """A reading that cannot be evaluated."""

    def __init__(self, reason: str, *, factor: str | None = None, value: object = None) -> None:
        self.reason = reason
        self.factor = factor
        self.value = value
        where = f" {factor}={value!r}" if factor is not None else ""
        super().__init__(f"invalid reading{where}: {reason}")


class UnknownFactor(InvalidReading):
    """A factor name that is not part of the canonical vocabulary."""

    def __init__(self, factor: str) -> None:
        super().__init__("unknown factor", factor=factor)


class UnitMismatch(InvalidReading):
    """A value given in a unit the rule does not accept."""

    def __init__(self, factor: str, unit: str, expected: str) -> None:
        self.unit = unit
        self.expected = expected
        super().__init__(f"unit {unit!r}, expected {expected!r}", factor=factor)


class NoStandard(RulesError):
    """No edition of a standard is in force at the given time."""

    def __init__(self, standard: str, at: object) -> None:
        self.standard = standard
        self.at = at
        super().__init__(f"no edition of {standard} in force at {at!r}")


class ConfigError(RulesError):
    """One or more problems in the monitoring catalogue.

    ``problems`` lists every problem found (not only the first), each naming file, line (when
    known), field path and reason.
    """

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        lines = "\n".join(str(p) for p in problems)
        super().__init__(f"{len(problems)} configuration problem(s):\n{lines}")


class ConfigProblem:
    """One catalogue problem: where it is and why it is wrong."""

    __slots__ = ("field", "file", "line", "reason")

    def __init__(self, file: str, field: str, reason: str, line: int | None = None) -> None:
        self.file = file
        self.field = field
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.reason}"

    def __repr__(self) -> str:
        return f"ConfigProblem({self.file!r}, {self.field!r}, {self.reason!r}, line={self.line!r})"


# ---- appended for rules.water / rules.emission (issue 3, water and emissions) ----


class OxygenOutOfRange(InvalidReading):
    """A measured or reference O2 that makes the oxygen correction meaningless (O2 ≥ 21 % or < 0)."""

    def __init__(self, value: float, reason: str, *, factor: str = "o2") -> None:
        super().__init__(reason, factor=factor, value=value)


class OutsideWindow(InvalidReading):
    """A reading whose time lies outside the window of the aggregator it was added to."""

    def __init__(self, factor: str | None, at: object, window: str) -> None:
        self.at = at
        self.window = window
        super().__init__(f"time {at!r} outside the window {window}", factor=factor, value=at)


class NoLimit(RulesError):
    """An edition of a standard sets no limit for this pollutant, averaging period and grade."""

    def __init__(self, standard: str, pollutant: str, period: str, grade: int) -> None:
        self.standard = standard
        self.pollutant = pollutant
        self.period = period
        self.grade = grade
        super().__init__(f"{standard} has no grade-{grade} {period} limit for {pollutant!r}")
