"""Beijing time, defined once for the whole code base (architecture.md §5).

Every natural day, daily cycle and HJ 212 clock of envwatch is Beijing time (Asia/Shanghai):
:data:`BEIJING` is the one zone object; nothing else spells ``ZoneInfo("Asia/Shanghai")``.

Two questions are asked of an instant, and they differ at midnight:

* :func:`beijing_date` — the calendar date *at* an instant (``t.astimezone(BEIJING).date()``):
  for a day-start label (a daily point is stamped with its 00:00), a wall-clock time, a forecast
  issue time.
* :func:`beijing_day` — the day a *period labelled by its end* belongs to: the day of the instant
  just before the label, so the hour labelled 00:00 is the last hour of the previous day
  (architecture.md §5; HJ 633 and GB 3095 daily values are the mean over 01:00 … 24:00).

The integer helpers (day numbers since 1970-01-01 Beijing, epoch hours) are what the evaluation
step uses on its hot path. Asia/Shanghai has been UTC+8 without daylight saving since September
1991 (IANA tz database, ``asia`` file: the last PRC DST rule ends 1991-09-15), so from 1992-01-01
on a day and an hour slot are plain integer arithmetic on epoch seconds; earlier instants go
through the zone (its historical offsets) and give the same answers the zone gives.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

__all__ = [
    "BEIJING",
    "FIXED_FROM_H",
    "FIXED_FROM_S",
    "UTC8_H",
    "UTC8_S",
    "beijing_date",
    "beijing_day",
    "date_of_day",
    "day_of_hour",
    "day_of_instant",
    "day_start",
    "first_hour_of_day",
]

#: Beijing time (China Standard Time, UTC+8).
BEIJING: Final = ZoneInfo("Asia/Shanghai")

#: The fixed offset of Asia/Shanghai since 1991 (IANA tz database: no DST after 1991-09-15).
UTC8_H: Final = 8
UTC8_S: Final = UTC8_H * 3600
#: Epoch hour (and second) from which the fixed offset holds: 1992-01-01 00:00 Beijing.
FIXED_FROM_H: Final = int(datetime(1992, 1, 1, tzinfo=BEIJING).timestamp()) // 3600
FIXED_FROM_S: Final = FIXED_FROM_H * 3600

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_HOUR: Final = timedelta(hours=1)


def beijing_date(t: datetime) -> date:
    """The Beijing calendar date at the aware instant ``t``."""
    return t.astimezone(BEIJING).date()


def beijing_day(t: datetime) -> date:
    """The Beijing natural day of the period labelled ``t`` (its end, aware): the day of the
    instant just before ``t``, so a label at 00:00 belongs to the previous day."""
    return date_of_day(day_of_instant(t.timestamp()))


def day_of_instant(ts: float) -> int:
    """Beijing day number (days since 1970-01-01 Beijing) of the period labelled by ``ts`` (epoch
    seconds): the day of the instant just before the label (whole seconds), so a label at 00:00
    belongs to the previous day."""
    sec = math.ceil(ts)
    if sec >= FIXED_FROM_S:
        return (sec + UTC8_S - 1) // 86400
    local = (_EPOCH + timedelta(seconds=sec - 1)).astimezone(BEIJING)
    return local.date().toordinal() - _EPOCH_ORDINAL


def day_of_hour(h: int) -> tuple[int, int]:
    """(Beijing day number, slot 0…23) of the hour labelled epoch hour ``h``: the hour labelled
    01:00 is slot 0 of its day, the one labelled 00:00 slot 23 of the previous day."""
    if h >= FIXED_FROM_H:
        d, slot = divmod(h + UTC8_H - 1, 24)
        return d, slot
    local = (_EPOCH + (h - 1) * _HOUR).astimezone(BEIJING)
    return local.date().toordinal() - _EPOCH_ORDINAL, local.hour


def date_of_day(d: int) -> date:
    """The date of Beijing day number ``d``."""
    return date.fromordinal(_EPOCH_ORDINAL + d)


@lru_cache(maxsize=8192)
def day_start(d: int) -> datetime:
    """00:00 Beijing time of day number ``d`` (aware, Asia/Shanghai)."""
    x = date_of_day(d)
    return datetime(x.year, x.month, x.day, tzinfo=BEIJING)


def first_hour_of_day(d: int) -> int:
    """Epoch hour of the label 01:00 (slot 0) of Beijing day number ``d``."""
    h = d * 24 - UTC8_H + 1
    if h >= FIXED_FROM_H:
        return h
    return int(day_start(d).timestamp()) // 3600 + 1
