"""Regional warnings (区域预警) in the locality stage: a province's or regional centre's warning
for an area raises every locality of it to at least its level at once, with the locality's own
trigger (its enterprises are told their duties), and is lifted only when the locality's own
conditions allow too (the cities' plans: 按照区域预警信息，同步启动应急响应).

Rule set mee-2018-875 (环办大气函〔2018〕875号, standards.md §6.1 [2+]) on the episode of
tests/alerts/test_locality.py: yellow issued on the data at 4 Dec 12:00, orange at 5 Dec 12:00.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from alerts.commands import Command, command_point
from alerts.locality import LocalityState
from tests.alerts.test_locality import (
    BJ,
    D1,
    RULES,
    H,
    LocalityContext,
    air,
    ctx,
    episode_points,
    feed,
    warnings_of,
)

LOC = "weifang"


def regional(
    cid: str,
    level: str,
    *,
    locality: str = LOC,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    role: str = "admin",
) -> dict[str, Any]:
    """A ``regional_warning`` command point as the alerts service produces it."""
    cmd = Command(
        id=cid,
        action="regional_warning",
        locality=locality,
        actor="province",
        role=role,  # type: ignore[arg-type]
        issued_at=datetime(2030, 1, 1, tzinfo=UTC),  # the wall clock: never used as event time
        regional_id="sd-2026-12",
        regional_level=level,  # type: ignore[arg-type]
        issuer="山东省生态环境厅",
        area=(LOC, "laixi"),
        starts_at=starts_at,
        ends_at=ends_at,
    )
    p = command_point(cmd)
    return {
        "measurement": p.measurement,
        "tags": dict(p.tags),
        "fields": dict(p.fields),
        "time": p.time.isoformat(),
    }


def test_regional_orange_raises_a_yellow_locality_at_once_and_tells_its_enterprises() -> None:
    st, c = LocalityState(LOC, RULES), ctx()
    # the data alone: yellow at 4 Dec 12:00; the watermark reaches 4 Dec 14:00
    out = feed(st, c, episode_points(D1 + 3 * 24 * H + 14 * H))
    assert warnings_of(out.transitions)[-1][:2] == ("warning_issued", "yellow")
    got = st.step(regional("c-1", "orange"), c)
    # at the locality's event time (its watermark), not the command's wall clock
    at = datetime(2026, 12, 4, 14, tzinfo=BJ)
    assert warnings_of(got.transitions) == [("warning_upgraded", "orange", "firing", at)]
    [warning] = [t for t in got.transitions if t.kind.value == "warning"]
    assert warning.annotations["decision_reason"] == "regional_floor"
    assert "lead_hours" not in warning.annotations  # raised by the region, not forecast here
    # its own trigger: the enterprise is told its orange measures, on its own label
    [duty] = [t for t in got.transitions if t.kind.value == "warning_duty"]
    assert (duty.labels["enterprise"], duty.level) == ("e-wf-01", "orange")
    assert json.loads(duty.annotations["duty_json"])["measures"] == ["限产20%"]
    [result] = got.results
    assert (result.status, result.at) == ("applied", at)
    assert set(result.transitions) == {t.id for t in got.transitions}
    # the same command again (a redelivery) changes nothing
    again = st.step(regional("c-1", "orange"), c)
    assert (again.transitions, again.results) == ([], [])


def test_the_end_of_a_regional_warning_does_not_lift_what_the_data_still_call_for() -> None:
    """Ended while the locality's own target is yellow and its episode goes on: the lift
    condition (AQI ≤ 150 expected for 36 h) does not hold, so orange stays until the lower
    target held 24 h (downgrade to yellow) — never lifted by the region alone."""
    st, c = LocalityState(LOC, RULES), ctx()
    feed(st, c, episode_points(D1 + 3 * 24 * H + 14 * H))
    st.step(regional("c-1", "orange"), c)
    ended = st.step(regional("c-2", "none"), c)
    assert warnings_of(ended.transitions) == []
    assert [r.status for r in ended.results] == ["applied"]
    # the data then call for orange themselves at 5 Dec 12:00: nothing to change
    out = feed(st, c, episode_points(D1 + 4 * 24 * H + 13 * H)[3 * 24 + 14 :])
    assert warnings_of(out.transitions) == []
    assert st.warning.level.value == "orange"


def clean(until: datetime) -> list[dict[str, Any]]:
    """PM2.5 30 µg/m³ every hour from 1 Dec: AQI 43 (HJ 633-2012 表1), 优."""
    pts, t = [], D1 + H
    while t <= until:
        pts.append(air("aq-01", t, 30.0))
        t += H
    return pts


def test_a_clean_locality_follows_the_region_and_lifts_when_it_ends() -> None:
    st, c = LocalityState(LOC, RULES), ctx()
    feed(st, c, clean(D1 + 3 * 24 * H))  # 4 Dec 00:00: three clean days
    start = datetime(2026, 12, 4, 6, tzinfo=BJ)
    end = datetime(2026, 12, 4, 18, tzinfo=BJ)
    # announced at 00:00 for 06:00–18:00: nothing before it begins
    early = st.step(regional("c-1", "yellow", starts_at=start, ends_at=end), c)
    assert warnings_of(early.transitions) == []
    assert [r.status for r in early.results] == ["applied"]
    out = feed(st, c, clean(D1 + 3 * 24 * H + 20 * H)[3 * 24 :])
    # raised when the data's time reaches 06:00 and lifted at 18:00: its own AQI has been
    # ≤ 150 for days and nothing worse is known ahead, so the lift condition holds at once
    assert warnings_of(out.transitions) == [
        ("warning_issued", "yellow", "firing", start),
        ("warning_lifted", "none", "resolved", end),
    ]
    assert [
        t.labels.get("enterprise") for t in out.transitions if t.kind.value == "warning_duty"
    ] == [
        "e-wf-01",
        "e-wf-01",
    ]


def test_regional_warning_is_for_admin_principals_and_needs_its_fields() -> None:
    with pytest.raises(ValidationError, match="admin"):
        regional("c-1", "orange", role="duty")
    with pytest.raises(ValidationError, match="regional_id"):
        Command(
            id="c-2",
            action="regional_warning",
            locality=LOC,
            actor="province",
            role="admin",
            issued_at=datetime(2026, 12, 4, tzinfo=UTC),
        )


def test_a_locality_without_rule_set_keeps_the_regional_warning_but_issues_nothing() -> None:
    st = LocalityState(LOC, RULES)
    c = LocalityContext(locality=LOC, rule_set=None)
    feed(st, c, clean(D1 + 24 * H))
    got = st.step(regional("c-1", "red"), c)
    assert warnings_of(got.transitions) == []
    assert [r.status for r in got.results] == ["applied"]


def test_regional_state_survives_a_restart() -> None:
    st, c = LocalityState(LOC, RULES), ctx()
    feed(st, c, clean(D1 + 3 * 24 * H))
    st.step(
        regional(
            "c-1",
            "orange",
            starts_at=datetime(2026, 12, 4, 6, tzinfo=BJ),
            ends_at=datetime(2026, 12, 5, tzinfo=BJ),
        ),
        c,
    )
    back = LocalityState.from_dict(json.loads(json.dumps(st.to_dict())), RULES)
    out = feed(back, c, clean(D1 + 3 * 24 * H + 7 * H)[3 * 24 :])
    assert warnings_of(out.transitions) == [
        ("warning_issued", "orange", "firing", datetime(2026, 12, 4, 6, tzinfo=BJ))
    ]
