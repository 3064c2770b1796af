"""Operator alerts about envwatch itself (pure): a pipeline component that cannot do its work.

The alert engine judges the monitored sources; this module lets it judge envwatch's own parts the
same way, so a store that cannot write or a receiver that refuses notifications reaches a person
through the usual lifecycle, outbox and channels (docs/alerts.md §10).

* A **component** states its health as a ``pipeline_health`` point (:func:`health_point`): tags
  ``kind=pipeline``, ``locality=pipeline`` (the pseudo-locality :data:`PIPELINE_LOCALITY`),
  ``source`` (the component, e.g. ``store@host-1`` or ``receiver:ent-a``) and ``condition`` (what
  is checked: ``write``, ``rejected``, ``delivery`` …); fields ``problem`` (1 while the condition
  holds, 0 when it does not), ``reason`` (the component's own words: the endpoint's status and
  message) and ``count`` (lines, notifications … held back because of it).
* The point reaches the locality stage on ``aggregates`` keyed ``pipeline``
  (``streams.health.report``); :class:`alerts.locality.LocalityState` turns it into
  ``Evaluation(kind="pipeline", source=<component>, factor=<condition>, value=problem, limit=0)``,
  which the built-in rule ``pipeline`` (kind ``pipeline``) judges: the alert fires at the first
  report with the problem and resolves at the first report without it. One alert per component
  and condition (its fingerprint is rule, source, factor = condition, locality).
* Its locality is ``pipeline``, so the duty officers of the five localities never get it; the
  catalogue's ``operator`` receiver (:data:`OPERATOR_RECEIVER`, a duty receiver of the
  pseudo-locality, ``streams.catalog.receivers_from_catalog``) does.

A component reports when its state changes (and may repeat itself: an unchanged report changes
nothing). Reports are stamped with the reporting process's clock: unlike the data's alerts, these
are about the pipeline now, not about an event time in the data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from rules.evaluate import Point

#: The pseudo-locality of the pipeline's own alerts (no catalogue locality has this id).
PIPELINE_LOCALITY: Final = "pipeline"
#: The receiver that gets them: a duty receiver of :data:`PIPELINE_LOCALITY`.
OPERATOR_RECEIVER: Final = "operator"
#: Measurement of the health points (streams/schema.py, docs/influx-schema.md).
MEASUREMENT: Final = "pipeline_health"
#: Evaluation kind and rule kind of the alerts (alerts/rules.py).
KIND: Final = "pipeline"

#: ``store``, ``store@host-1``, ``receiver:ent-a``, ``receiver:ent-a@host-1`` …
_COMPONENT = re.compile(r"^[a-z][a-z0-9_-]*(:[A-Za-z0-9_.-]+)?(@[A-Za-z0-9_.-]+)?$")
_CONDITION = re.compile(r"^[a-z][a-z0-9_]*$")

#: The largest reason a point carries (an endpoint may answer with a page of HTML).
MAX_REASON: Final = 300

#: Display names of component kinds (the part before ``:`` / ``@``): (zh, en).
COMPONENT_NAMES: Final[dict[str, tuple[str, str]]] = {
    "store": ("数据入库", "store"),
    "receiver": ("通知接收方", "receiver"),
}

#: What a condition means, firing and cleared, per component kind: (zh, en) each. The texts
#: (alerts/templates.py) add the component, the count and the reason. Unknown conditions get a
#: generic text with the reason.
CONDITIONS: Final[dict[tuple[str, str], tuple[tuple[str, str], tuple[str, str]]]] = {
    ("store", "write"): (
        (
            "无法写入时序数据库，数据暂存于本地 spool 待补写",
            "cannot write to the time-series store; data is spooled for a later write",
        ),
        ("恢复写入时序数据库", "writes to the time-series store again"),
    ),
    ("store", "rejected"): (
        (
            "有数据被时序数据库拒收，保存在 spool/rejected/，待处理后用 envwatch sink replay 补写",
            "holds lines the time-series store refused, kept in spool/rejected/ for envwatch sink replay",
        ),
        ("被拒收的数据已全部处理", "no refused lines left"),
    ),
    ("receiver", "delivery"): (
        (
            "拒收通知，通知已保留待重发（envwatch notify replay）",
            "refuses notifications; they are kept for envwatch notify replay",
        ),
        ("恢复接收通知", "accepts notifications again"),
    ),
}


def component_kind(component: str) -> str:
    """``receiver:ent-a@h`` → ``receiver``."""
    return component.split("@", 1)[0].split(":", 1)[0]


def component_id(component: str, instance: str | None = None) -> str:
    """The ``source`` of a component's alerts: ``store`` or, per process, ``store@host-1``."""
    return component if not instance else f"{component}@{_safe_instance(instance)}"


def _safe_instance(instance: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", instance)[:64] or "unknown"


def health_point(
    component: str,
    condition: str,
    *,
    problem: bool,
    at: datetime,
    reason: str = "",
    count: int = 0,
) -> Point:
    """The ``pipeline_health`` point of one component's condition at ``at`` (timezone-aware).

    ``component``: ``store``, ``store@host-1``, ``receiver:<name>`` …; ``condition``: a lower-case
    word (``write``, ``rejected``, ``delivery``); ``reason``: why (cut to :data:`MAX_REASON`
    characters; never put a secret in it); ``count``: what is held back (lines, notifications).
    """
    if not _COMPONENT.match(component):
        raise ValueError(f"pipeline component {component!r}: expected kind[:name][@instance]")
    if not _CONDITION.match(condition):
        raise ValueError(f"pipeline condition {condition!r}: expected a lower-case word")
    if at.tzinfo is None:
        raise ValueError("pipeline health: timestamp without timezone")
    if count < 0:
        raise ValueError("pipeline health: negative count")
    tags = {
        "kind": KIND,
        "locality": PIPELINE_LOCALITY,
        "source": component,
        "condition": condition,
    }
    fields: dict[str, float | int | str | bool] = {
        "problem": 1 if problem else 0,
        "count": int(count),
        "reason": " ".join(reason.split())[:MAX_REASON],
    }
    return Point(MEASUREMENT, tags, fields, at.astimezone(UTC))


def health_detail(component: str, condition: str, fields: Mapping[str, object]) -> dict[str, str]:
    """The evaluation ``detail`` (and so the alert's annotations) of a health point's fields:
    ``component``, ``condition``, ``reason``, ``count``, and the locality's display names."""
    count = fields.get("count")
    reason = fields.get("reason")
    return {
        "component": component,
        "condition": condition,
        "reason": reason if isinstance(reason, str) else "",
        "count": str(int(count)) if isinstance(count, (int, float)) and count >= 0 else "0",
        "locality_name": "envwatch 运行",
        "locality_name_en": "envwatch operations",
    }
