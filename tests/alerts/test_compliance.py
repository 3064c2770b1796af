"""Emergency cuts checked (alerts/compliance.py) in the locality stage.

Rule set mee-2018-875 (环办大气函〔2018〕875号, standards.md §6.1 [2+]) on the episode of
tests/alerts/test_locality.py: yellow issued at 4 Dec 12:00 Beijing, orange 5 Dec 12:00, red 6 Dec
12:00, lifted 9 Dec 06:00. The enterprise's own list (一厂一策): NOx −10 % at yellow, −20 % at
orange, −30 % at red; production-line electricity follows the list's largest cut.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from alerts.compliance import CutWatch, emission_rates
from alerts.locality import LocalityContext, LocalityState
from rules.warnings import Level, required_cut
from tests.alerts.test_locality import BJ, D1, MEE, RULES, H, episode_points

LOC = "weifang"
OUTLET = "e-1-g1"
LINE = "mon-line"
ENTERPRISE = {
    "id": "e-1",
    "name": "甲热电",
    "locality": LOC,
    "performance_grade": "B",
    "measures": {"yellow": ["负荷80%"], "orange": ["负荷60%"], "red": ["负荷50%"]},
    "required_reductions": {"yellow": {"nox": 0.1}, "orange": {"nox": 0.2}, "red": {"nox": 0.3}},
}
CTX = LocalityContext(
    locality=LOC,
    rule_set=MEE,
    enterprises=[ENTERPRISE],
    source_detail={
        OUTLET: {"enterprise": "e-1", "outlet": OUTLET},
        LINE: {"enterprise": "e-1"},
    },
    power_production={LINE: ()},
)


def outlet_hour(at: datetime, nox: float, flow: float) -> dict[str, Any]:
    return {
        "measurement": "emission_hour",
        "tags": {"locality": LOC, "source": OUTLET},
        "fields": {"nox": nox, "so2": 20.0, "flow": flow, "o2": 3.5},
        "time": at.isoformat(),
    }


def line_kw(at: datetime, kw: float) -> dict[str, Any]:
    return {
        "measurement": "reading",
        "tags": {"kind": "monitor", "locality": LOC, "source": LINE},
        "fields": {"power_kw": kw},
        "time": at.isoformat(),
    }


def run(load: float, *, until: datetime) -> list[Any]:
    """The episode's air data with the outlet (NOx 100 mg/m³ at 100,000 m³/h: 10 kg/h) and the
    production line (1,000 kW by day, 500 kW at night) every hour; from the yellow warning on
    (4 Dec 12:00) the enterprise runs at ``load``."""
    st = LocalityState(LOC, RULES)
    issue = datetime(2026, 12, 4, 12, tzinfo=BJ)
    out = []
    for p in episode_points(until):
        at = datetime.fromisoformat(p["time"])
        share = load if at > issue else 1.0
        day = 1000.0 if 8 <= at.astimezone(BJ).hour < 20 else 500.0
        for point in (p, outlet_hour(at, 100.0, 100_000.0 * share), line_kw(at, day * share)):
            out += st.step(point, CTX).transitions
    return [t for t in out if t.labels.get("rule") == "warning-compliance"]


def story(ts: list[Any]) -> list[tuple[str, str, str, datetime]]:
    return [(t.source, t.state.value, t.reason.value, t.at.astimezone(BJ)) for t in ts]


def test_an_enterprise_that_cuts_as_its_list_requires_hears_nothing() -> None:
    assert run(0.6, until=D1 + 9 * 24 * H) == []


def test_one_that_keeps_emitting_is_told_after_120_minutes_and_the_lift_closes_it() -> None:
    """At full load the cut is 0: from the first hour after yellow (13:00) below the NOx −10 %
    and the electricity −10 % → pending, firing at 15:00 (120 min); closed with the lift."""
    ts = run(1.0, until=D1 + 9 * 24 * H)
    got = story(ts)
    fired = datetime(2026, 12, 4, 15, tzinfo=BJ)
    lifted = datetime(2026, 12, 9, 6, tzinfo=BJ)
    for source, factor in ((LINE, "power_kw"), (OUTLET, "nox")):
        mine = [g for g, t in zip(got, ts, strict=True) if t.labels["factor"] == factor]
        assert mine == [
            (source, "pending", "condition_met", datetime(2026, 12, 4, 13, tzinfo=BJ)),
            (source, "firing", "for_elapsed", fired),
            (source, "resolved", "warning_lifted", lifted),
        ]
    # SO2 is not on the enterprise's list: not required of it
    assert len(got) == 6


def test_the_baseline_is_the_same_clock_hour_before_the_warning() -> None:
    """Night hours at 500 kW and day hours at 1,000 kW: a night hour at 480 kW after the
    warning is a 4 % cut of its own baseline, not a 36 % cut of the daily mean (750 kW)."""
    cuts = CutWatch()
    for h in range(72):
        at = datetime(2026, 12, 1, tzinfo=BJ) + h * H
        cuts.remember(LINE, "power_kw", at, 1000.0 if 8 <= at.hour < 20 else 500.0)
    cuts.freeze(datetime(2026, 12, 4, tzinfo=BJ))
    night = cuts.check(
        LINE,
        "power_kw",
        datetime(2026, 12, 4, 3, tzinfo=BJ),
        480.0,
        level=Level.YELLOW,
        rule_set=MEE,
        enterprise=ENTERPRISE,
    )
    assert night is not None
    assert night.baseline == 500.0
    assert round(night.achieved_cut or 0, 4) == 0.04
    # the state is plain data
    back = CutWatch.from_dict(json.loads(json.dumps(cuts.to_dict())))
    assert back == cuts


def test_no_baseline_no_judgement() -> None:
    cuts = CutWatch()
    cuts.freeze(datetime(2026, 12, 4, tzinfo=BJ))
    assert (
        cuts.check(
            OUTLET,
            "nox",
            datetime(2026, 12, 4, 3, tzinfo=BJ),
            5.0,
            level=Level.ORANGE,
            rule_set=MEE,
            enterprise=ENTERPRISE,
        )
        is None
    )


def test_emission_rate_is_concentration_times_flow() -> None:
    assert emission_rates({"nox": 100.0, "flow": 100_000.0, "o2": 3.5}) == {"nox": 10.0}
    assert emission_rates({"nox": 100.0}) == {"nox": 100.0}  # no flow: the concentration


def test_the_enterprises_own_list_decides_what_is_required() -> None:
    # NOx is on the list; SO2 is not (not the city-wide 20 %); electricity: the list's largest
    assert required_cut(MEE, Level.ORANGE, "nox", ENTERPRISE) == 0.2
    assert required_cut(MEE, Level.ORANGE, "so2", ENTERPRISE) is None
    assert required_cut(MEE, Level.ORANGE, "power_kw", ENTERPRISE) == 0.2
    # an enterprise without a list: the rule set's city-wide ratio
    assert required_cut(MEE, Level.ORANGE, "so2", {"id": "x"}) == 0.2
