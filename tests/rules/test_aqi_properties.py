"""Invariants of the AQI engine (hypothesis).

* AQI is monotonic (non-decreasing) in every concentration, both editions, both reports —
  except where the standard itself breaks monotonicity: HJ 633-2012 drops the SO2 1-h IAQI above
  800 µg/m³ (表1 注2, replaced by the 24-h IAQI) and the O3 8-h IAQI above 800 (注3, replaced by
  the 1-h IAQI), so those inputs stay ≤ 800 for 2012 here (tests/rules/test_aqi_tables.py checks
  the fall-backs themselves).
* The AQI is never below any IAQI, and equals the largest one when published.
* The edition changes only at 2026-03-01 00:00 Beijing time, whatever the zone of ``at``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from rules.aqi import daily_aqi, realtime_aqi

BEIJING = ZoneInfo("Asia/Shanghai")
SWITCH = datetime(2026, 3, 1, tzinfo=BEIJING)
AT = {
    2012: datetime(2025, 7, 1, 12, tzinfo=BEIJING),
    2026: datetime(2026, 7, 1, 12, tzinfo=BEIJING),
}
DAY = {2012: date(2025, 7, 1), 2026: date(2026, 7, 1)}

conc = st.floats(min_value=0, max_value=1300, allow_nan=False)
co = st.floats(min_value=0, max_value=170, allow_nan=False)
upto800 = st.floats(min_value=0, max_value=800, allow_nan=False)
step = st.floats(min_value=0, max_value=400, allow_nan=False)


def realtime_inputs(edition: int) -> st.SearchStrategy[dict[str, float]]:
    return st.fixed_dictionaries(
        {"pm25": conc, "pm10": conc, "so2": upto800 if edition == 2012 else conc,
         "no2": st.floats(0, 4000), "co": co, "o3": conc}
    )  # fmt: skip


def daily_inputs(edition: int) -> st.SearchStrategy[dict[str, float]]:
    return st.fixed_dictionaries(
        {"pm25": conc, "pm10": conc, "so2": st.floats(0, 2800), "no2": conc, "co": st.floats(0, 70),
         "o3_8h": upto800 if edition == 2012 else conc, "o3_1h": conc}
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([2012, 2026]), st.data())
def test_realtime_aqi_is_monotonic_in_every_concentration(
    edition: int, data: st.DataObject
) -> None:
    c = data.draw(realtime_inputs(edition))
    key = data.draw(st.sampled_from(sorted(c)))
    more = dict(c)
    more[key] = c[key] + data.draw(step)
    if edition == 2012 and key == "so2":
        more[key] = min(more[key], 800)
    a, b = realtime_aqi(c, at=AT[edition]), realtime_aqi(more, at=AT[edition])
    assert a.aqi is not None
    assert b.aqi is not None
    assert b.aqi >= a.aqi
    assert b.iaqi[key] >= a.iaqi[key]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([2012, 2026]), st.data())
def test_daily_aqi_is_monotonic_in_every_mean(edition: int, data: st.DataObject) -> None:
    c = data.draw(daily_inputs(edition))
    key = data.draw(st.sampled_from(sorted(c)))
    more = dict(c)
    more[key] = c[key] + data.draw(step)
    if edition == 2012 and key == "o3_8h":
        more[key] = min(more[key], 800)
    a, b = daily_aqi(c, day=DAY[edition]), daily_aqi(more, day=DAY[edition])
    assert a.aqi is not None
    assert b.aqi is not None
    assert b.aqi >= a.aqi


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([2012, 2026]),
    st.dictionaries(
        st.sampled_from(["pm25", "pm10", "so2", "no2", "co", "o3"]), st.floats(0, 1300), min_size=1
    ),
)
def test_aqi_is_never_below_an_iaqi(edition: int, c: dict[str, float]) -> None:
    r = realtime_aqi(c, at=AT[edition])
    assert r.computed_aqi is not None or not r.iaqi
    for v in r.iaqi.values():
        assert r.computed_aqi is not None
        assert r.computed_aqi >= v
        assert 0 <= v <= 500
    if r.aqi is not None:
        assert r.aqi == max(r.iaqi.values())
        assert (r.aqi > 50) == bool(r.primary)
        assert all(r.iaqi[p] == r.aqi for p in r.primary)


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2032, 1, 1), timezones=st.just(UTC)
    ),
    offsets,
)
def test_edition_switches_only_at_the_boundary_instant(at_utc: datetime, tz: timezone) -> None:
    at = at_utc.astimezone(tz)
    r = realtime_aqi({"pm25": 75}, at=at)
    # PM2.5 75: 2012 → 100 (its IAQI-100 point); 2026 → 100 + 50·15/55 = 113.6 → 114
    if at >= SWITCH:
        assert (r.edition, r.iaqi["pm25"]) == ("HJ 633-2026", 114)
    else:
        assert (r.edition, r.iaqi["pm25"]) == ("HJ 633-2012", 100)


def test_edition_boundary_instant_itself() -> None:
    just_before = SWITCH - timedelta(microseconds=1)
    assert realtime_aqi({"pm25": 75}, at=just_before).edition == "HJ 633-2012"
    assert realtime_aqi({"pm25": 75}, at=SWITCH).edition == "HJ 633-2026"
    # the same instant written in UTC: 2026-02-28 16:00Z
    assert (
        realtime_aqi({"pm25": 75}, at=datetime(2026, 2, 28, 16, tzinfo=UTC)).edition
        == "HJ 633-2026"
    )
    assert daily_aqi({"pm25": 75}, day=date(2026, 2, 28)).edition == "HJ 633-2012"
    assert daily_aqi({"pm25": 75}, day=date(2026, 3, 1)).edition == "HJ 633-2026"
