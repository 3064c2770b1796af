"""Operator alerts about envwatch itself (alerts/pipeline.py): a component's health points through
the locality stage, the ``pipeline`` rule, the texts and the routing to the operator only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.locality import LocalityContext, LocalityState, transition_point
from alerts.model import AlertState
from alerts.notification import NotificationKind, notifications_for
from alerts.pipeline import OPERATOR_RECEIVER, PIPELINE_LOCALITY, health_point
from alerts.routing import tree_from_receivers
from alerts.rules import default_rules
from alerts.templates import render
from streams.catalog import CatalogView, receivers_from_catalog
from streams.schema import check_point
from streams.wire import decode_points, points_bytes

CATALOGUE = Path(__file__).resolve().parents[2] / "deploy" / "config"
T0 = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
CTX = LocalityContext(locality=PIPELINE_LOCALITY, rule_set=None)


def wire(point: object) -> dict[str, object]:
    """A point as the locality stage receives it (through the wire form)."""
    return decode_points(points_bytes([point]))[0]  # type: ignore[list-item]


def test_store_write_alert_fires_on_problem_and_clears_on_recovery() -> None:
    st = LocalityState(PIPELINE_LOCALITY, default_rules())
    failing = health_point(
        "store@host-1",
        "write",
        problem=True,
        at=T0,
        reason="401 Unauthorized: unauthorized access",
        count=1200,
    )
    out = st.step(wire(failing), CTX)
    assert len(out.transitions) == 1
    t = out.transitions[0]
    assert t.state is AlertState.FIRING
    assert t.labels["rule"] == "pipeline"
    assert t.labels["locality"] == PIPELINE_LOCALITY
    assert t.labels["source"] == "store@host-1"
    assert t.labels["factor"] == "write"
    assert t.labels["category"] == "data_quality"
    texts = render(t)
    assert texts.zh == (
        "【系统运行异常】envwatch 运行 数据入库（host-1） 无法写入时序数据库，数据暂存于本地 spool 待补写，"
        "涉及 1200 条；原因：401 Unauthorized: unauthorized access（2026-12-03 14:00）"
    )
    assert texts.en == (
        "[envwatch component fault] envwatch operations store (host-1) cannot write to the "
        "time-series store; data is spooled for a later write, 1200 held back; reason: "
        "401 Unauthorized: unauthorized access (2026-12-03 14:00 Beijing time)"
    )
    # the same state again changes nothing
    again = health_point("store@host-1", "write", problem=True, at=T0 + timedelta(seconds=5))
    assert st.step(wire(again), CTX).transitions == []
    ok = health_point("store@host-1", "write", problem=False, at=T0 + timedelta(seconds=30))
    out = st.step(wire(ok), CTX)
    assert [t.state for t in out.transitions] == [AlertState.RESOLVED]
    assert render(out.transitions[0]).zh == (
        "【恢复】envwatch 运行 数据入库（host-1） 恢复写入时序数据库（2026-12-03 14:00）"
    )
    # the transitions are stored as alert points like any other
    point = transition_point(out.transitions[0])
    assert check_point(point.measurement, point.tags, point.fields) == []


def test_conditions_of_one_component_are_separate_alerts() -> None:
    st = LocalityState(PIPELINE_LOCALITY, default_rules())
    a = st.step(wire(health_point("store", "write", problem=True, at=T0)), CTX)
    b = st.step(
        wire(health_point("store", "rejected", problem=True, at=T0 + timedelta(seconds=1))), CTX
    )
    assert a.transitions[0].fingerprint != b.transitions[0].fingerprint
    c = st.step(
        wire(health_point("store", "write", problem=False, at=T0 + timedelta(seconds=2))), CTX
    )
    assert [(t.labels["factor"], t.state) for t in c.transitions] == [
        ("write", AlertState.RESOLVED)
    ]


def test_receiver_component_text() -> None:
    st = LocalityState(PIPELINE_LOCALITY, default_rules())
    p = health_point(
        "receiver:ent-a", "delivery", problem=True, at=T0, reason="HTTP 400: bad request", count=3
    )
    t = st.step(wire(p), CTX).transitions[0]
    assert render(t).zh == (
        "【系统运行异常】envwatch 运行 通知接收方 ent-a 拒收通知，通知已保留待重发（envwatch notify replay），"
        "涉及 3 条；原因：HTTP 400: bad request（2026-12-03 14:00）"
    )


def test_only_the_operator_receives_pipeline_alerts() -> None:
    receivers = receivers_from_catalog(CatalogView(CATALOGUE).catalog)
    assert OPERATOR_RECEIVER in [r.name for r in receivers]
    tree = tree_from_receivers(receivers)
    st = LocalityState(PIPELINE_LOCALITY, default_rules())
    t = st.step(wire(health_point("store", "write", problem=True, at=T0)), CTX).transitions[0]
    names = tree.receivers(t.labels, NotificationKind.ALERT)
    assert names == [OPERATOR_RECEIVER]
    assert [n.receiver for n in notifications_for(t, names, render)] == [OPERATOR_RECEIVER]


def test_health_point_is_in_the_schema_and_validated() -> None:
    p = health_point("store@h", "write", problem=True, at=T0, reason="x " * 400, count=2)
    assert check_point(p.measurement, p.tags, p.fields) == []
    assert len(str(p.fields["reason"])) == 300
    with pytest.raises(ValueError):
        health_point("Store", "write", problem=True, at=T0)
    with pytest.raises(ValueError):
        health_point("store", "Write", problem=True, at=T0)
    with pytest.raises(ValueError):
        health_point("store", "write", problem=True, at=T0.replace(tzinfo=None))
