"""Readable alert texts (issue 11): from a hand-made Evaluation with catalogue-like detail, through
``alerts.rules`` (annotations) and a transition, to ``alerts.templates.render``.

Every expected text below is written by hand from the standards' printing rules (GB/T 8170
rounding; µg/m³ integers and ambient CO with one decimal per HJ 633-2026 §4.2.2–4.2.3; rates with
one decimal; 超标倍数 with two), not produced by the code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from alerts.lifecycle import Observation
from alerts.model import AlertState, Reason, Severity, Transition, TransitionKind
from alerts.notification import Texts
from alerts.rules import (
    AlertRule,
    Evaluation,
    default_rules,
    evaluate,
    offline_observation,
)
from alerts.templates import (
    describe,
    fmt_fixed,
    fmt_value,
    fmt_value_against,
    render,
    render_alert,
)

# 2026-11-22 09:00 Beijing time = 01:00 UTC.
AT = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
WHEN = "（2026-11-22 09:00）"
WHEN_EN = " (2026-11-22 09:00 Beijing time)"

RULES = default_rules()
# the four kinds of issue 11, declared here so the texts are tested whatever DEFAULT_RULES holds
NOISE = AlertRule(id="t-noise", name="Noise above its limit", kind="noise", source="GB 3096-2008")
DUST = AlertRule(id="t-dust", name="Site dust above its limit", kind="dust", source="catalogue")
VAPOUR = AlertRule(
    id="t-vapour", name="Vapour recovery not working", kind="vapour_recovery", source="plans"
)
POWER = AlertRule(
    id="t-power", name="Treatment off while producing", kind="electricity", source="plans"
)

# catalogue-like detail (deploy/config/laixi.yaml), as the locality stage passes it
STATION = {
    "station": "aq-lx-01",
    "source_name": "示例站 莱西市区",
    "locality_name": "莱西市",
    "area_grade": "II",
    "interval_minutes": "60",
}
OUTLET = {
    "enterprise": "e-lx-01",
    "enterprise_name": "示例食品加工有限公司",
    "source_name": "示例食品加工有限公司",
    "outlet": "e-lx-01-g1",
    "outlet_name": "燃煤锅炉烟囱",
    "locality_name": "莱西市",
    "interval_minutes": "60",
}
WWTP = {
    "enterprise": "e-lx-wwtp",
    "enterprise_name": "莱西市污水处理厂",
    "source_name": "莱西市污水处理厂",
    "outlet": "e-lx-wwtp-w1",
    "outlet_name": "10万吨/日 出水口",
    "locality_name": "莱西市",
    "period": "day",
    "unit": "mg/L",
}
SECTION = {
    "section": "ws-lx-jiangjiazhuang",
    "source_name": "江家庄",
    "locality_name": "莱西市",
    "interval_minutes": "240",
    "period": "sample",
}


def transition_of(
    obs: Observation, state: AlertState = AlertState.FIRING, reason: Reason | None = None
) -> Transition:
    """The transition the lifecycle would emit for ``obs`` (labels, annotations, value, limit)."""
    if reason is None:
        firing = state is AlertState.FIRING
        reason = Reason.CONDITION_MET_NO_WAIT if firing else Reason.CLEAR_CONDITION_MET
    return Transition(
        id="t",
        kind=TransitionKind.ALERT,
        fingerprint=obs.fingerprint,
        labels=dict(obs.labels),
        annotations=dict(obs.annotations),
        state=state,
        previous_state=None if state is AlertState.FIRING else AlertState.FIRING,
        reason=reason,
        at=obs.at,
        severity=Severity.WARNING,
        locality=obs.labels["locality"],
        source=obs.labels["source"],
        value=obs.value,
        limit=obs.limit,
    )


def texts_of(
    rule: AlertRule,
    ev: Evaluation,
    state: AlertState = AlertState.FIRING,
    *,
    run_length: int = 0,
) -> Texts:
    obs = evaluate(rule, ev, run_length=run_length)
    assert obs is not None
    return render(transition_of(obs, state))


def ev(
    kind: str,
    source: str,
    factor: str,
    value: float | None,
    limit: float | None = None,
    detail: Mapping[str, str] | None = None,
    *,
    locality: str = "laixi",
) -> Evaluation:
    return Evaluation(kind, locality, source, factor, value, AT, limit, detail=dict(detail or {}))


# ---------------------------------------------------------------- every kind, catalogue names

CASES = [
    pytest.param(
        RULES.by_id["ambient-exceedance"],
        ev(
            "ambient",
            "aq-lx-01",
            "pm25",
            156.91666666666666,
            75.0,
            {**STATION, "period": "24h", "standard": "GB 3095-2012 表1"},
        ),
        # 156.9166… → 157 (integer µg/m³); (157 − 75) / 75 = 1.0933 → 1.09
        "【超标】莱西市 示例站 莱西市区 (aq-lx-01) PM2.5 24 小时平均 157 µg/m³，超过二级浓度限值 "
        "75 µg/m³ 1.09 倍，限值依据 GB 3095-2012 表1",
        "[Exceedance] Laixi 示例站 莱西市区 (aq-lx-01) PM2.5 24-hour mean 157 µg/m³ exceeds the "
        "grade II limit 75 µg/m³ by 1.09×, limit per GB 3095-2012 表1",
        id="ambient-pm25-24h",
    ),
    pytest.param(
        RULES.by_id["ambient-exceedance"],
        ev(
            "ambient",
            "aq-lx-01",
            "co",
            10.46,
            10.0,
            {**STATION, "period": "hourly", "standard": "GB 3095-2012 表1"},
        ),
        # CO in mg/m³ with one decimal: 10.46 → 10.5; (10.5 − 10) / 10 = 0.05
        "【超标】莱西市 示例站 莱西市区 (aq-lx-01) 一氧化碳 1 小时平均 10.5 mg/m³，超过二级浓度限值 "
        "10 mg/m³ 0.05 倍，限值依据 GB 3095-2012 表1",
        "[Exceedance] Laixi 示例站 莱西市区 (aq-lx-01) CO 1-hour mean 10.5 mg/m³ exceeds the "
        "grade II limit 10 mg/m³ by 0.05×, limit per GB 3095-2012 表1",
        id="ambient-co-1h",
    ),
    pytest.param(
        RULES.by_id["ambient-exceedance"],
        ev(
            "ambient",
            "aq-lx-01",
            "o3_8h",
            171.4,
            160.0,
            {**STATION, "period": "8h", "standard": "GB 3095-2012 表1"},
        ),
        # 171.4 → 171; (171 − 160) / 160 = 0.06875 → 0.07
        "【超标】莱西市 示例站 莱西市区 (aq-lx-01) 臭氧日最大 8 小时平均 171 µg/m³，超过二级浓度限值 "
        "160 µg/m³ 0.07 倍，限值依据 GB 3095-2012 表1",
        "[Exceedance] Laixi 示例站 莱西市区 (aq-lx-01) O3 daily maximum 8-hour mean 171 µg/m³ "
        "exceeds the grade II limit 160 µg/m³ by 0.07×, limit per GB 3095-2012 表1",
        id="ambient-o3-8h",
    ),
    pytest.param(
        RULES.by_id["permit-exceedance"],
        ev(
            "permit",
            "e-lx-01-g1",
            "nox",
            236.789,
            200.0,
            {
                **OUTLET,
                "period": "hour",
                "unit": "mg/m3",
                "standard": "GB 13271-2014 特别排放限值 燃煤锅炉",
            },
        ),
        # 236.789 → 237 (three significant digits); (237 − 200) / 200 = 0.185 → 0.18 (GB/T 8170:
        # a 5 with nothing after it rounds to the even digit, not up)
        "【超标】莱西市 示例食品加工有限公司 燃煤锅炉烟囱 (e-lx-01-g1) 氮氧化物小时均值 237 mg/m³，"
        "超过许可限值 200 mg/m³ 0.18 倍，限值依据 GB 13271-2014 特别排放限值 燃煤锅炉",
        "[Exceedance] Laixi 示例食品加工有限公司 燃煤锅炉烟囱 (e-lx-01-g1) NOx hourly mean 237 mg/m³ "
        "exceeds the permit limit 200 mg/m³ by 0.18×, limit per GB 13271-2014 特别排放限值 燃煤锅炉",
        id="permit-nox",
    ),
    pytest.param(
        RULES.by_id["effluent-exceedance"],
        ev(
            "effluent",
            "e-lx-wwtp-w1",
            "cod",
            45.33333333333333,
            40.0,
            {**WWTP, "standard": "003_021375295357aa36.txt#L114 (COD≤40mg/l)"},
        ),
        # 45.333… → 45.3; (45.3 − 40) / 40 = 0.1325 → 0.13
        "【超标】莱西市 莱西市污水处理厂 10万吨/日 出水口 (e-lx-wwtp-w1) 化学需氧量日均值 45.3 mg/L，"
        "超过排放标准限值 40 mg/L 0.13 倍，限值依据 003_021375295357aa36.txt#L114 (COD≤40mg/l)",
        "[Exceedance] Laixi 莱西市污水处理厂 10万吨/日 出水口 (e-lx-wwtp-w1) COD daily mean 45.3 mg/L "
        "exceeds the discharge limit 40 mg/L by 0.13×, limit per "
        "003_021375295357aa36.txt#L114 (COD≤40mg/l)",
        id="effluent-cod",
    ),
    pytest.param(
        RULES.by_id["effluent-exceedance"],
        ev(
            "effluent",
            "e-lx-wwtp-w1",
            "nh3n",
            2.6666666666666665,
            2.0,
            {**WWTP, "standard": "003_021375295357aa36.txt#L114 (氨氮≤2mg/l)"},
        ),
        # 2.666… → 2.67; (2.67 − 2) / 2 = 0.335 → 0.34 (the 5 follows an odd 3: up to even)
        "【超标】莱西市 莱西市污水处理厂 10万吨/日 出水口 (e-lx-wwtp-w1) 氨氮日均值 2.67 mg/L，"
        "超过排放标准限值 2 mg/L 0.34 倍，限值依据 003_021375295357aa36.txt#L114 (氨氮≤2mg/l)",
        "[Exceedance] Laixi 莱西市污水处理厂 10万吨/日 出水口 (e-lx-wwtp-w1) ammonia nitrogen daily "
        "mean 2.67 mg/L exceeds the discharge limit 2 mg/L by 0.34×, limit per "
        "003_021375295357aa36.txt#L114 (氨氮≤2mg/l)",
        id="effluent-nh3n",
    ),
    pytest.param(
        RULES.by_id["dustfall"],
        ev(
            "dustfall",
            "mon-lx-dustfall-01",
            "dustfall",
            8.456,
            7.0,
            {
                "source_name": "示例降尘监测点",
                "locality_name": "莱西市",
                "period": "month",
                "standard": "000_d6d679181568297b.txt#L171",
            },
        ),
        # 8.456 → 8.46; (8.46 − 7) / 7 = 0.2086 → 0.21
        "【降尘超标】莱西市 示例降尘监测点 (mon-lx-dustfall-01) 降尘量月均值 8.46 t/(月·km²)，"
        "超过控制目标 7 t/(月·km²) 0.21 倍，限值依据 000_d6d679181568297b.txt#L171",
        "[Dustfall exceedance] Laixi 示例降尘监测点 (mon-lx-dustfall-01) dustfall monthly mean "
        "8.46 t/(month·km²) exceeds the target 7 t/(month·km²) by 0.21×, limit per "
        "000_d6d679181568297b.txt#L171",
        id="dustfall",
    ),
    pytest.param(
        DUST,
        ev(
            "dust",
            "mon-lx-site-01",
            "pm10",
            156.4,
            80.0,
            {
                "source_name": "示例建筑工地扬尘",
                "locality_name": "莱西市",
                "period": "hour",
                "standard": "catalogue limit (local setting)",
            },
        ),
        # 156.4 → 156 µg/m³; (156 − 80) / 80 = 0.95
        "【扬尘超标】莱西市 示例建筑工地扬尘 (mon-lx-site-01) 扬尘 PM10 小时均值 156 µg/m³，"
        "超过控制限值 80 µg/m³ 0.95 倍，限值依据 catalogue limit (local setting)",
        "[Site dust exceedance] Laixi 示例建筑工地扬尘 (mon-lx-site-01) site dust PM10 hourly mean "
        "156 µg/m³ exceeds the site-dust limit 80 µg/m³ by 0.95×, limit per "
        "catalogue limit (local setting)",
        id="dust",
    ),
    pytest.param(
        NOISE,
        ev(
            "noise",
            "mon-lx-noise-01",
            "noise_leq",
            62.34,
            60.0,
            {
                "source_name": "示例噪声监测点",
                "locality_name": "莱西市",
                "period": "day_time",
                "zone_class": "2",
                "standard": "GB 3096-2008 表1 2类 昼间",
            },
        ),
        # one decimal: 62.34 → 62.3; over the limit by 62.3 − 60 = 2.3 dB(A)
        "【噪声超标】莱西市 示例噪声监测点 (mon-lx-noise-01) 昼间等效声级 62.3 dB(A)，"
        "超过声环境功能区 2 类昼间限值 60 dB(A)，超标 2.3 dB(A)，限值依据 GB 3096-2008 表1 2类 昼间",
        "[Noise exceedance] Laixi 示例噪声监测点 (mon-lx-noise-01) daytime Leq 62.3 dB(A) exceeds "
        "the class 2 acoustic-zone daytime limit 60 dB(A) by 2.3 dB(A), limit per "
        "GB 3096-2008 表1 2类 昼间",
        id="noise",
    ),
    pytest.param(
        RULES.by_id["water-class-target"],
        ev("water_class", "ws-lx-jiangjiazhuang", "class", 4.0, 3.0, SECTION),
        "【水质不达标】莱西市 江家庄 (ws-lx-jiangjiazhuang) 断面水质为Ⅳ类，未达到Ⅲ类目标",
        "[Water below target] Laixi 江家庄 (ws-lx-jiangjiazhuang) section water quality class IV, "
        "target class III not met",
        id="water-class",
    ),
    pytest.param(
        RULES.by_id["water-worse-than-v"],
        ev(
            "water_class",
            "ws-lx-nianzhitou",
            "class",
            6.0,
            6.0,
            {**SECTION, "section": "ws-lx-nianzhitou", "source_name": "辇止头"},
        ),
        "【劣Ⅴ类水质】莱西市 辇止头 (ws-lx-nianzhitou) 断面水质为劣Ⅴ类",
        "[Worse than class V] Laixi 辇止头 (ws-lx-nianzhitou) section water quality worse than "
        "class V",
        id="water-worse-than-v",
    ),
    pytest.param(
        RULES.by_id["water-worse-than-v"],
        ev("water_class", "ws-lx-jiangjiazhuang", "class", 6.0, 3.0, SECTION),
        "【劣Ⅴ类水质】莱西市 江家庄 (ws-lx-jiangjiazhuang) 断面水质为劣Ⅴ类（目标Ⅲ类）",
        "[Worse than class V] Laixi 江家庄 (ws-lx-jiangjiazhuang) section water quality worse than "
        "class V (target class III)",
        id="water-worse-than-v-with-target",
    ),
    pytest.param(
        RULES.by_id["bypass-open"],
        ev(
            "bypass",
            "mon-lx-bypass-01",
            "bypass_open",
            1.0,
            None,
            {
                "enterprise": "e-lx-01",
                "enterprise_name": "示例食品加工有限公司",
                "source_name": "示例旁路监控",
                "locality_name": "莱西市",
            },
        ),
        "【旁路开启】莱西市 示例食品加工有限公司 示例旁路监控 (mon-lx-bypass-01) 旁路开启",
        "[Bypass open] Laixi 示例食品加工有限公司 示例旁路监控 (mon-lx-bypass-01) bypass opened",
        id="bypass",
    ),
    pytest.param(
        VAPOUR,
        ev(
            "vapour_recovery",
            "mon-lx-vapour-01",
            "vapour_recovery",
            0.0,
            1.0,
            {
                "enterprise": "e-lx-gas",
                "enterprise_name": "示例加油站",
                "source_name": "油气回收在线监控",
                "locality_name": "莱西市",
                "period": "instant",
            },
        ),
        "【油气回收故障】莱西市 示例加油站 油气回收在线监控 (mon-lx-vapour-01) 油气回收装置故障/停运",
        "[Vapour recovery fault] Laixi 示例加油站 油气回收在线监控 (mon-lx-vapour-01) "
        "vapour-recovery system fault or shutdown",
        id="vapour-recovery",
    ),
    pytest.param(
        POWER,
        ev(
            "electricity",
            "mon-lx-power-01",
            "power_kw",
            3.2,
            22.5,
            {
                "enterprise": "e-lx-01",
                "enterprise_name": "示例食品加工有限公司",
                "source_name": "示例治污设施电量",
                "locality_name": "莱西市",
                "normal_kw": "45",
                "production_running": "1",
            },
        ),
        "【治污设施停运或低负荷运行】莱西市 示例食品加工有限公司 示例治污设施电量 (mon-lx-power-01) "
        "治污设施用电 3.2 kW，正常 45 kW，生产设施在运行",
        "[Pollution control off or underloaded] Laixi 示例食品加工有限公司 示例治污设施电量 "
        "(mon-lx-power-01) pollution-control equipment draws 3.2 kW (normal 45 kW) while "
        "production runs",
        id="electricity",
    ),
    pytest.param(
        RULES.by_id["data-rate"],
        ev(
            "data_rate",
            "aq-lx-01",
            "transmission_rate",
            0.75,
            0.9,
            {**STATION, "period": "day"},
        ),
        "【数据传输有效率低】莱西市 示例站 莱西市区 (aq-lx-01) 数据传输率 75.0 %，低于 90 %",
        "[Low valid-data rate] Laixi 示例站 莱西市区 (aq-lx-01) data transmission rate 75.0 %, "
        "below 90 %",
        id="data-rate-transmission",
    ),
    pytest.param(
        RULES.by_id["data-rate"],
        ev("data_rate", "aq-lx-01", "valid_rate", 0.8333333333333334, 0.9, STATION),
        # 83.333… % → 83.3 %
        "【数据传输有效率低】莱西市 示例站 莱西市区 (aq-lx-01) 数据有效率 83.3 %，低于 90 %",
        "[Low valid-data rate] Laixi 示例站 莱西市区 (aq-lx-01) valid-data rate 83.3 %, below 90 %",
        id="data-rate-valid",
    ),
    pytest.param(
        RULES.by_id["plan-progress"],
        ev(
            "plan_progress",
            "laixi",
            "pm25",
            45.0,
            None,
            {
                "status": "off_track",
                "indicator": "PM2.5年均浓度",
                "target": "38",
                "locality_name": "莱西市",
            },
        ),
        "【目标进度】莱西市 PM2.5年均浓度 目标进度偏离目标（当前 45，目标 38）",
        "[Target progress] Laixi PM2.5年均浓度: progress off track (now 45, target 38)",
        id="plan-progress",
    ),
    pytest.param(
        RULES.by_id["warning-compliance"],
        ev(
            "warning_compliance",
            "e-lx-01",
            "nox",
            0.05,
            0.2,
            {
                "enterprise": "e-lx-01",
                "source_name": "示例食品加工有限公司",
                "locality_name": "莱西市",
                "level": "orange",
            },
        ),
        "【减排不力】莱西市 示例食品加工有限公司 (e-lx-01) 橙色预警期间 氮氧化物 较预警前基线仅下降 "
        "5.0 %，应不少于 20 %",
        "[Emission cut not met] Laixi 示例食品加工有限公司 (e-lx-01) during the orange warning cut "
        "NOx by only 5.0 % against its pre-warning baseline; at least 20 % required",
        id="warning-compliance",
    ),
]


@pytest.mark.parametrize(("rule", "evaluation", "zh", "en"), CASES)
def test_every_kind_names_the_catalogue_and_rounds_as_the_standards(
    rule: AlertRule, evaluation: Evaluation, zh: str, en: str
) -> None:
    texts = texts_of(rule, evaluation)
    assert texts.zh == zh + WHEN
    assert texts.en == en + WHEN_EN


@pytest.mark.parametrize(
    ("run_length", "value", "rule_id", "zh", "en"),
    [
        (
            12,
            35.0,
            "constant-value",
            "【数据异常】莱西市 示例食品加工有限公司 燃煤锅炉烟囱 (e-lx-01-g1) 二氧化硫 连续 12 个数据"
            "恒定为 35 mg/m³",
            "[Suspect data] Laixi 示例食品加工有限公司 燃煤锅炉烟囱 (e-lx-01-g1) SO2: 12 consecutive "
            "identical values 35 mg/m³",
        ),
        (
            6,
            0.0,
            "zero-value",
            "【数据异常】莱西市 示例食品加工有限公司 燃煤锅炉烟囱 (e-lx-01-g1) 二氧化硫 连续 6 个数据为零",
            "[Suspect data] Laixi 示例食品加工有限公司 燃煤锅炉烟囱 (e-lx-01-g1) SO2: 6 consecutive "
            "zero values",
        ),
    ],
)
def test_constant_and_zero_values(
    run_length: int, value: float, rule_id: str, zh: str, en: str
) -> None:
    sample = ev("sample", "e-lx-01-g1", "so2", value, None, {**OUTLET, "unit": "mg/m3"})
    texts = texts_of(RULES.by_id[rule_id], sample, run_length=run_length)
    assert texts.zh == zh + WHEN
    assert texts.en == en + WHEN_EN


def test_offline_names_the_real_threshold_and_the_last_data_in_beijing_time() -> None:
    rule = RULES.by_id["offline"]
    obs = offline_observation(
        rule,
        "laixi",
        "ws-lx-jiangjiazhuang",
        AT,
        breach=True,
        detail=SECTION,
        silent_minutes=240,
        last_seen=AT - timedelta(minutes=240),
    )
    assert obs.annotations["summary"] == (
        "数据中断：江家庄 (ws-lx-jiangjiazhuang) 超过 240 分钟无数据，最后数据 2026-11-22 05:00"
    )
    assert obs.annotations["expected"] == "240"
    assert obs.annotations["last_seen"] == "2026-11-22T05:00:00+08:00"
    texts = render(transition_of(obs))
    assert texts.zh == (
        "【离线】莱西市 江家庄 (ws-lx-jiangjiazhuang) 超过 240 分钟无数据，最后数据 2026-11-22 05:00"
        + WHEN
    )
    assert texts.en == (
        "[Offline] Laixi 江家庄 (ws-lx-jiangjiazhuang) no data for more than 240 min, last data "
        "2026-11-22 05:00" + WHEN_EN
    )
    back = offline_observation(
        rule, "laixi", "ws-lx-jiangjiazhuang", AT + timedelta(hours=1), breach=False, detail=SECTION
    )
    resumed = render(transition_of(back, AlertState.RESOLVED, Reason.DATA_RESUMED))
    assert (
        resumed.zh
        == "【恢复】莱西市 江家庄 (ws-lx-jiangjiazhuang) 数据恢复上报（2026-11-22 10:00）"
    )
    assert resumed.en == (
        "[Resolved] Laixi 江家庄 (ws-lx-jiangjiazhuang) reporting again "
        "(2026-11-22 10:00 Beijing time)"
    )


def test_offline_without_a_threshold_uses_the_rules() -> None:
    obs = offline_observation(RULES.by_id["offline"], "laixi", "fc-lx", AT, breach=True)
    assert obs.annotations["summary"] == "数据中断：fc-lx 超过 120 分钟无数据"
    assert render(transition_of(obs)).zh == "【离线】莱西市 fc-lx 超过 120 分钟无数据" + WHEN


# ---------------------------------------------------------------- resolved texts


@pytest.mark.parametrize(
    ("rule", "evaluation", "zh"),
    [
        pytest.param(
            RULES.by_id["ambient-exceedance"],
            ev(
                "ambient",
                "aq-lx-01",
                "pm25",
                60.4,
                75.0,
                {**STATION, "period": "24h", "standard": "GB 3095-2012 表1"},
            ),
            "【恢复】莱西市 示例站 莱西市区 (aq-lx-01) PM2.5 24 小时平均 60 µg/m³，未超过二级浓度限值 "
            "75 µg/m³，限值依据 GB 3095-2012 表1",
            id="ambient",
        ),
        pytest.param(
            RULES.by_id["water-class-target"],
            ev("water_class", "ws-lx-jiangjiazhuang", "class", 3.0, 3.0, SECTION),
            "【恢复】莱西市 江家庄 (ws-lx-jiangjiazhuang) 断面水质为Ⅲ类，达到Ⅲ类目标",
            id="water-class",
        ),
        pytest.param(
            RULES.by_id["water-worse-than-v"],
            ev("water_class", "ws-lx-jiangjiazhuang", "class", 5.0, 3.0, SECTION),
            "【恢复】莱西市 江家庄 (ws-lx-jiangjiazhuang) 断面水质为Ⅴ类，已不再为劣Ⅴ类",
            id="water-worse-than-v",
        ),
        pytest.param(
            RULES.by_id["bypass-open"],
            ev(
                "bypass",
                "mon-lx-bypass-01",
                "bypass_open",
                0.0,
                None,
                {"source_name": "示例旁路监控"},
            ),
            "【恢复】莱西市 示例旁路监控 (mon-lx-bypass-01) 旁路已关闭",
            id="bypass",
        ),
        pytest.param(
            RULES.by_id["data-rate"],
            ev("data_rate", "aq-lx-01", "transmission_rate", 0.95, 0.9, STATION),
            "【恢复】莱西市 示例站 莱西市区 (aq-lx-01) 数据传输率 95.0 %，达到 90 %",
            id="data-rate",
        ),
        pytest.param(
            POWER,
            ev("electricity", "mon-lx-power-01", "power_kw", 41.0, 22.5, {"normal_kw": "45"}),
            "【恢复】莱西市 mon-lx-power-01 治污设施用电 41 kW，已恢复运行（正常 45 kW）",
            id="electricity",
        ),
        pytest.param(
            VAPOUR,
            ev("vapour_recovery", "mon-lx-vapour-01", "vapour_recovery", 1.0, 1.0),
            "【恢复】莱西市 mon-lx-vapour-01 油气回收装置恢复正常",
            id="vapour-recovery",
        ),
    ],
)
def test_resolved_texts_say_the_condition_ended(
    rule: AlertRule, evaluation: Evaluation, zh: str
) -> None:
    assert texts_of(rule, evaluation, AlertState.RESOLVED).zh == zh + WHEN


def test_a_value_resolved_by_hand_is_still_described_as_it_was() -> None:
    obs = evaluate(RULES.by_id["bypass-open"], ev("bypass", "b-1", "bypass_open", 1.0))
    assert obs is not None
    texts = render(transition_of(obs, AlertState.RESOLVED, Reason.MANUALLY_RESOLVED))
    assert texts.zh == "【人工关闭】莱西市 b-1 旁路开启" + WHEN


# ---------------------------------------------------------------- empty detail: ids, never a raise


@pytest.mark.parametrize(
    ("rule", "evaluation", "zh"),
    [
        pytest.param(
            RULES.by_id["ambient-exceedance"],
            ev("ambient", "aq-lx-01", "pm25", 156.91666666666666, 75.0),
            "【超标】莱西市 aq-lx-01 PM2.5 浓度 157 µg/m³，超过标准限值 75 µg/m³ 1.09 倍",
            id="ambient",
        ),
        pytest.param(
            RULES.by_id["effluent-exceedance"],
            ev("effluent", "e-lx-wwtp-w1", "cod", 45.33333333333333, 40.0),
            # the unit of COD in wastewater comes from rules.factors
            "【超标】莱西市 e-lx-wwtp-w1 化学需氧量日均值 45.3 mg/L，超过排放标准限值 40 mg/L 0.13 倍",
            id="effluent",
        ),
        pytest.param(
            NOISE,
            ev("noise", "mon-lx-noise-01", "noise_leq", 62.34, 60.0),
            "【噪声超标】莱西市 mon-lx-noise-01 等效声级 62.3 dB(A)，超过限值 60 dB(A)，超标 2.3 dB(A)",
            id="noise",
        ),
        pytest.param(
            RULES.by_id["water-class-target"],
            ev("water_class", "ws-lx-jiangjiazhuang", "class", 4.0, 3.0),
            "【水质不达标】莱西市 ws-lx-jiangjiazhuang 断面水质为Ⅳ类，未达到Ⅲ类目标",
            id="water-class",
        ),
        pytest.param(
            POWER,
            ev("electricity", "mon-lx-power-01", "power_kw", 3.2, 22.5),
            "【治污设施停运或低负荷运行】莱西市 mon-lx-power-01 治污设施用电 3.2 kW，低于 22.5 kW，"
            "生产设施在运行",
            id="electricity",
        ),
        pytest.param(
            RULES.by_id["data-rate"],
            ev("data_rate", "aq-lx-01", "transmission_rate", 0.75, 0.9),
            "【数据传输有效率低】莱西市 aq-lx-01 数据传输率 75.0 %，低于 90 %",
            id="data-rate",
        ),
        pytest.param(
            RULES.by_id["constant-value"],
            ev("sample", "e-lx-01-g1", "so2", 35.0),
            "【数据异常】莱西市 e-lx-01-g1 二氧化硫 连续 12 个数据恒定为 35",
            id="constant-value",
        ),
    ],
)
def test_without_catalogue_detail_the_ids_stand_in(
    rule: AlertRule, evaluation: Evaluation, zh: str
) -> None:
    assert texts_of(rule, evaluation, run_length=12).zh == zh + WHEN


@pytest.mark.parametrize(
    ("rule", "kind", "factor", "value", "limit"),
    [
        (RULES.by_id["ambient-exceedance"], "ambient", "pm25", 90.0, 75.0),
        (RULES.by_id["water-class-target"], "water_class", "class", 4.0, 3.0),
        (RULES.by_id["water-worse-than-v"], "water_class", "class", 6.0, 6.0),
        (RULES.by_id["permit-exceedance"], "permit", "nox", 132.0, 100.0),
        (RULES.by_id["effluent-exceedance"], "effluent", "cod", 50.0, 40.0),
        (RULES.by_id["dustfall"], "dustfall", "dustfall", 9.0, None),
        (RULES.by_id["bypass-open"], "bypass", "bypass_open", 1.0, None),
        (RULES.by_id["constant-value"], "sample", "so2", 3.0, None),
        (RULES.by_id["zero-value"], "sample", "so2", 0.0, None),
        (RULES.by_id["data-rate"], "data_rate", "valid_rate", 0.5, None),
        (RULES.by_id["warning-compliance"], "warning_compliance", "so2", 0.01, 0.1),
        (NOISE, "noise", "noise_leq", 70.0, 60.0),
        (DUST, "dust", "dust", 300.0, 80.0),
        (VAPOUR, "vapour_recovery", "vapour_recovery", 2.0, 1.0),
        (POWER, "electricity", "power_kw", 1.0, 10.0),
    ],
)
def test_every_kind_without_detail_renders_and_names_the_source(
    rule: AlertRule, kind: str, factor: str, value: float, limit: float | None
) -> None:
    obs = evaluate(rule, ev(kind, "src-1", factor, value, limit), run_length=20)
    assert obs is not None
    summary = obs.annotations["summary"]
    assert "src-1" in summary
    assert "src-1" in obs.annotations["summary_en"]
    texts = render(transition_of(obs))
    assert not texts.zh.startswith("【告警】")  # the kind's own template, not the fallback
    assert "src-1" in texts.zh
    assert "src-1" in texts.en


def test_the_summary_is_the_body_after_the_rule_name_and_annotations_carry_template_fields() -> (
    None
):
    evaluation = ev(
        "ambient",
        "aq-lx-01",
        "pm25",
        156.91666666666666,
        75.0,
        {**STATION, "period": "24h", "standard": "GB 3095-2012 表1"},
    )
    obs = evaluate(RULES.by_id["ambient-exceedance"], evaluation)
    assert obs is not None
    assert dict(obs.annotations) == {
        "summary": "空气质量超标：示例站 莱西市区 (aq-lx-01) PM2.5 24 小时平均 157 µg/m³，"
        "超过二级浓度限值 75 µg/m³ 1.09 倍，限值依据 GB 3095-2012 表1",
        "summary_en": "Ambient concentration above the GB 3095 limit: 示例站 莱西市区 (aq-lx-01) "
        "PM2.5 24-hour mean 157 µg/m³ exceeds the grade II limit 75 µg/m³ by 1.09×, "
        "limit per GB 3095-2012 表1",
        "rule_source": RULES.by_id["ambient-exceedance"].source,
        "source_name": "示例站 莱西市区",
        "locality_name": "莱西市",
        "standard": "GB 3095-2012 表1",
        "unit": "ug/m3",
        "basis": "24 小时平均",
        "basis_en": "24-hour mean",
        "limit_name": "二级浓度限值",
        "limit_name_en": "the grade II limit",
    }
    water = evaluate(
        RULES.by_id["water-class-target"],
        ev("water_class", "ws-lx-jiangjiazhuang", "class", 4.0, 3.0, SECTION),
    )
    assert water is not None
    assert water.annotations["observed_class"] == "Ⅳ"
    assert water.annotations["target_class"] == "Ⅲ"
    rate = evaluate(RULES.by_id["data-rate"], ev("data_rate", "aq-lx-01", "valid_rate", 0.75, 0.9))
    assert rate is not None
    assert (rate.annotations["rate"], rate.annotations["threshold"]) == ("75", "90")


# ---------------------------------------------------------------- numbers


def test_gbt8170_rounding_and_significant_digits() -> None:
    # round half to even on the discarded digit (GB/T 8170), not half up
    assert fmt_fixed(2.5, 0) == "2"
    assert fmt_fixed(3.5, 0) == "4"
    assert fmt_fixed(0.185, 2) == "0.18"
    assert fmt_fixed(0.335, 2) == "0.34"
    assert fmt_fixed(-0.001, 2) == "0.00"
    # µg/m³: integers; as measured: three significant digits, trailing zeros dropped
    assert fmt_value(156.91666666666666, 0) == "157"
    assert fmt_value(2.6666666666666665, None) == "2.67"
    assert fmt_value(0.000123456, None) == "0.000123"
    assert fmt_value(35.0, None) == "35"
    # a value above its limit is never shown equal to it
    assert fmt_value_against(75.3, 75.0, 0) == "75.3"
    assert fmt_value_against(1.5049, 1.5, None) == "1.505"
    assert fmt_value_against(74.6, 75.0, 0) == "75"


def test_describe_never_raises_on_nonsense() -> None:
    # a value that is no number: the body cannot be written, the parts that are known are named
    zh, en = describe({"rule_kind": "permit_exceedance", "source": "x"}, {"value": "nan"})
    assert (zh, en) == ("x 小时均值", "x hourly mean")
    texts = render_alert(
        "firing",
        {"rule_kind": "water_class", "rule": "water-class-target", "locality": "laixi"},
        {},
        AT,
    )
    assert texts.zh == "【告警】莱西市 water-class-target" + WHEN
