"""AQI forecasts as their own input (pure): one forecast *issue* per record.

A forecast office (预报员, the city's environmental monitoring centre) publishes, at its issue
time, for each of the next days the daily AQI — a value or a range — and the primary pollutant
(HJ 633-2026: forecasts of at least the next 3 days, standards.md §1.5). envwatch takes such an
issue as one record whose **event time is its issue time**: it is judged like any other sample
against its receipt (never "too far in the future" for the days it describes) and it never moves
a partition's or a locality's clock (it is no observation).

For the warning rules (rules/warnings.py) a day with a range counts with its upper bound: a
warning is a precaution, and the plans ask for it to be issued ahead (envwatch's choice [MEM];
a single value counts as itself). Older per-day forecast samples (kind ``forecast``, one
``aqi`` value labelled with the end of its target day) remain accepted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final

from rules.beijing import beijing_date
from rules.errors import InvalidReading

#: The pollutants HJ 633 names as primary (首要污染物).
PRIMARY: Final = frozenset({"pm25", "pm10", "o3", "o3_8h", "no2", "so2", "co"})
#: The most days one issue may cover, counted from its issue day (HJ 633-2026: at least 3;
#: 10 is envwatch's bound [MEM], the same as for per-day forecast samples).
MAX_DAYS_AHEAD: Final = 10
#: The most days one issue may list.
MAX_DAYS: Final = 15


@dataclass(frozen=True, slots=True)
class ForecastDay:
    """One target day of an issue: AQI (or a range) and the primary pollutant."""

    day: date
    aqi: int | None = None
    aqi_min: int | None = None
    aqi_max: int | None = None
    primary: str | None = None

    @property
    def expected(self) -> int:
        """The AQI the warning rules use: the value, else the range's upper bound."""
        value = self.aqi if self.aqi is not None else self.aqi_max
        assert value is not None  # checked by :func:`check_issue`
        return value

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"date": self.day.isoformat()}
        for key in ("aqi", "aqi_min", "aqi_max", "primary"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(frozen=True, slots=True)
class ForecastIssue:
    """What a forecast office issued at one time for its locality."""

    issuer: str
    days: tuple[ForecastDay, ...]

    def days_json(self) -> str:
        return json.dumps([d.to_dict() for d in self.days], ensure_ascii=False, sort_keys=True)


def _aqi(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise InvalidReading("AQI must be a whole number", factor=field, value=value)
    if not 0 <= value <= 500:
        raise InvalidReading("AQI must lie within 0..500 (HJ 633 表1)", factor=field, value=value)
    return int(value)


def issue_of(issuer: object, days: object) -> ForecastIssue:
    """An issue from its wire form (``issuer``, ``days``: [{date, aqi | aqi_min + aqi_max,
    primary?}]); raises :class:`InvalidReading` naming the field and the reason."""
    if not isinstance(issuer, str) or not 1 <= len(issuer) <= 200:
        raise InvalidReading(
            "issuer must be a name of 1..200 characters", factor="issuer", value=issuer
        )
    if not isinstance(days, Sequence) or isinstance(days, str) or not 1 <= len(days) <= MAX_DAYS:
        raise InvalidReading(f"days must list 1..{MAX_DAYS} days", factor="days", value=days)
    out: list[ForecastDay] = []
    for i, raw in enumerate(days):
        where = f"days[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidReading("expected an object", factor=where, value=raw)
        unknown = sorted(set(raw) - {"date", "aqi", "aqi_min", "aqi_max", "primary"})
        if unknown:
            raise InvalidReading(f"unknown field(s) {unknown}", factor=where, value=raw)
        try:
            day = date.fromisoformat(str(raw.get("date")))
        except ValueError as exc:
            raise InvalidReading(
                "date must be YYYY-MM-DD", factor=f"{where}.date", value=raw.get("date")
            ) from exc
        aqi = _aqi(raw.get("aqi"), f"{where}.aqi")
        lo = _aqi(raw.get("aqi_min"), f"{where}.aqi_min")
        hi = _aqi(raw.get("aqi_max"), f"{where}.aqi_max")
        if aqi is None and (lo is None or hi is None):
            raise InvalidReading("give aqi or both aqi_min and aqi_max", factor=where, value=raw)
        if lo is not None and hi is not None and lo > hi:
            raise InvalidReading("aqi_min exceeds aqi_max", factor=where, value=raw)
        primary = raw.get("primary")
        if primary is not None and primary not in PRIMARY:
            raise InvalidReading(
                f"primary must be one of {sorted(PRIMARY)}",
                factor=f"{where}.primary",
                value=primary,
            )
        out.append(ForecastDay(day, aqi, lo, hi, primary))
    if len({d.day for d in out}) != len(out):
        raise InvalidReading(
            "a day is listed twice", factor="days", value=[d.day.isoformat() for d in out]
        )
    return ForecastIssue(issuer, tuple(sorted(out, key=lambda d: d.day)))


def check_issue(issue: ForecastIssue, issued: datetime) -> None:
    """Every day lies from the issue's own Beijing day to :data:`MAX_DAYS_AHEAD` days after it."""
    first = beijing_date(issued)
    last = first + timedelta(days=MAX_DAYS_AHEAD)
    for d in issue.days:
        if not first <= d.day <= last:
            raise InvalidReading(
                f"target day outside {first.isoformat()}..{last.isoformat()} (issue day + "
                f"{MAX_DAYS_AHEAD} days)",
                factor="days.date",
                value=d.day.isoformat(),
            )


def days_from_json(raw: str) -> tuple[ForecastDay, ...]:
    """The ``days`` field of a ``forecast`` point back (written by :meth:`ForecastIssue.days_json`)."""
    return issue_of("-", json.loads(raw)).days


__all__ = [
    "MAX_DAYS_AHEAD",
    "ForecastDay",
    "ForecastIssue",
    "check_issue",
    "days_from_json",
    "issue_of",
]
