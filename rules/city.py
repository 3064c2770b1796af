"""City air values of one locality (pure): real-time city AQI per hour, the rolling 24-h AQI and
the daily city AQI per Beijing natural day, kept up to date as stations report.

Per hour and factor the city value is the mean of the stations' valid values (standards.md §2.5:
the arithmetic mean of the city's valid stations [MEM]); the rolling 24-h AQI is taken over any
consecutive 24 hours with at least ``MIN_ROLLING_HOURS`` of them (GB 3095-2012 表4 daily validity
applied to the window); a day closes with its hour labelled 00:00 (or the first hour of a later
day) and is re-emitted by a late sample of a closed day. The heavy-pollution-warning decisions on
these values are made by the caller (alerts.locality), with rules.warnings.

State is plain data (``to_dict``/``from_dict``) so the stream worker can checkpoint it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from rules import aqi as aqi_mod
from rules.airstats import DailyO3Max8h
from rules.beijing import BEIJING, beijing_date, beijing_day
from rules.evaluate import AIR_FACTORS, Point, aqi_point, city_tags, epoch_hours, from_epoch_hours

#: Hours of city data kept: 24 for the rolling AQI plus the 48-h lateness horizon of rules.evaluate.
KEEP_HOURS: Final = 72
#: A city hour counts when at least one station reported it; a rolling 24-h AQI needs ≥ 20 of its
#: 24 hours (GB 3095 表4 daily validity, applied to the rolling window).
MIN_ROLLING_HOURS: Final = 20


def _num(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def city_hour_from_sums(
    sums: Sequence[float], counts: Sequence[int], stations: int, at: datetime, locality: str
) -> Point | None:
    """City real-time AQI of an hour: per factor the mean of the stations' valid values (from
    their sums and counts in ``AIR_FACTORS`` order, added in station order), then AQI
    (standards.md §2.5: city values = arithmetic mean of the city's valid stations [MEM])."""
    if not stations:
        return None
    conc: dict[str, float | None] = {
        f: (sums[i] / counts[i] if counts[i] else None) for i, f in enumerate(AIR_FACTORS)
    }
    if all(v is None for v in conc.values()):
        return None
    result = aqi_mod.realtime_aqi(conc, at=at)
    p = aqi_point(result, city_tags(locality), at)
    return Point(p.measurement, p.tags, {**p.fields, "stations": stations}, at)


@dataclass
class CityHour:
    """What one station hour changed: city points, and the complete hours for the warnings."""

    points: list[Point] = field(default_factory=list)
    #: (hour label, rolling 24-h AQI) of the hour that has just become complete
    rolling: tuple[tuple[datetime, int], ...] = ()
    #: (Beijing day, daily city AQI) of the days closed or corrected
    daily: tuple[tuple[date, int], ...] = ()


class CityAir:
    """City air values of one locality; mutable, plain data through ``to_dict``/``from_dict``."""

    def __init__(self, locality: str) -> None:
        self.locality = locality
        #: epoch hour → source → six concentrations (AIR_FACTORS order)
        self.city: dict[int, dict[str, list[float | None]]] = {}
        self.days_done: list[str] = []
        self.current_day: str | None = None
        self.warned_hour = -1
        # derived, not persisted: per-hour sums and counts (see _hour_means)
        self._means: dict[int, tuple[list[float], list[int]]] = {}
        self._latest_hour: int | None = None  # newest hour in ``city`` (derived when None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "city": {str(h): rows for h, rows in self.city.items()},
            "days_done": self.days_done,
            "current_day": self.current_day,
            "warned_hour": self.warned_hour,
        }

    @classmethod
    def from_dict(cls, locality: str, data: Mapping[str, Any]) -> CityAir:
        st = cls(locality)
        st.city = {int(h): dict(rows) for h, rows in dict(data.get("city") or {}).items()}
        st.days_done = list(data.get("days_done") or [])
        st.current_day = data.get("current_day")
        st.warned_hour = int(data.get("warned_hour", -1))
        return st

    def hour(self, source: str, at: datetime, fields: Mapping[str, Any]) -> CityHour:
        """A station's hourly reading (``fields``: its valid concentrations) → the city points it
        completes or corrects, and the rolling / daily AQI the warning rules should now see."""
        out = CityHour()
        if (at.minute, at.second, at.microsecond) != (0, 0, 0):
            return out
        h = epoch_hours(at)
        row = [_num(fields.get(f)) for f in AIR_FACTORS]
        hour = self.city.setdefault(h, {})
        before = hour.get(source)
        if before == row:
            return out  # duplicate: nothing changes
        hour[source] = row
        means = self._means.get(h)
        if before is None and means is not None:
            # a new station of the hour: add its values to the hour's sums, in station order
            # as _hour_means would (the same floats), instead of re-adding every station
            hour_sum, hour_n = means
            for i, v in enumerate(row):
                if v is not None:
                    hour_sum[i] += v
                    hour_n[i] += 1
        else:
            self._means.pop(h, None)  # a correction: recomputed from the rows when next needed
        sums = self._hour_means(h)
        assert sums is not None  # the hour holds this station's row
        p = city_hour_from_sums(sums[0], sums[1], len(hour), at, self.locality)
        # keep KEEP_HOURS hours before the newest (a sample older than that still gets its
        # city value above, then its hour goes)
        if self._latest_hour is None:
            self._latest_hour = max(self.city)
        if h > self._latest_hour:
            self._latest_hour = h
            for old in [k for k in self.city if k < h - KEEP_HOURS]:
                del self.city[old]
                self._means.pop(old, None)
        elif h < self._latest_hour - KEEP_HOURS:
            del self.city[h]
            self._means.pop(h, None)
        if p is not None:
            out.points.append(p)
        # The warning rules see an hour once it is complete: when the first station reports the
        # next hour (or a later one), the rolling 24-h AQI of the previous hour is final enough.
        if h > self.warned_hour:
            prev = h - 1 if self.warned_hour >= 0 else h
            rolling = self._rolling(prev)
            if rolling is not None:
                out.points.append(rolling)
                out.rolling = ((from_epoch_hours(prev), int(rolling.fields["aqi"])),)
            self.warned_hour = h
        # a city day closes when the hour labelled 00:00 (slot 23) or a later day arrives
        local_day = beijing_day(at)
        for d in self._days_to_close(local_day, at):
            daily = self._city_day(d)
            if daily is not None:
                out.points.append(daily)
                aqi_v = daily.fields.get("aqi")
                if isinstance(aqi_v, int):
                    out.daily += ((d, aqi_v),)
        return out

    def _days_to_close(self, day: date, at: datetime) -> list[date]:
        todo: list[date] = []
        local = at.astimezone(BEIJING)
        if local.hour == 0:
            todo.append(day)  # the hour labelled 24:00 completes the day
        elif day.isoformat() in self.days_done:
            todo.append(day)  # a late sample corrects a day already published
        prev = day - timedelta(days=1)
        new_day = self.current_day is not None and self.current_day < day.isoformat()
        if new_day and prev.isoformat() not in self.days_done:
            todo.append(prev)  # the first hour of a new day closes an uncompleted previous day
        if self.current_day is None or self.current_day < day.isoformat():
            self.current_day = day.isoformat()
        for d in todo:
            if d.isoformat() not in self.days_done:
                self.days_done.append(d.isoformat())
        del self.days_done[:-7]
        return sorted(set(todo))

    def _city_means(
        self, hours: Iterable[int]
    ) -> tuple[dict[str, float | None], list[float | None], int]:
        sums = [0.0] * 6
        counts = [0] * 6
        o3_hours: list[float | None] = []
        n = 0
        for h in hours:
            got = self._hour_means(h)
            if got is None:
                o3_hours.append(None)
                continue
            n += 1
            hour_sum, hour_n = got
            for i in range(6):
                if hour_n[i]:
                    sums[i] += hour_sum[i] / hour_n[i]
                    counts[i] += 1
            o3_hours.append(hour_sum[5] / hour_n[5] if hour_n[5] else None)
        means: dict[str, float | None] = {
            f: (sums[i] / counts[i] if counts[i] >= MIN_ROLLING_HOURS else None)
            for i, f in enumerate(AIR_FACTORS)
            if f != "o3"
        }
        return means, o3_hours, n

    def _hour_means(self, h: int) -> tuple[list[float], list[int]] | None:
        """(sums, counts) of the stations' valid values per factor in hour ``h`` (None: no
        station). Memoised until a station's row of that hour changes: the rolling window
        of every hour would otherwise re-add the same 24 hours."""
        got = self._means.get(h)
        if got is not None:
            return got
        rows = self.city.get(h)
        if not rows:
            return None
        hour_sum = [0.0] * 6
        hour_n = [0] * 6
        for row in rows.values():
            for i, v in enumerate(row):
                if v is not None:
                    hour_sum[i] += v
                    hour_n[i] += 1
        got = self._means[h] = (hour_sum, hour_n)
        return got

    def _rolling(self, h: int) -> Point | None:
        """AQI of the 24 h ending at hour ``h`` (any consecutive 24 h, may cross midnight)."""
        hours = range(h - 23, h + 1)
        means, o3_hours, n = self._city_means(hours)
        if n < MIN_ROLLING_HOURS:
            return None
        o3 = DailyO3Max8h().result(o3_hours).value
        means["o3_8h"] = o3
        means["o3_1h"] = max((v for v in o3_hours if v is not None), default=None)
        at = from_epoch_hours(h)
        result = aqi_mod.daily_aqi(means, day=beijing_date(at))
        if result.aqi is None:
            return None
        return Point(
            "aqi",
            {"locality": self.locality, "source": "city", "period": "rolling24h"},
            {
                "aqi": result.aqi,
                "level": int(result.level or 0),
                "primary": ",".join(result.primary),
                "hours": n,
            },
            at,
        )

    def _city_day(self, d: date) -> Point | None:
        start = datetime(d.year, d.month, d.day, tzinfo=BEIJING)
        first = epoch_hours(start) + 1
        means, o3_hours, n = self._city_means(range(first, first + 24))
        if n == 0:
            return None
        means["o3_8h"] = DailyO3Max8h().result(o3_hours).value
        means["o3_1h"] = max((v for v in o3_hours if v is not None), default=None)
        result = aqi_mod.daily_aqi(means, day=d)
        fields: dict[str, float | int | str | bool] = {"hours": n, "edition": result.edition}
        if result.aqi is not None:
            fields.update(
                aqi=result.aqi,
                level=int(result.level or 0),
                category=result.category or "",
                primary=",".join(result.primary),
                good=result.aqi <= 100,  # 优良天 (HJ 633 levels 1–2)
                heavy=result.aqi > 200,  # 重度及以上
            )
        for f, v in means.items():
            if v is not None:
                fields[f] = round(v, 3)
        return Point(
            "aqi", {"locality": self.locality, "source": "city", "period": "day"}, fields, start
        )
