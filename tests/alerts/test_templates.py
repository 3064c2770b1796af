"""Message texts (alerts/templates.py) and the Notification built from a transition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from alerts.model import AlertState, Reason, Severity, Transition, TransitionKind, fingerprint
from alerts.notification import (
    NotificationKind,
    NotificationStatus,
    build_notification,
    notification_id,
    notifications_for,
)
from alerts.templates import render, render_alert, render_warning

# 2026-11-22 09:00 Beijing time = 01:00 UTC.
AT = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)


def permit_transition(state: AlertState = AlertState.FIRING, **kw: object) -> Transition:
    labels = {
        "rule": "permit_exceedance",
        "source": "e-wf-001:outlet-1",
        "factor": "nox",
        "locality": "weifang",
        "enterprise": "e-wf-001",
    }
    fields: dict[str, object] = {
        "id": "t1",
        "kind": TransitionKind.ALERT,
        "fingerprint": fingerprint(labels),
        "labels": labels,
        "annotations": {"source_name": "xx 企业", "outlet_name": "1号排口", "unit": "mg/m3"},
        "state": state,
        "previous_state": AlertState.PENDING,
        "reason": Reason.FOR_ELAPSED,
        "at": AT,
        "severity": Severity.CRITICAL,
        "locality": "weifang",
        "source": "e-wf-001:outlet-1",
        "value": 132.0,
        "limit": 100.0,
    }
    fields.update(kw)
    return Transition(**fields)  # type: ignore[arg-type]


def test_permit_exceedance_text_matches_the_issue_example() -> None:
    texts = render(permit_transition())
    # 超标倍数 = (132 − 100) / 100 = 0.32; 01:00 UTC = 09:00 Beijing; names first, the id second
    assert texts.zh == (
        "【超标】潍坊市 xx 企业 1号排口 (e-wf-001:outlet-1) 氮氧化物小时均值 132 mg/m³，"
        "超过许可限值 100 mg/m³ 0.32 倍（2026-11-22 09:00）"
    )
    assert texts.en == (
        "[Exceedance] Weifang xx 企业 1号排口 (e-wf-001:outlet-1) NOx hourly mean 132 mg/m³ "
        "exceeds the permit limit 100 mg/m³ by 0.32× (2026-11-22 09:00 Beijing time)"
    )


def test_resolved_and_escalated_change_the_title() -> None:
    resolved = render(
        permit_transition(AlertState.RESOLVED, reason=Reason.CLEAR_CONDITION_MET, value=85.0)
    )
    assert resolved.zh == (
        "【恢复】潍坊市 xx 企业 1号排口 (e-wf-001:outlet-1) 氮氧化物小时均值 85 mg/m³，"
        "未超过许可限值 100 mg/m³（2026-11-22 09:00）"
    )
    assert resolved.en == (
        "[Resolved] Weifang xx 企业 1号排口 (e-wf-001:outlet-1) NOx hourly mean 85 mg/m³ "
        "is within the permit limit 100 mg/m³ (2026-11-22 09:00 Beijing time)"
    )
    escalated = render(permit_transition(reason=Reason.ESCALATED))
    assert escalated.zh.startswith("【升级·未确认】")
    assert escalated.en.startswith("[Escalated, unacknowledged]")


def test_effluent_exceedance_uses_daily_mean_and_the_offset_is_normalised() -> None:
    at = datetime(2026, 11, 22, 9, 0, tzinfo=timezone(timedelta(hours=8)))
    texts = render_alert(
        "firing",
        {"rule": "effluent_exceedance", "locality": "laixi", "factor": "cod"},
        # Laixi WWTP COD ≤ 40 mg/L (003_021375295357aa36.txt, plans/README.md); 50 → (50−40)/40 = 0.25
        {"source_name": "莱西市污水处理厂", "value": "50", "limit": "40", "unit": "mg/L"},
        at,
    )
    assert texts.zh == (
        "【超标】莱西市 莱西市污水处理厂 化学需氧量日均值 50 mg/L，超过排放标准限值 40 mg/L "
        "0.25 倍（2026-11-22 09:00）"
    )


@pytest.mark.parametrize(
    ("rule", "annotations", "zh"),
    [
        (
            "water_class",
            {"source_name": "大沽河 早朝", "observed_class": "Ⅳ", "target_class": "Ⅲ"},
            "【水质不达标】莱西市 大沽河 早朝 断面水质为Ⅳ类，未达到Ⅲ类目标（2026-11-22 09:00）",
        ),
        (
            "water_worse_than_v",
            {"source_name": "洙河 辇止头"},
            "【劣Ⅴ类水质】莱西市 洙河 辇止头 断面水质为劣Ⅴ类（2026-11-22 09:00）",
        ),
        (
            "bypass_open",
            {"source_name": "xx 企业", "outlet_name": "1号排口"},
            "【旁路开启】莱西市 xx 企业 1号排口 旁路开启（2026-11-22 09:00）",
        ),
        (
            "offline",
            {"source_name": "aq-lx-001", "last_seen": "2026-11-22 07:00", "expected": "1 h"},
            "【离线】莱西市 aq-lx-001 超过 1 h 无数据，最后数据 2026-11-22 07:00（2026-11-22 09:00）",
        ),
        (
            "zero_value",
            {"source_name": "s1", "factor": "so2", "count": "6"},
            "【数据异常】莱西市 s1 二氧化硫 连续 6 个数据为零（2026-11-22 09:00）",
        ),
        (
            "constant_value",
            {"source_name": "s1", "factor": "nox", "count": "12", "value": "35.0", "unit": "mg/m3"},
            "【数据异常】莱西市 s1 氮氧化物 连续 12 个数据恒定为 35 mg/m³（2026-11-22 09:00）",
        ),
        (
            "data_rate",
            {"source_name": "s1", "rate": "85.5", "threshold": "90"},
            "【数据传输有效率低】莱西市 s1 数据传输有效率 85.5 %，低于 90 %（2026-11-22 09:00）",
        ),
        (
            "plan_progress",
            {"indicator": "PM2.5年均浓度", "progress": "off_track", "value": "45", "target": "38"},
            "【目标进度】莱西市 PM2.5年均浓度 目标进度偏离目标（当前 45，目标 38）（2026-11-22 09:00）",
        ),
        (
            "warning_compliance",
            {
                "source_name": "xx 企业",
                "factor": "nox",
                "level": "orange",
                "cut": "5",
                "required": "20",
            },
            "【减排不力】莱西市 xx 企业 橙色预警期间 氮氧化物 较预警前基线仅下降 5.0 %，应不少于 20 %（2026-11-22 09:00）",
        ),
    ],
)
def test_every_alert_kind_has_a_chinese_text(
    rule: str, annotations: dict[str, str], zh: str
) -> None:
    texts = render_alert("firing", {"rule": rule, "locality": "laixi"}, annotations, AT)
    assert texts.zh == zh
    assert texts.en.endswith("(2026-11-22 09:00 Beijing time)")
    assert texts.get("en") == texts.en
    assert texts.get("fr") == texts.zh  # Chinese is the default


def test_missing_fields_fall_back_to_a_generic_text_instead_of_failing() -> None:
    texts = render_alert(
        "firing",
        {"rule": "permit_exceedance", "locality": "weifang", "source": "e-1"},
        {"summary": "氮氧化物超标", "value": "not-a-number"},
        AT,
    )
    assert texts.zh == "【告警】潍坊市 e-1 氮氧化物超标（2026-11-22 09:00）"
    unknown = render_alert("firing", {"rule": "something_new", "locality": "x"}, {}, AT)
    assert unknown.zh == "【告警】x something_new（2026-11-22 09:00）"


def warning_transition(
    reason: Reason, level: str, state: AlertState = AlertState.FIRING
) -> Transition:
    labels = {"rule": "heavy_pollution_warning", "locality": "weifang"}
    return Transition(
        id="w1",
        kind=TransitionKind.WARNING,
        fingerprint=fingerprint(labels),
        labels=labels,
        annotations={"previous_level": "orange"} if reason is Reason.WARNING_LIFTED else {},
        state=state,
        previous_state=None,
        reason=reason,
        at=AT,
        severity=Severity.CRITICAL,
        locality="weifang",
        source="weifang",
        level=level,
    )


def test_warning_texts_issue_upgrade_lift() -> None:
    assert render(warning_transition(Reason.WARNING_ISSUED, "yellow")).zh == (
        "【重污染天气预警】潍坊市 发布黄色预警（2026-11-22 09:00）"
    )
    assert render(warning_transition(Reason.WARNING_UPGRADED, "orange")).zh == (
        "【重污染天气预警】潍坊市 升级为橙色预警（2026-11-22 09:00）"
    )
    lifted = render(warning_transition(Reason.WARNING_LIFTED, "none", AlertState.RESOLVED))
    assert lifted.zh == "【重污染天气预警解除】潍坊市 解除橙色预警（2026-11-22 09:00）"
    assert (
        lifted.en
        == "[Heavy-pollution warning lifted] Weifang: orange warning lifted (2026-11-22 09:00 Beijing time)"
    )


def test_warning_trigger_lists_reductions_and_enterprise_measures() -> None:
    trigger = {
        # yellow: ≥ 10 % cuts of SO2, NOx, PM, VOCs (standards.md §6.1 [2+])
        "reductions": {"so2": 0.10, "nox": 0.10},
        "enterprises": [
            {"name": "甲企业", "grade": "B", "measures": ["烧结机限产 20%", "停用燃煤锅炉"]},
            {"name": "乙企业", "grade": "A", "measures": []},
            {"name": "丙企业", "grade": "C", "measures": "停产"},
        ],
    }
    texts = render_warning(
        "firing", "yellow", None, {"locality": "weifang"}, AT, trigger, max_enterprises=2
    )
    assert texts.zh == (
        "【重污染天气预警】潍坊市 发布黄色预警（2026-11-22 09:00）；减排要求：二氧化硫 ≥10%、"
        "氮氧化物 ≥10%；涉及企业 3 家：甲企业（B级）：烧结机限产 20%；停用燃煤锅炉｜乙企业（A级）｜等 3 家"
    )


def test_notification_id_is_deterministic_and_per_receiver() -> None:
    t = permit_transition()
    a1 = build_notification(t, "ent-a", render(t))
    a2 = build_notification(t, "ent-a", render(t))
    duty = build_notification(t, "duty", render(t))
    assert a1.id == a2.id
    assert a1.id != duty.id
    # same instant written in Beijing time gives the same key
    beijing = AT.astimezone(timezone(timedelta(hours=8)))
    assert notification_id(t.fingerprint, "firing", beijing, "ent-a", "for_elapsed") == a1.id
    # an escalation of the same alert at the same instant is another notification
    escalated = build_notification(permit_transition(reason=Reason.ESCALATED), "ent-a", render(t))
    assert escalated.id != a1.id


def test_notification_fields_follow_the_transition() -> None:
    firing = build_notification(permit_transition(), "ent-a", render(permit_transition()))
    assert firing.status is NotificationStatus.FIRING
    assert firing.kind is NotificationKind.ALERT
    assert firing.ends_at is None
    assert firing.locality == "weifang"
    assert firing.labels["enterprise"] == "e-wf-001"
    resolved_t = permit_transition(AlertState.RESOLVED, reason=Reason.CLEAR_CONDITION_MET)
    resolved = build_notification(resolved_t, "ent-a", render(resolved_t))
    assert resolved.status is NotificationStatus.RESOLVED
    assert resolved.ends_at == AT
    again = type(resolved).from_json(resolved.to_json())
    assert again == resolved
    warning = build_notification(
        warning_transition(Reason.WARNING_ISSUED, "red"), "emergency", render(permit_transition())
    )
    assert warning.kind is NotificationKind.WARNING
    assert warning.level == "red"


def test_suppressed_transition_produces_no_notification() -> None:
    from alerts.model import Suppression

    t = permit_transition(suppressed=(Suppression.SILENCED,))
    assert notifications_for(t, ["ent-a", "duty"], render) == []
    t2 = permit_transition()
    got = notifications_for(t2, ["ent-a", "duty", "ent-a"], render)
    assert [n.receiver for n in got] == ["ent-a", "duty"]


def test_engine_transition_routes_and_renders_end_to_end() -> None:
    from alerts.engine import Engine
    from alerts.routing import Receiver, Role, tree_from_receivers
    from alerts.rules import Evaluation, default_rules

    engine = Engine(default_rules())
    ev = Evaluation(
        kind="permit",
        locality="weifang",
        source="e-wf-001:outlet-1",
        factor="nox",
        value=132.0,
        limit=100.0,
        time=AT,
        detail={"enterprise": "e-wf-001"},
    )
    (t,) = engine.process(ev)
    tree = tree_from_receivers(
        [
            Receiver("duty-weifang", Role.DUTY, "weifang"),
            Receiver("ent-1", Role.ENTERPRISE, "weifang", enterprise="e-wf-001"),
            Receiver("ent-2", Role.ENTERPRISE, "weifang", enterprise="e-wf-002"),
        ]
    )
    receivers = tree.receivers(t.labels, NotificationKind(t.kind.value))
    assert receivers == ["duty-weifang", "ent-1"]
    (duty, ent) = notifications_for(t, receivers, render)
    # the unit comes from rules.factors (nox in flue gas: mg/m3); (132 − 100)/100 = 0.32
    assert ent.texts.zh == (
        "【超标】潍坊市 e-wf-001:outlet-1 氮氧化物小时均值 132 mg/m³，"
        "超过许可限值 100 mg/m³ 0.32 倍（2026-11-22 09:00）"
    )
    assert duty.id != ent.id


# ---------------------------------------------------------------- the console link (issue 14)


def test_with_an_external_url_the_texts_end_with_the_alerts_console_page() -> None:
    t = permit_transition()
    plain = render(t)
    texts = render(t, external_url="https://envwatch.example.cn/")
    page = f"https://envwatch.example.cn/console/alerts/{t.fingerprint}"
    assert texts.zh == plain.zh + f"\n详情：{page}"
    assert texts.en == plain.en + f"\nDetails: {page}"


def test_without_an_external_url_there_is_no_link() -> None:
    t = permit_transition()
    assert render(t, external_url="") == render(t)
    assert "console" not in render(t).zh


def test_console_url_is_empty_without_a_base_or_a_fingerprint() -> None:
    from alerts.templates import console_url

    assert console_url("", "abc") == ""
    assert console_url("   ", "abc") == ""
    assert console_url("http://h:8080", "") == ""
    assert console_url("http://h:8080//", "0123") == "http://h:8080/console/alerts/0123"


def test_a_warning_has_no_console_page_and_no_link() -> None:
    t = warning_transition(Reason.WARNING_ISSUED, "yellow")
    assert render(t, external_url="https://envwatch.example.cn") == render(t)
