"""The locality stage (alerts/locality.py) on hand-written timelines.

Every expected number is computed by hand in the comments from HJ 633-2026 表3 (IAQI breakpoints,
standards.md §1.1) with the formula IAQI = (IAQI_Hi − IAQI_Lo)/(BP_Hi − BP_Lo) × (C − BP_Lo) +
IAQI_Lo rounded UP (HJ 633-2026 4.2.6), inputs first rounded to integers (4.2.2, GB/T 8170).
Breakpoints used (µg/m³, CO mg/m³):

    IAQI          0   50   100   150   200   300   400   500
    PM2.5 24h     0   35    60   115   150   250   350   500
    PM10  24h     0   50   120   250   350   420   500   600
    SO2 1h        0  150   500   650   800     (24h: 0 50 150 475 800 …)
    NO2 1h        0  100   200   700  1200     (24h: 0 40  80 180 280 …)
    CO  1h        0    5    10    35    60     (24h: 0  2   4  14  24 …)
    O3  1h        0  160   200   300   400     (8h:  0 100 160 215 265 …)

The background pollutants (``LOW``) stay far below PM2.5's IAQI, so PM2.5 decides the AQI:
SO2 10 → 1-h IAQI 50/150 × 10 = 3.3 → 4 (24-h: 10), NO2 20 → 10 (24-h: 25), CO 0.5 → 5
(24-h: 12.5 → 13), O3 40 → 1-h 12.5 → 13 (8-h: 20), PM10 50 → 50.

Dates are in December 2026 (HJ 633-2026 and GB 3095-2026 in force), Beijing time; a sample's
time is the END of its hour, so day D consists of the hours labelled D 01:00 … D+1 00:00.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from alerts.locality import LocalityContext, LocalityState, StepOutput, transition_point
from alerts.model import AlertState, Transition
from alerts.rules import default_rules
from rules.evaluate import Point
from rules.warnings import load_rule_sets
from streams.schema import check_point
from streams.wire import for_locality

BJ = ZoneInfo("Asia/Shanghai")
D1 = datetime(2026, 12, 1, tzinfo=BJ)  # 00:00 Beijing, start of 1 December
H = timedelta(hours=1)
LOC = "weifang"
RULES = default_rules()
WARNINGS_YAML = Path(__file__).resolve().parents[2] / "deploy" / "config" / "warnings.yaml"
RULE_SETS = load_rule_sets(yaml.safe_load(WARNINGS_YAML.read_text(encoding="utf-8")))
#: 环办大气函〔2018〕875号 (standards.md §6.1 [2+]): yellow AQI > 200 for 48 h; orange > 200 for
#: 72 h and > 300 for 24 h; red > 200 for 96 h and > 300 for 48 h (or ≥ 500 for 24 h); lift at
#: AQI ≤ 150 for ≥ 36 h; a lower target must hold 24 h before a downgrade ([MEM] default).
MEE = RULE_SETS["mee-2018-875"]
LOW = {"pm10": 50.0, "so2": 10.0, "no2": 20.0, "co": 0.5, "o3": 40.0}
ENTERPRISE = {
    "id": "e-wf-01",
    "name": "潍坊某热电",
    "locality": LOC,
    "performance_grade": "B",
    "measures": {"yellow": ["限产10%"], "orange": ["限产20%"], "red": ["停产"]},
}


def ctx(**detail: Mapping[str, str]) -> LocalityContext:
    return LocalityContext(
        locality=LOC, rule_set=MEE, enterprises=[ENTERPRISE], source_detail=dict(detail)
    )


def air(source: str, at: datetime, pm25: float | None, **over: float) -> dict[str, Any]:
    """A ``reading`` point as rules.engine emits it (pm25=None: the value was flagged D)."""
    fields: dict[str, Any] = {**LOW, **over}
    if pm25 is None:
        fields["invalid"] = "pm25:D"
    else:
        fields["pm25"] = float(pm25)
    return {
        "measurement": "reading",
        "tags": {"kind": "air", "locality": LOC, "source": source},
        "fields": fields,
        "time": at.isoformat(),
    }


def water(source: str, at: datetime, codmn: float) -> dict[str, Any]:
    return {
        "measurement": "reading",
        "tags": {"kind": "water", "locality": LOC, "source": source},
        "fields": {"codmn": codmn, "do": 7.5},
        "time": at.isoformat(),
    }


def quality(source: str, day: datetime, transmission: float, valid: float) -> dict[str, Any]:
    """A ``data_quality`` day point (rules.engine labels it with the day's 00:00)."""
    return {
        "measurement": "data_quality",
        "tags": {"kind": "air", "locality": LOC, "source": source, "period": "day"},
        "fields": {"transmission_rate": transmission, "valid_rate": valid},
        "time": day.isoformat(),
    }


def feed(st: LocalityState, c: LocalityContext, points: Iterable[Mapping[str, Any]]) -> StepOutput:
    out = StepOutput()
    for p in points:
        got = st.step(p, c)
        out.points += got.points
        out.transitions += got.transitions
    return out


def of(points: Iterable[Point], period: str) -> list[Point]:
    return [p for p in points if p.measurement == "aqi" and p.tags.get("period") == period]


def fired(ts: Iterable[Transition], rule: str) -> list[tuple[str, str, datetime]]:
    return [(t.source, t.state.value, t.at) for t in ts if t.labels.get("rule") == rule]


def hourly(start: datetime, hours: int) -> list[datetime]:
    return [start + i * H for i in range(hours)]


# ------------------------------------------------------------------------------ city hour AQI


def test_city_hour_aqi_is_the_aqi_of_the_stations_mean_concentrations() -> None:
    st, c = LocalityState(LOC, RULES), ctx()
    at = D1 + 10 * H
    first = st.step(air("aq-01", at, 100, pm10=60), c).points
    # one station: PM2.5 100 → 100 + 50/55 × 40 = 136.4 → 137; PM10 60 → 50 + 50/70 × 10 = 57.1
    [p1] = of(first, "hour")
    assert (p1.fields["aqi"], p1.fields["stations"], p1.fields["iaqi_pm10"]) == (137, 1, 58)
    second = st.step(air("aq-02", at, 140, pm10=80), c).points
    # mean of the two: PM2.5 (100 + 140)/2 = 120 → 150 + 50/35 × 5 = 157.1 → 158 (not the mean
    # of the stations' AQIs: station 140 → 150 + 50/35 × 25 = 185.7 → 186, (137 + 186)/2 = 161.5)
    # PM10 (60 + 80)/2 = 70 → 50 + 50/70 × 20 = 64.3 → 65
    [p2] = of(second, "hour")
    assert p2.fields["aqi"] == 158
    assert p2.fields["iaqi_pm25"] == 158
    assert p2.fields["iaqi_pm10"] == 65
    assert p2.fields["primary"] == "pm25"
    assert p2.fields["level"] == 4  # 151–200 中度污染 (HJ 633-2026 表1)
    assert p2.fields["stations"] == 2
    assert p2.time == at
    assert p2.id == p1.id  # the same city hour, rewritten as stations arrive


def test_a_station_correcting_its_hour_replaces_its_values_in_the_city_mean() -> None:
    """The city sums grow as stations arrive; a station sending its hour again with other
    values must replace, not add to, what it sent (the hour is then summed afresh)."""
    st, c = LocalityState(LOC, RULES), ctx()
    at = D1 + 10 * H
    st.step(air("aq-01", at, 100, pm10=60), c)
    st.step(air("aq-02", at, 140, pm10=80), c)
    st.step(air("aq-03", at, 30, pm10=40), c)
    # aq-02 corrects its PM2.5 to 20: the mean is (100 + 20 + 30)/3 = 50 → 50 + 50/25 × 15
    # = 80 (HJ 633-2026 表1: 35–60 µg/m³ ↔ IAQI 50–100); PM10 (60+80+40)/3 = 60 → 50 + 50/70
    # × 10 = 57.1 → 58 (50–120 µg/m³ ↔ 50–100). Adding 140 instead of replacing it would give
    # (100 + 140 + 30 + 20)/4 = 72.5 → 100 + 50/55 × 12.5 = 111.4 → 112
    [p] = of(st.step(air("aq-02", at, 20, pm10=80), c).points, "hour")
    assert p.fields["stations"] == 3
    assert p.fields["iaqi_pm25"] == 80
    assert p.fields["iaqi_pm10"] == 58
    # a fourth station after the correction adds to the fresh sums: PM2.5 (150 + 50)/4 = 50 → 80
    [p4] = of(st.step(air("aq-04", at, 50, pm10=60), c).points, "hour")
    assert p4.fields["stations"] == 4
    assert p4.fields["iaqi_pm25"] == 80


def test_a_flagged_station_value_is_left_out_of_the_city_mean() -> None:
    st, c = LocalityState(LOC, RULES), ctx()
    at = D1 + 10 * H
    st.step(air("aq-01", at, 100, pm10=60), c)
    [p] = of(st.step(air("aq-02", at, None, pm10=80), c).points, "hour")
    # aq-02's PM2.5 is flagged D (not valid): PM2.5 = aq-01's 100 alone → 137 (not 120 → 158);
    # its valid PM10 still counts: (60 + 80)/2 = 70 → 65
    assert p.fields["aqi"] == 137
    assert p.fields["iaqi_pm10"] == 65
    assert p.fields["stations"] == 2


# ------------------------------------------------------------------------------ rolling 24 h


def test_rolling_24h_aqi_needs_20_hours_and_comes_when_the_next_hour_begins() -> None:
    st, c = LocalityState(LOC, RULES), ctx()
    # one station, hours labelled 01:00 … 21:00 of 1 December, PM2.5 120 throughout
    out = feed(st, c, [air("aq-01", t, 120) for t in hourly(D1 + H, 21)])
    rolling = of(out.points, "rolling24h")
    # the window ending 19:00 holds 19 hours (< 20, GB 3095 表4 applied to the rolling window):
    # nothing; the window ending 20:00 holds 20 hours and is published once 21:00 arrives
    assert [p.time for p in rolling] == [D1 + 20 * H]
    [p] = rolling
    # daily breakpoints on the 20-hour means: PM2.5 120 → 158, PM10 50 → 50, SO2 24h 10 → 10,
    # NO2 24h 20 → 25, CO 24h 0.5 → 12.5, O3 8h 40 → 20: AQI 158
    assert (p.fields["aqi"], p.fields["hours"], p.fields["primary"]) == (158, 20, "pm25")


# ------------------------------------------------------------------------------ daily city AQI


def day_of_two_stations(day: datetime) -> list[dict[str, Any]]:
    pts = []
    for t in hourly(day + H, 24):
        pts.append(air("aq-01", t, 100, pm10=60))
        pts.append(air("aq-02", t, 140, pm10=80))
    return pts


def test_daily_city_aqi_at_the_hour_labelled_midnight_and_a_late_correction() -> None:
    st, c = LocalityState(LOC, RULES), ctx()
    pts = day_of_two_stations(D1)
    before = feed(st, c, pts[:-2])  # up to 23:00 (both stations)
    assert of(before.points, "day") == []  # the day is not over before 24:00
    close = feed(st, c, pts[-2:])  # the hour labelled 2 December 00:00
    days = of(close.points, "day")
    assert days, "the 00:00 hour must close the day"
    final = days[-1]
    # every hour: PM2.5 (100 + 140)/2 = 120, PM10 70 → day means 120 and 70:
    # PM2.5 150 + 50/35 × 5 = 157.1 → 158; PM10 65; AQI 158, 中度污染 (151–200)
    assert final.time == D1  # labelled with the day's 00:00 Beijing
    assert final.fields["aqi"] == 158
    assert final.fields["pm25"] == 120.0
    assert final.fields["hours"] == 24
    assert final.fields["category"] == "中度污染"
    assert (final.fields["good"], final.fields["heavy"]) == (False, False)
    assert {p.id for p in days} == {final.id}

    # the next day begins, then aq-01's 10:00 value of 1 December is corrected to 148
    feed(st, c, [air("aq-01", D1 + 25 * H, 100), air("aq-02", D1 + 25 * H, 140)])
    late = st.step(air("aq-01", D1 + 10 * H, 148, pm10=60), c).points
    # hour 10:00: (148 + 140)/2 = 144 → 150 + 50/35 × 29 = 191.4 → 192
    [hour] = of(late, "hour")
    assert (hour.time, hour.fields["aqi"]) == (D1 + 10 * H, 192)
    # day: 120 + (144 − 120)/24 = 121 → 150 + 50/35 × 6 = 158.6 → 159, same point id
    [corrected] = of(late, "day")
    assert corrected.id == final.id
    assert (corrected.fields["aqi"], corrected.fields["pm25"]) == (159, 121.0)


# ------------------------------------------------------------------------------ warnings

#: Daily PM2.5 (µg/m³, constant through each Beijing day) from 1 December on.
EPISODE = [102, 198, 198, 390, 390, 390, 30, 30, 30]


def episode_points(until: datetime) -> list[dict[str, Any]]:
    pts = []
    t = D1 + H
    while t <= until:
        day = (t - H).astimezone(BJ).date()
        pts.append(air("aq-01", t, EPISODE[(day - D1.date()).days]))
        t += H
    return pts


def warnings_of(ts: Iterable[Transition]) -> list[tuple[str, str, str, datetime]]:
    return [
        (t.reason.value, t.level or "", t.state.value, t.at.astimezone(BJ))
        for t in ts
        if t.kind.value == "warning"
    ]


def test_warning_issued_upgraded_downgraded_and_lifted_on_the_rolling_aqi() -> None:
    """Rule set mee-2018-875 (环办大气函〔2018〕875号, standards.md §6.1 [2+]).

    The rolling 24-h mean k hours into a day after a constant day c0 followed by c1 is
    c0 + (c1 − c0) × k/24 (the hour labelled k:00 is the day's k-th hour), so:

    * 2 Dec (102 → 198, +4/h): > 150 µg/m³ (AQI > 200) from k = 13 (154 → AQI 204; k = 12 gives
      150 → AQI 200, not above) → AQI > 200 from 2 Dec 13:00.
    * 4 Dec (198 → 390, +8/h): > 250 (AQI > 300) from k = 7 (254 → 304; k = 6: 246 → 296).
    * 7 Dec (390 → 30, −15/h): still > 150 at k = 15 (165 → 215), 150 at k = 16 (AQI 200);
      ≤ 115 (AQI ≤ 150) from k = 19 (105 → 100 + 50/55 × 45 = 140.9 → 141; k = 18: 120 → 158).

    Each hour's rolling AQI is judged when the next hour's first sample arrives, stamped with
    its own label:
    * yellow: > 200 for 48 h → 2 Dec 13:00 + 47 h = 4 Dec 12:00;
    * orange: > 200 for 72 h (→ 5 Dec 12:00) and > 300 for 24 h (4 Dec 07:00 + 23 h = 5 Dec 06:00)
      → 5 Dec 12:00;
    * red: > 200 for 96 h (→ 6 Dec 12:00) and > 300 for 48 h (→ 6 Dec 06:00) → 6 Dec 12:00;
    * the > 200 run ends at 7 Dec 15:00; with one hour of publication grace it is current until
      16:00, so the lower target (none, floor yellow) starts at 7 Dec 17:00 and a downgrade to
      yellow follows 24 h later, 8 Dec 17:00 (no lift yet: ≤ 150 only since 7 Dec 19:00);
    * lift: ≤ 150 for 36 h from 7 Dec 19:00 → 7 Dec 19:00 + 35 h = 9 Dec 06:00.
    """
    st, c = LocalityState(LOC, RULES), ctx()
    out = feed(st, c, episode_points(D1 + 8 * 24 * H + 8 * H))  # to 9 Dec 08:00
    assert warnings_of(out.transitions) == [
        ("warning_issued", "yellow", "firing", datetime(2026, 12, 4, 12, tzinfo=BJ)),
        ("warning_upgraded", "orange", "firing", datetime(2026, 12, 5, 12, tzinfo=BJ)),
        ("warning_upgraded", "red", "firing", datetime(2026, 12, 6, 12, tzinfo=BJ)),
        ("warning_downgraded", "yellow", "firing", datetime(2026, 12, 8, 17, tzinfo=BJ)),
        ("warning_lifted", "none", "resolved", datetime(2026, 12, 9, 6, tzinfo=BJ)),
    ]
    # the emergency trigger of the first warning lists the locality's enterprise and its
    # yellow measures, with the rule set's 10 % cuts (deploy/config/warnings.yaml)
    first = next(t for t in out.transitions if t.kind.value == "warning")
    trigger = json.loads(first.annotations["trigger_json"])
    assert trigger["level"] == "yellow"
    assert trigger["rule_set"] == "mee-2018-875"
    assert trigger["reductions"]["nox"] == 0.1
    assert [(e["enterprise_id"], e["measures"]) for e in trigger["enterprises"]] == [
        ("e-wf-01", ["限产10%"])
    ]
    # the daily city AQI of 3 Dec (198 all day): 200 + 100/100 × 48 = 248, 重度污染, heavy
    [dec3] = [p for p in of(out.points, "day") if p.time == datetime(2026, 12, 3, tzinfo=BJ)]
    assert (dec3.fields["aqi"], dec3.fields["heavy"]) == (248, True)


def test_no_rule_set_means_no_warnings() -> None:
    st = LocalityState(LOC, RULES)
    c = LocalityContext(locality=LOC, rule_set=None)
    out = feed(st, c, episode_points(D1 + 6 * 24 * H))
    assert warnings_of(out.transitions) == []


# ------------------------------------------------------------------------------ restart


def snapshot(st: LocalityState) -> LocalityState:
    """A checkpoint as the worker writes it: JSON text, read back."""
    return LocalityState.from_dict(json.loads(json.dumps(st.to_dict())), RULES)


def test_restart_mid_timeline_gives_identical_output() -> None:
    pts = episode_points(D1 + 8 * 24 * H + 8 * H)
    cut = pts.index(air("aq-01", datetime(2026, 12, 5, 15, tzinfo=BJ), 390))  # during orange
    st, c = LocalityState(LOC, RULES), ctx()
    feed(st, c, pts[:cut])
    restored = snapshot(st)
    uninterrupted = feed(st, c, pts[cut:])
    resumed = feed(restored, c, pts[cut:])
    assert resumed.points == uninterrupted.points
    assert [t.to_dict() for t in resumed.transitions] == [
        t.to_dict() for t in uninterrupted.transitions
    ]
    # and the part after the restart is the interesting one: red, downgrade, lift
    assert [w[1] for w in warnings_of(resumed.transitions)] == ["red", "yellow", "none"]


# ------------------------------------------------------------------------------ offline


# ------------------------------------------------------------------------------ data rates


def test_data_rate_is_judged_only_after_the_day_ended() -> None:
    st, c = LocalityState(LOC, RULES), ctx()
    d2 = D1 + 24 * H
    # 1 December: the day's point is rewritten through the day (every 6 h by rules.engine);
    # 18 of 24 samples → transmission 0.75 < 0.9 (数据传输有效率 ≥ 90 %, standards.md §8)
    early = feed(
        st,
        c,
        [
            air("aq-01", D1 + 6 * H, 50),
            quality("aq-01", D1, 0.25, 1.0),
            air("aq-01", D1 + 18 * H, 50),
            quality("aq-01", D1, 0.75, 1.0),
            air("aq-01", d2, 50),
            quality("aq-01", D1, 0.75, 1.0),  # the day's final figures
        ],
    )
    assert fired(early.transitions, "data-rate") == []  # the day is not judged while open
    # the first point of 2 December closes 1 December: one alert, stamped 2 Dec 00:00
    out = feed(st, c, [air("aq-01", d2 + H, 50), quality("aq-01", d2, 1 / 24, 1.0)])
    [t] = [t for t in out.transitions if t.labels.get("rule") == "data-rate"]
    assert (t.state, t.at, t.labels["factor"], t.value, t.limit) == (
        AlertState.FIRING,
        d2,
        "transmission_rate",
        0.75,
        0.9,
    )
    # valid_rate 1.0 ≥ 0.9: no alert for it
    # 2 December ends at 0.95: judged with the first point of 3 December → resolved
    feed(st, c, [quality("aq-01", d2, 0.95, 1.0)])
    out = feed(st, c, [air("aq-01", d2 + 25 * H, 50), quality("aq-01", d2 + 24 * H, 0.05, 1.0)])
    assert fired(out.transitions, "data-rate") == [("aq-01", "resolved", d2 + 24 * H)]


# ------------------------------------------------------------------------------ duplicates


def constant_pm25_stream() -> list[dict[str, Any]]:
    # PM2.5 stays 80 while the other factors move, with a data-quality point every hour
    pts: list[dict[str, Any]] = []
    for i, t in enumerate(hourly(D1 + H, 14)):
        pts.append(air("aq-01", t, 80, pm10=50 + i, so2=10 + i, no2=20 + i, o3=40 + i))
        pts.append(quality("aq-01", D1, (i + 1) / 24, 1.0))
    return pts


def test_duplicate_points_change_nothing() -> None:
    clean_st, dup_st, c = LocalityState(LOC, RULES), LocalityState(LOC, RULES), ctx()
    clean = feed(clean_st, c, constant_pm25_stream())
    doubled = [p for p in constant_pm25_stream() for _ in range(2)]
    dup = feed(dup_st, c, doubled)
    assert dup.points == clean.points
    assert [t.to_dict() for t in dup.transitions] == [t.to_dict() for t in clean.transitions]
    # constant-value rule: 12 samples in a row [MEM] → the 12th identical PM2.5 (12:00) fires;
    # counting the redeliveries would have fired at 07:00 (6 samples, each seen twice)
    assert [(t.labels["factor"], t.at) for t in clean.transitions if t.notify] == [
        ("pm25", D1 + 12 * H)
    ]
    assert dup_st.to_dict() == clean_st.to_dict()


# ------------------------------------------------------------------------------ points


def test_transition_points_match_the_store_schema() -> None:
    st, c = LocalityState(LOC, RULES), ctx()
    out = feed(st, c, episode_points(D1 + 4 * 24 * H))
    warning = next(t for t in out.transitions if t.kind.value == "warning")
    alert = next(t for t in out.transitions if t.kind.value == "alert")
    wp, ap = transition_point(warning), transition_point(alert)
    assert check_point(wp.measurement, wp.tags, wp.fields) == []
    assert check_point(ap.measurement, ap.tags, ap.fields) == []
    assert (wp.measurement, wp.tags["level"], wp.tags["state"]) == ("warning", "yellow", "issued")
    assert wp.tags["rule"] == "mee-2018-875"
    assert wp.time == warning.at  # event time, in UTC
    assert ap.measurement == "alert"
    assert ap.fields["id"] == alert.id
    for p in out.points:  # the city points too
        assert check_point(p.measurement, p.tags, p.fields) == [], p


def test_an_ambient_alert_clears_when_the_station_is_back_within_its_limit() -> None:
    """O3 1-hour limit, GB 3095-2026 transitional grade II: 200 µg/m³ (standards.md §2.1).

    Hours 1–2 at 260 µg/m³ exceed it (rules.engine's hourly verdict says so; the rule has
    for_minutes 0, so the alert fires at once). Hour 3 at 210 is still above 200. Hours 4–6 at
    120 are within the limit and below the rule's clear margin (200 × (1 − 0.1) = 180): the
    verdict of hour 4 clears the alert — it resolves at hour 4, not before.
    """
    from rules import evaluate as engine

    st = LocalityState("weifang", default_rules())
    c = ctx()
    state = None
    t0 = datetime(2026, 11, 1, tzinfo=BJ)
    transitions: list[Transition] = []
    for h, o3 in enumerate([260.0, 260.0, 210.0, 120.0, 120.0, 120.0], start=1):
        vals = dict.fromkeys(("pm25", "pm10", "so2", "no2"), (20.0, "N"))
        vals["co"] = (0.5, "N")
        vals["o3"] = (o3, "N")
        sample = engine.Sample("air", "weifang", "aq-1", t0 + timedelta(hours=h), "hour", vals)
        state, points = engine.step(state, sample, engine.SourceContext())
        wire = [
            {
                "measurement": p.measurement,
                "tags": dict(p.tags),
                "fields": dict(p.fields),
                "time": p.time.isoformat(),
            }
            for p in points
            if for_locality(p)
        ]
        transitions += st.step_record(wire, c).transitions
    o3 = [t for t in transitions if t.labels.get("factor") == "o3" and t.kind.value == "alert"]
    states = [(t.state, t.at) for t in o3 if t.state in (AlertState.FIRING, AlertState.RESOLVED)]
    assert states[0] == (AlertState.FIRING, t0 + timedelta(hours=1))
    resolved = [at for s, at in states if s is AlertState.RESOLVED]
    assert resolved == [t0 + timedelta(hours=4)]


def _outlet_hour(at: datetime, nox_zs: float, limit: float) -> list[dict[str, Any]]:
    """The verdict one hourly flue-gas sample gives the locality stage: NOx O2-corrected against
    the hourly permit limit, within or above it."""
    return [
        {
            "measurement": "verdict",
            "tags": {
                "kind": "emission",
                "locality": "weifang",
                "source": "e-wf-01-g1",
                "period": "hour",
            },
            "fields": {"nox": nox_zs, "nox_limit": limit, "nox_standard": "permit"},
            "time": at.isoformat(),
        }
    ]


def test_a_permit_alert_clears_when_the_outlet_is_back_within_its_limit() -> None:
    """NOx permit limit 150 mg/m³ (hourly, O2-corrected). Hour 1 at 300 (multiple (300−150)/150 = 1)
    fires the permit alert for enterprise e-wf-01; hour 2 at 85 is within the limit and below the
    clear margin, so the alert resolves at hour 2."""
    st = LocalityState("weifang", default_rules())
    c = LocalityContext(
        locality="weifang",
        rule_set=None,
        source_detail={
            "e-wf-01-g1": {
                "enterprise": "e-wf-01",
                "outlet": "e-wf-01-g1",
                "interval_minutes": "60",
            }
        },
    )
    t0 = datetime(2026, 11, 1, tzinfo=BJ)
    ts: list[Transition] = []
    ts += st.step_record(_outlet_hour(t0 + timedelta(hours=1), 300.0, 150.0), c).transitions
    ts += st.step_record(_outlet_hour(t0 + timedelta(hours=2), 85.0, 150.0), c).transitions
    permit = [t for t in ts if t.labels.get("rule_kind") == "permit_exceedance"]
    assert [(t.state, t.at) for t in permit if t.state is not AlertState.PENDING] == [
        (AlertState.FIRING, t0 + timedelta(hours=1)),
        (AlertState.RESOLVED, t0 + timedelta(hours=2)),
    ]
    assert all(t.labels.get("enterprise") == "e-wf-01" for t in permit)
    assert all(t.labels.get("period") == "hour" for t in permit)
