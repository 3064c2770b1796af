"""Who is told what (pure): a small route tree by label matchers, and notification grouping.

Three kinds of receiver (architecture.md §1):

* a duty officer (值班员) gets everything — alerts and warnings — of their locality;
* an enterprise (排污单位) gets only alerts whose ``enterprise`` label equals its own id;
* emergency responders (应急) get the heavy-pollution warning triggers of their locality and
  its water emergencies (alerts of category ``water_emergency``: sudden change at a section, a
  section much worse than upstream) — never an enterprise's own alerts otherwise.

**Isolation is by construction.** A :class:`Route` is a conjunction of matchers: a child route is
only tried when its parent matched and every matcher must hold, so adding matchers or nesting can
only *narrow* a route. :class:`RouteTree` refuses any route that delivers to an enterprise receiver
unless that very route carries the equality matcher ``enterprise == <its id>``; hence no
configuration — catalogue-generated or hand-written — can let enterprise A's receiver match an
alert of enterprise B (or one without an ``enterprise`` label). :func:`tree_from_receivers`
generates the standard tree from the catalogue's receivers.

:func:`group_key` names a receiver's group by its ``group_by`` labels; :class:`GroupTiming` holds
Alertmanager's timers (peers.md §1.1). The notify stage groups with ``alerts/grouping.py`` (event
time, checkpointed groups, escalation chains; docs/routing.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum

from alerts.notification import NotificationKind

ENTERPRISE_LABEL = "enterprise"
LOCALITY_LABEL = "locality"
CATEGORY_LABEL = "category"
#: The category of water emergencies (alerts.rules.WATER_EMERGENCY; routing does not import
#: the rules): emergency responders receive these alerts.
WATER_EMERGENCY = "water_emergency"


class RoutingError(ValueError):
    """An invalid route or receiver; ``field`` names what is wrong and ``reason`` why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Op(StrEnum):
    """Alertmanager's matcher operators."""

    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


@dataclass(frozen=True, slots=True)
class Matcher:
    """``name op value``; a missing label matches as the empty string (as in Alertmanager)."""

    name: str
    op: Op
    value: str
    _pattern: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name:
            raise RoutingError("matcher.name", "must not be empty")
        if self.op in (Op.RE, Op.NRE):
            try:
                compiled = re.compile(self.value)
            except re.error as exc:
                raise RoutingError(f"matcher {self.name}", f"bad regex: {exc}") from exc
            object.__setattr__(self, "_pattern", compiled)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op is Op.EQ:
            return actual == self.value
        if self.op is Op.NE:
            return actual != self.value
        assert self._pattern is not None
        full = self._pattern.fullmatch(actual) is not None  # anchored, as in Alertmanager
        return full if self.op is Op.RE else not full


class Role(StrEnum):
    """The kinds of receiver."""

    DUTY = "duty"  # 值班员
    ENTERPRISE = "enterprise"  # 排污单位
    EMERGENCY = "emergency"  # 应急
    #: a receiver of escalation chains only (section chief 科长, bureau lead 局领导 …): never
    #: matched by the route tree, addressed by the notify stage for ``escalated`` transitions
    #: (alerts/grouping.py, docs/routing.md §3)
    ESCALATION = "escalation"


@dataclass(frozen=True, slots=True)
class Receiver:
    """A named receiver from the catalogue. ``enterprise`` is required for, and only for, enterprises."""

    name: str
    role: Role
    locality: str
    enterprise: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise RoutingError("receiver.name", "must not be empty")
        if not self.locality:
            raise RoutingError(f"receiver {self.name}.locality", "must not be empty")
        if self.role is Role.ENTERPRISE and not self.enterprise:
            raise RoutingError(f"receiver {self.name}.enterprise", "an enterprise needs its id")
        if self.role is not Role.ENTERPRISE and self.enterprise is not None:
            raise RoutingError(f"receiver {self.name}.enterprise", "only enterprises have one")


@dataclass(frozen=True, slots=True)
class GroupTiming:
    """Alertmanager's grouping timers; the defaults are Alertmanager's (peers.md §1.1) —
    configuration defaults an operator can override, not standards."""

    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)

    def __post_init__(self) -> None:
        for name in ("group_wait", "group_interval", "repeat_interval"):
            if getattr(self, name) < timedelta(0):
                raise RoutingError(name, "must not be negative")


@dataclass(frozen=True, slots=True)
class Route:
    """A node of the route tree.

    ``kinds``: which notification kinds the route takes. ``cont`` (Alertmanager's ``continue``):
    after this route matched, keep trying its later siblings.
    """

    matchers: tuple[Matcher, ...] = ()
    receiver: Receiver | None = None
    kinds: frozenset[NotificationKind] = frozenset(NotificationKind)
    group_by: tuple[str, ...] = ()
    timing: GroupTiming = GroupTiming()
    cont: bool = False
    routes: tuple[Route, ...] = ()

    def matches(self, labels: Mapping[str, str], kind: NotificationKind) -> bool:
        return kind in self.kinds and all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True, slots=True)
class Match:
    """A receiver selected for a notification, with the route's grouping."""

    receiver: Receiver
    group_by: tuple[str, ...]
    timing: GroupTiming


def _check_isolation(route: Route, path: str) -> None:
    receiver = route.receiver
    if receiver is not None and receiver.role is Role.ENTERPRISE:
        needed = Matcher(ENTERPRISE_LABEL, Op.EQ, receiver.enterprise or "")
        if needed not in route.matchers:
            raise RoutingError(
                path,
                f"a route to enterprise receiver {receiver.name!r} must itself match "
                f"{ENTERPRISE_LABEL}={receiver.enterprise!r}",
            )
    for i, child in enumerate(route.routes):
        _check_isolation(child, f"{path}.routes[{i}]")


class RouteTree:
    """The routing tree; validated on construction (see the module docstring on isolation)."""

    __slots__ = ("root",)

    def __init__(self, root: Route) -> None:
        _check_isolation(root, "route")
        self.root = root

    def match(self, labels: Mapping[str, str], kind: NotificationKind) -> list[Match]:
        """Every receiver the notification goes to, depth-first, without duplicates."""
        out: list[Match] = []
        seen: set[str] = set()
        self._walk(self.root, labels, kind, out, seen)
        return out

    def _walk(
        self,
        route: Route,
        labels: Mapping[str, str],
        kind: NotificationKind,
        out: list[Match],
        seen: set[str],
    ) -> bool:
        if not route.matches(labels, kind):
            return False
        if route.receiver is not None and route.receiver.name not in seen:
            seen.add(route.receiver.name)
            out.append(Match(route.receiver, route.group_by, route.timing))
        for child in route.routes:
            if self._walk(child, labels, kind, out, seen) and not child.cont:
                break
        return True

    def receivers(self, labels: Mapping[str, str], kind: NotificationKind) -> list[str]:
        """Names of the receivers, in match order."""
        return [m.receiver.name for m in self.match(labels, kind)]


def route_for(receiver: Receiver, timing: GroupTiming = GroupTiming()) -> Route:
    """The standard route of one catalogue receiver (see the module docstring)."""
    if receiver.role is Role.ENTERPRISE:
        return Route(
            matchers=(Matcher(ENTERPRISE_LABEL, Op.EQ, receiver.enterprise or ""),),
            receiver=receiver,
            # its alerts and its own duties under a warning, never the locality's warnings
            kinds=frozenset({NotificationKind.ALERT, NotificationKind.DUTY}),
            group_by=(ENTERPRISE_LABEL, "rule"),
            timing=timing,
            cont=True,
        )
    locality = (Matcher(LOCALITY_LABEL, Op.EQ, receiver.locality),)
    if receiver.role is Role.ESCALATION:
        # takes no kind: only an escalation, addressed by name, reaches it
        return Route(matchers=locality, receiver=receiver, kinds=frozenset(), cont=True)
    if receiver.role is Role.EMERGENCY:
        # A warning trigger or a water emergency is not batched: emergency teams must hear at once.
        at_once = replace(timing, group_wait=timedelta(0))
        return Route(
            matchers=locality,
            cont=True,
            routes=(
                Route(
                    receiver=receiver,
                    kinds=frozenset({NotificationKind.WARNING}),
                    group_by=(LOCALITY_LABEL,),
                    timing=at_once,
                    cont=True,
                ),
                # water emergencies (sudden change, much worse than upstream: alerts/rules.py
                # category water_emergency), with the sections and drinking-water sources at risk
                Route(
                    matchers=(Matcher(CATEGORY_LABEL, Op.EQ, WATER_EMERGENCY),),
                    receiver=receiver,
                    kinds=frozenset({NotificationKind.ALERT}),
                    group_by=(LOCALITY_LABEL, "rule"),
                    timing=at_once,
                    cont=True,
                ),
            ),
        )
    return Route(
        matchers=locality,
        receiver=receiver,
        # alerts and warnings of the locality; an enterprise's duties are its own (the warning
        # transition the duty officer gets names every enterprise's measures)
        kinds=frozenset({NotificationKind.ALERT, NotificationKind.WARNING}),
        group_by=(LOCALITY_LABEL, "rule"),
        timing=timing,
        cont=True,
    )


def tree_from_receivers(
    receivers: Iterable[Receiver], timing: GroupTiming = GroupTiming()
) -> RouteTree:
    """The route tree generated from the catalogue's receivers (names must be unique)."""
    routes: list[Route] = []
    names: set[str] = set()
    for receiver in receivers:
        if receiver.name in names:
            raise RoutingError(f"receiver {receiver.name}", "duplicate receiver name")
        names.add(receiver.name)
        routes.append(route_for(receiver, timing))
    return RouteTree(Route(routes=tuple(routes)))


# ---------------------------------------------------------------- grouping


def group_key(receiver: str, group_by: Iterable[str], labels: Mapping[str, str]) -> str:
    """Alertmanager-style group key: ``receiver:{a="x",b="y"}`` over the group_by labels."""
    inner = ",".join(f'{name}="{labels.get(name, "")}"' for name in sorted(set(group_by)))
    return f"{receiver}:{{{inner}}}"
