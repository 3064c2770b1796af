"""Heavy-pollution-weather warnings (rules.warnings) on hand-written AQI series.

Hours are labelled h = 1, 2, … (end of the hour) after H0 = 2026-01-10 00:00 Beijing time.
Thresholds come from deploy/config/warnings.yaml (standards.md §6.1):
mee-2018-875: yellow > 200 for 48 h; orange > 200 for 72 h and > 300 for 24 h;
red > 200 for 96 h and > 300 for 48 h; lift when AQI <= 150 for >= 36 h.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from alerts.engine import Engine
from alerts.model import AlertState, Severity
from alerts.rules import Evaluation, default_rules
from rules.errors import InvalidReading
from rules.warnings import (
    BaselineMean,
    Compliance,
    DecisionKind,
    DecisionReason,
    Level,
    WarningDecision,
    WarningInput,
    WarningRuleSet,
    WarningState,
    compare_with_baseline,
    load_rule_sets,
    required_cut,
    step,
)

BJ = ZoneInfo("Asia/Shanghai")
H0 = datetime(2026, 1, 10, 0, 0, tzinfo=BJ)
CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config" / "warnings.yaml"
RULE_SETS = load_rule_sets(yaml.safe_load(CONFIG.read_text(encoding="utf-8")))
MEE = RULE_SETS["mee-2018-875"]

ENTERPRISES = [
    {
        "id": "e-wf-steel",
        "name": "潍坊某钢铁",
        "locality": "weifang",
        "performance_grade": "C",
        "measures": {"yellow": ["烧结机限产20%"], "orange": ["烧结机限产40%"], "red": ["烧结停产"]},
    },
    {
        "id": "e-wf-coke",
        "name": "潍坊某焦化",
        "locality": "weifang",
        "performance_grade": "A",
        "measures": {"yellow": ["自主减排"], "orange": ["自主减排"], "red": ["延长出焦时间"]},
    },
    {"id": "e-lx-1", "locality": "laixi", "performance_grade": "B", "measures": {}},
]


def hour(h: int) -> datetime:
    return H0 + timedelta(hours=h)


def drive(
    series: list[float],
    rule_set: WarningRuleSet = MEE,
    *,
    extra: dict[int, WarningInput] | None = None,
    state: WarningState | None = None,
    first: int = 1,
) -> tuple[WarningState, list[tuple[int, WarningDecision]]]:
    """Push the rolling 24-h AQI of hours first, first+1, … and collect non-HOLD decisions."""
    st_ = state or WarningState("weifang")
    out: list[tuple[int, WarningDecision]] = []
    for i, value in enumerate(series):
        h = first + i
        inp = WarningInput(rolling_aqi=((hour(h), value),))
        if extra and h in extra:
            e = extra[h]
            inp = WarningInput(
                rolling_aqi=inp.rolling_aqi,
                forecast_daily=e.forecast_daily,
                regional_level=e.regional_level,
            )
        st_, decisions = step(st_, inp, hour(h), rule_set=rule_set, enterprises=ENTERPRISES)
        out += [(h, d) for d in decisions if d.kind is not DecisionKind.HOLD]
    return st_, out


# 250 for h1–36, 350 for h37–96, then 120 observed and a forecast of 90 for the next days.
EPISODE = [250.0] * 36 + [350.0] * 60 + [120.0] * 10
FORECAST_AT_100 = WarningInput(
    forecast_daily=((date(2026, 1, 14), 90.0), (date(2026, 1, 15), 90.0), (date(2026, 1, 16), 90.0))
)


def test_yellow_orange_red_lifted_with_the_right_timing() -> None:
    _, got = drive(EPISODE, extra={100: FORECAST_AT_100})
    assert [(h, d.kind, d.level) for h, d in got] == [
        # > 200 since h1: 48 h reached at h48
        (48, DecisionKind.ISSUE, Level.YELLOW),
        # > 200 for 72 h at h72; > 300 since h37 → 36 h ≥ 24 h
        (72, DecisionKind.UPGRADE, Level.ORANGE),
        # > 200 for 96 h at h96; > 300 for h37..h96 = 60 h ≥ 48 h
        (96, DecisionKind.UPGRADE, Level.RED),
        # h97–h100 observed 120, then the forecast (Jan 14–16) 90: ≤ 150 for far more than 36 h
        (100, DecisionKind.LIFT, Level.NONE),
    ]
    assert got[-1][1].reason is DecisionReason.IMPROVEMENT_EXPECTED


def test_without_forecast_the_lift_waits_for_36_observed_hours_and_red_steps_down() -> None:
    # same episode, then 120 observed for 50 h and no forecast:
    # the red target is gone from h98 (the > 200 run ended at h96, one hour of grace),
    # so red steps down to yellow after downgrade_after_hours = 24 → at h98 + 24 = h122;
    # the ≤ 150 run h97.. reaches 36 h at h132 → lift.
    _, got = drive([250.0] * 36 + [350.0] * 60 + [120.0] * 50)
    assert [(h, d.kind, d.level) for h, d in got][3:] == [
        (122, DecisionKind.DOWNGRADE, Level.YELLOW),
        (132, DecisionKind.LIFT, Level.NONE),
    ]
    assert got[3][1].reason is DecisionReason.LOWER_LEVEL_SUSTAINED


def test_clean_hours_behind_now_do_not_lift_when_the_forecast_ahead_is_bad() -> None:
    """48 observed hours at 120 (h1–h48), then at h48 a forecast of 320 for the next three days
    (Jan 12–14: hours h49–h120). The forecast alone calls for orange (> 200 for 72 h and > 300
    for 24 h, all ahead); the 48 clean hours behind now must not count as "improvement
    expected": the run of ≤ 150 ends at now and the next known value is 320, so the warning is
    issued and held — no lift or downgrade until the data say so."""
    bad = WarningInput(
        forecast_daily=(
            (date(2026, 1, 12), 320.0),
            (date(2026, 1, 13), 320.0),
            (date(2026, 1, 14), 320.0),
        )
    )
    _, got = drive([120.0] * 60, extra={48: bad})
    assert [(h, d.kind, d.level) for h, d in got] == [(48, DecisionKind.ISSUE, Level.ORANGE)]


def test_each_change_carries_a_trigger_with_the_localitys_enterprises_and_measures() -> None:
    _, got = drive(EPISODE, extra={100: FORECAST_AT_100})
    triggers = [d.trigger for _, d in got]
    assert all(t is not None for t in triggers)
    yellow, orange, red, lifted = triggers
    assert yellow is not None
    assert orange is not None
    assert red is not None
    assert lifted is not None
    assert [e.enterprise_id for e in yellow.enterprises] == ["e-wf-coke", "e-wf-steel"]  # no laixi
    assert [(e.enterprise_id, e.performance_grade, e.measures) for e in red.enterprises] == [
        ("e-wf-coke", "A", ("延长出焦时间",)),
        ("e-wf-steel", "C", ("烧结停产",)),
    ]
    assert orange.enterprises[1].measures == ("烧结机限产40%",)
    # required cuts 10 / 20 / 30 % (standards.md §6.1 [2+])
    assert yellow.reductions is not None
    assert yellow.reductions.so2 == 0.10
    assert orange.reductions is not None
    assert orange.reductions.nox == 0.20
    assert red.reductions is not None
    assert red.reductions.vocs == 0.30
    assert lifted.level is Level.NONE
    assert lifted.reductions is None
    assert all(e.measures == () for e in lifted.enterprises)
    assert red.to_dict()["enterprises"][1]["measures"] == ["烧结停产"]


def test_enterprise_that_does_not_cut_is_non_compliant_and_raises_an_alert() -> None:
    # baseline SO2 before the warning: (100 + 110 + 90) / 3 = 100 mg/m3
    base = BaselineMean.initialise()
    for v in (100.0, 110.0, 90.0):
        base = base.add(v)
    assert base.result() == 100.0
    need = required_cut(MEE, Level.ORANGE, "so2")
    assert need == 0.20
    # during orange: 95 → cut (100 − 95)/100 = 5 % < 20 %
    bad = compare_with_baseline("e-wf-steel", "so2", Level.ORANGE, base.result(), 95.0, need)
    assert bad.decision is Compliance.NON_COMPLIANT
    assert bad.achieved_cut == pytest.approx(0.05)
    # 78 → cut 22 % ≥ 20 %
    good = compare_with_baseline("e-wf-coke", "so2", Level.ORANGE, base.result(), 78.0, need)
    assert good.decision is Compliance.COMPLIANT
    # electricity uses the level's largest ratio (red: 30 %) unless the enterprise has its own
    assert required_cut(MEE, Level.RED, "power_kw") == 0.30
    own = {"id": "e", "required_reductions": {"red": {"power_kw": 0.5}}}
    assert required_cut(MEE, Level.RED, "power_kw", own) == 0.5
    # the alert engine turns the failed check into a critical alert once it held for the
    # rule's 120 minutes (deploy/config/alert-rules.yaml): three hourly values in a row
    eng = Engine(default_rules())
    got = []
    for h in (80, 81, 82):
        got += eng.process(
            Evaluation(
                kind="warning_compliance",
                locality="weifang",
                source="e-wf-steel",
                factor="so2",
                value=bad.achieved_cut,
                limit=bad.required_cut,
                time=hour(h),
                detail={"enterprise": "e-wf-steel"},
            )
        )
    assert [(t.labels["rule"], t.state, t.severity, t.at) for t in got] == [
        ("warning-compliance", AlertState.PENDING, Severity.CRITICAL, hour(80)),
        ("warning-compliance", AlertState.FIRING, Severity.CRITICAL, hour(82)),
    ]
    assert got[1].labels["enterprise"] == "e-wf-steel"


def test_regional_warning_is_a_floor() -> None:
    st_ = WarningState("weifang")
    st_, ds = step(
        st_,
        WarningInput(rolling_aqi=((hour(1), 180.0),), regional_level=Level.ORANGE),
        hour(1),
        rule_set=MEE,
    )
    assert [(d.kind, d.level, d.reason) for d in ds] == [
        (DecisionKind.ISSUE, Level.ORANGE, DecisionReason.REGIONAL_FLOOR)
    ]
    # local air is fine (120) but the region still says orange: no lift
    _, got = drive([120.0] * 40, state=st_, first=2)
    assert got == []
    # the region lifts; 120 has held since h2 → ≥ 36 h already → lift at once
    st2, _ = drive([120.0] * 40, state=st_, first=2)
    st2, ds = step(
        st2,
        WarningInput(rolling_aqi=((hour(42), 120.0),), regional_level=Level.NONE),
        hour(42),
        rule_set=MEE,
    )
    assert [(d.kind, d.level) for d in ds] == [(DecisionKind.LIFT, Level.NONE)]


def test_shandong_draft_needs_150_for_48h_and_an_hour_above_200() -> None:
    draft = RULE_SETS["shandong-2022-draft"]
    _, none = drive([180.0] * 60, draft)
    assert none == []  # > 150 for 60 h but never > 200
    _, got = drive([180.0] * 47 + [210.0], draft)
    assert [(h, d.level) for h, d in got] == [(48, Level.YELLOW)]


def test_state_round_trip_mid_episode_gives_the_same_decisions() -> None:
    _, whole = drive(EPISODE, extra={100: FORECAST_AT_100})
    mid, first = drive(EPISODE[:60])
    restored = WarningState.from_dict(yaml.safe_load(yaml.safe_dump(mid.to_dict())))
    _, rest = drive(EPISODE[60:], state=restored, first=61, extra={100: FORECAST_AT_100})
    assert [(h, d.kind, d.level) for h, d in first + rest] == [
        (h, d.kind, d.level) for h, d in whole
    ]


def test_bad_aqi_is_a_typed_error() -> None:
    with pytest.raises(InvalidReading) as err:
        step(
            WarningState("weifang"),
            WarningInput(rolling_aqi=((hour(1), 900.0),)),
            hour(1),
            rule_set=MEE,
        )
    assert err.value.factor == "rolling_aqi"


def test_every_shipped_rule_set_validates_and_none_claims_confirmation() -> None:
    assert set(RULE_SETS) >= {"envwatch-default", "mee-2018-875", "shandong-2022-draft"}
    assert [rs.id for rs in RULE_SETS.values() if rs.default] == ["envwatch-default"]
    assert not any(rs.confirmed for rs in RULE_SETS.values())  # standards.md §6: none confirmed


def test_a_lift_threshold_above_the_yellow_threshold_is_rejected() -> None:
    raw = MEE.model_dump(mode="json")
    raw["lift"]["aqi_at_most"] = 250
    with pytest.raises(ValidationError):
        WarningRuleSet.model_validate(raw)


@settings(max_examples=60, deadline=None)
@given(
    rs_id=st.sampled_from(sorted(RULE_SETS)),
    values=st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=120),
    forecast=st.lists(st.floats(0, 1, allow_nan=False), max_size=3),
)
def test_series_below_the_lowest_threshold_never_opens_a_warning(
    rs_id: str, values: list[float], forecast: list[float]
) -> None:
    rs = RULE_SETS[rs_id]
    lowest = min(c.aqi_above for lv in rs.levels.values() for g in lv.any_of for c in g.all_of)
    scaled = [v * lowest for v in values]  # all ≤ the lowest threshold of any level
    extra = {
        1: WarningInput(
            forecast_daily=tuple(
                (date(2026, 1, 10) + timedelta(days=i), v * lowest) for i, v in enumerate(forecast)
            )
        )
    }
    _, got = drive(scaled, rs, extra=extra)
    assert got == []


@settings(max_examples=60, deadline=None)
@given(band=st.lists(st.floats(150.5, 200, allow_nan=False), min_size=1, max_size=150))
def test_no_flapping_inside_the_hysteresis_band(band: list[float]) -> None:
    # yellow issued after 48 h of 250; then AQI stays in (150, 200]: neither a yellow condition
    # (> 200) nor the lift condition (≤ 150) → the warning holds, no change at all.
    st_, got = drive([250.0] * 48)
    assert [d.kind for _, d in got] == [DecisionKind.ISSUE]
    _, later = drive(band, state=st_, first=49)
    assert later == []
