"""GB 3096-2008 声环境质量标准 (environmental quality standard for noise) — limits as data.

* **表1 环境噪声限值** (equivalent continuous A-weighted sound level, L_Aeq in dB(A)) per
  声环境功能区 class (acoustic functional zone): 0 类 (康复疗养区 …), 1 类 (居民住宅、医疗卫生、
  文化教育 …), 2 类 (商业金融、集市贸易; mixed residential/commercial/industrial), 3 类 (工业生产、
  仓储物流), 4 类 split into 4a 类 (motorways, first/second-class highways, urban expressways,
  arterial and secondary roads, surface urban rail, inland waterways) and 4b 类 (railway trunk
  lines).
* **昼间 / 夜间** (day-time / night-time): 昼间 is 06:00–22:00, 夜间 is 22:00–06:00 the next
  morning, local time (Asia/Shanghai here).

Confidence (standards.md legend): the 0–3 类 values are [2+] (several public reproductions of
表1, e.g. http://huaxintest.com/productshow.asp?id=81, and the unchanged 0–3 rows of the
GB 3096-93 table they replaced); the 4a/4b split (70/55, 70/60) is [2+] (the same page and an
independent public Python table of GB 3096-2008 functional zones). The wording of the
day/night periods is [2+] (the same page; "根据噪音法" in a second one). The clause numbers of
the standard's text (the day/night definition in §3, the limits in §5.1 表1) could NOT be read
from the standard itself: [MEM] for the numbering, not for the values.

Pure data plus one lookup; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Final, Literal

from rules.beijing import BEIJING
from rules.errors import InvalidReading

__all__ = [
    "DAY_END_HOUR",
    "DAY_START_HOUR",
    "LIMITS",
    "STANDARD",
    "ZONE_CLASSES",
    "NoisePeriod",
    "is_night",
    "noise_limit",
]

STANDARD: Final = "GB 3096-2008 表1"

#: 声环境功能区 classes, as the catalogue spells them (``zone_class`` of a noise monitor).
ZONE_CLASSES: Final = ("0", "1", "2", "3", "4a", "4b")

#: GB 3096-2008 表1 环境噪声限值, dB(A): class → (昼间 limit, 夜间 limit).
LIMITS: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
    {
        "0": (50, 40),
        "1": (55, 45),
        "2": (60, 50),
        "3": (65, 55),
        "4a": (70, 55),
        "4b": (70, 60),
    }
)

#: 昼间 = 06:00–22:00 local time; 夜间 = 22:00–06:00 (GB 3096-2008 terms; clause number [MEM]).
DAY_START_HOUR: Final = 6
DAY_END_HOUR: Final = 22

_HOUR: Final = timedelta(hours=1)

NoisePeriod = Literal["day", "night"]


def is_night(at: datetime) -> bool:
    """True when the hourly sample labelled ``at`` is a 夜间 hour.

    ``at`` is the END label of an hourly L_Aeq (the hour covers (at − 1 h, at], architecture.md
    §5); the hour is 昼间 when its START, in Beijing time, is 06:00 … 21:00, and 夜间 otherwise
    (start 22:00 … 05:00). So the samples labelled 07:00 … 22:00 are day hours and those labelled
    23:00 … 06:00 night hours.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise InvalidReading("naive datetime; the event time must be timezone-aware", value=at)
    start_hour = (at - _HOUR).astimezone(BEIJING).hour
    return not DAY_START_HOUR <= start_hour < DAY_END_HOUR


def noise_limit(zone_class: str, at: datetime) -> tuple[int, NoisePeriod]:
    """The GB 3096-2008 表1 limit (dB(A)) of ``zone_class`` for the hourly L_Aeq labelled
    ``at`` (END label, see :func:`is_night`), and the period's name (``"day"`` = 昼间,
    ``"night"`` = 夜间).

    Raises :class:`rules.errors.InvalidReading` for a class outside 0, 1, 2, 3, 4a, 4b or a
    naive ``at``.
    """
    limits = LIMITS.get(zone_class)
    if limits is None:
        raise InvalidReading(
            f"声环境功能区 class {zone_class!r} is not one of {', '.join(ZONE_CLASSES)} "
            "(GB 3096-2008)",
            value=zone_class,
        )
    if is_night(at):
        return limits[1], "night"
    return limits[0], "day"
