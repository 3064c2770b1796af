"""Routing: who receives what, and grouping timers (alerts/routing.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.notification import NotificationKind
from alerts.routing import (
    GroupTiming,
    Matcher,
    Op,
    Receiver,
    Role,
    Route,
    RouteTree,
    RoutingError,
    group_key,
    tree_from_receivers,
)

ALERT = NotificationKind.ALERT
WARNING = NotificationKind.WARNING

DUTY_WF = Receiver("duty-weifang", Role.DUTY, "weifang")
DUTY_LX = Receiver("duty-laixi", Role.DUTY, "laixi")
ENT_A = Receiver("ent-a", Role.ENTERPRISE, "weifang", enterprise="e-a")
ENT_B = Receiver("ent-b", Role.ENTERPRISE, "weifang", enterprise="e-b")
EMERG_WF = Receiver("emergency-weifang", Role.EMERGENCY, "weifang")

TREE = tree_from_receivers([DUTY_WF, DUTY_LX, ENT_A, ENT_B, EMERG_WF])


def test_enterprise_alert_goes_to_its_enterprise_and_the_local_duty_officer_only() -> None:
    labels = {"locality": "weifang", "enterprise": "e-a", "rule": "permit_exceedance"}
    assert TREE.receivers(labels, ALERT) == ["duty-weifang", "ent-a"]


def test_duty_officer_gets_everything_of_their_locality_and_nothing_else() -> None:
    station = {"locality": "laixi", "source": "aq-lx-001", "rule": "ambient_exceedance"}
    assert TREE.receivers(station, ALERT) == ["duty-laixi"]
    warning = {"locality": "laixi", "kind": "warning"}
    assert TREE.receivers(warning, WARNING) == ["duty-laixi"]


def test_emergency_responders_get_warnings_of_their_locality_not_alerts() -> None:
    labels = {"locality": "weifang"}
    assert "emergency-weifang" in TREE.receivers(labels, WARNING)
    assert "emergency-weifang" not in TREE.receivers(labels, ALERT)


def test_enterprises_do_not_receive_warning_triggers_that_list_other_enterprises() -> None:
    labels = {"locality": "weifang", "enterprise": "e-a"}
    assert TREE.receivers(labels, WARNING) == ["duty-weifang", "emergency-weifang"]


def test_alert_without_enterprise_label_reaches_no_enterprise() -> None:
    labels = {"locality": "weifang", "source": "aq-wf-001"}
    assert TREE.receivers(labels, ALERT) == ["duty-weifang"]


# Enterprise ids drawn to collide on prefixes, regex metacharacters and case.
_ids = st.sampled_from(["e-a", "e-b", "e-a1", "E-A", "e-a ", "", ".*", "e-b|e-a"])
_labels = st.dictionaries(
    st.sampled_from(["enterprise", "locality", "source", "rule", "factor", "outlet"]),
    st.one_of(_ids, st.sampled_from(["weifang", "laixi", "x"])),
)


@given(labels=_labels, kind=st.sampled_from(list(NotificationKind)))
def test_enterprise_a_never_receives_anything_of_another_enterprise(
    labels: dict[str, str], kind: NotificationKind
) -> None:
    got = TREE.receivers(labels, kind)
    for receiver in (ENT_A, ENT_B):
        if receiver.name in got:
            assert labels.get("enterprise") == receiver.enterprise
            # its own alerts and its own duties under a warning, never the warnings themselves
            assert kind in (ALERT, NotificationKind.DUTY)


@given(labels=_labels)
def test_an_enterprises_duties_reach_that_enterprise_only(labels: dict[str, str]) -> None:
    """The duty officer and emergency responders get the warning (with every enterprise's
    measures); an enterprise's own duties go to that enterprise alone."""
    got = TREE.receivers(labels, NotificationKind.DUTY)
    assert all(name in (ENT_A.name, ENT_B.name) for name in got)
    assert len(got) <= 1


def test_a_route_that_would_widen_an_enterprise_receiver_is_refused() -> None:
    # A catch-all route (no matcher) or a regex on the enterprise label must not be able to
    # deliver to an enterprise receiver.
    with pytest.raises(RoutingError) as caught:
        RouteTree(Route(routes=(Route(receiver=ENT_A),)))
    assert "enterprise" in caught.value.reason
    with pytest.raises(RoutingError):
        RouteTree(Route(matchers=(Matcher("enterprise", Op.RE, "e-.*"),), receiver=ENT_A))
    with pytest.raises(RoutingError):  # B's id on A's receiver
        RouteTree(Route(matchers=(Matcher("enterprise", Op.EQ, "e-b"),), receiver=ENT_A))


def test_extra_matchers_only_narrow_an_enterprise_route() -> None:
    route = Route(
        matchers=(Matcher("enterprise", Op.EQ, "e-a"), Matcher("severity", Op.EQ, "critical")),
        receiver=ENT_A,
    )
    tree = RouteTree(Route(routes=(route,)))
    assert tree.receivers({"enterprise": "e-a", "severity": "critical"}, ALERT) == ["ent-a"]
    assert tree.receivers({"enterprise": "e-a", "severity": "info"}, ALERT) == []


def test_receiver_validation_names_the_field() -> None:
    with pytest.raises(RoutingError) as caught:
        Receiver("x", Role.ENTERPRISE, "weifang")
    assert caught.value.field == "receiver x.enterprise"
    with pytest.raises(RoutingError):
        Receiver("y", Role.DUTY, "weifang", enterprise="e-a")
    with pytest.raises(RoutingError):
        tree_from_receivers([DUTY_WF, DUTY_WF])
    with pytest.raises(RoutingError):
        Matcher("rule", Op.RE, "(")


def test_first_matching_child_wins_unless_continue() -> None:
    first = Route(matchers=(Matcher("locality", Op.EQ, "weifang"),), receiver=DUTY_WF)
    second = Route(matchers=(Matcher("rule", Op.RE, "permit.*"),), receiver=DUTY_LX)
    tree = RouteTree(Route(routes=(first, second)))
    labels = {"locality": "weifang", "rule": "permit_exceedance"}
    assert tree.receivers(labels, ALERT) == ["duty-weifang"]
    tree_cont = RouteTree(Route(routes=(Route(**{**_fields(first), "cont": True}), second)))
    assert tree_cont.receivers(labels, ALERT) == ["duty-weifang", "duty-laixi"]


def _fields(route: Route) -> dict[str, object]:
    return {name: getattr(route, name) for name in Route.__dataclass_fields__}


def test_group_key_uses_sorted_group_by_labels() -> None:
    labels = {"rule": "offline", "locality": "weifang", "source": "x"}
    assert (
        group_key("duty", ["rule", "locality"], labels)
        == 'duty:{locality="weifang",rule="offline"}'
    )


# ---------------------------------------------------------------- grouping timers, as a timeline

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
TIMING = GroupTiming(
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=5),
    repeat_interval=timedelta(hours=4),
)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_negative_timer_is_refused() -> None:
    with pytest.raises(RoutingError) as caught:
        GroupTiming(group_wait=timedelta(seconds=-1))
    assert caught.value.field == "group_wait"
