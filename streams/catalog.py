"""The catalogue as the stream worker sees it: source contexts, hot reload.

``CatalogView`` holds the current :class:`rules.catalog.Catalog` and derives, per source id, the
:class:`rules.evaluate.SourceContext` the pure evaluation step needs (area grade, lake or river,
target class, permit limits, reference O2 …). ``maybe_reload()`` re-reads the YAML directory when
a file's modification time changed; a catalogue with errors is **not** applied (the running one
stays) and every problem is logged. A successful reload replaces the catalogue atomically, is
logged with its fingerprint and counted in ``reloads``: the notify stage rebuilds its route tree
(:func:`receivers_from_catalog`) and the delivery side its channels (the catalogue's ``notify:``
routes, ``streams.deliveries.Deliveries.refresh_channels``) when that counter moved on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.locality import LocalityContext
from alerts.pipeline import OPERATOR_RECEIVER, PIPELINE_LOCALITY
from alerts.routing import Receiver, Role
from rules.catalog import ALERT_RULES_FILES
from rules.emission import Basis, LocalLimit, PermitLimit
from rules.errors import ConfigError, RulesError
from rules.evaluate import SourceContext
from rules.plausibility import Expected, expected_of
from rules.water_events import downstream_of, upstream_of

log = logging.getLogger(__name__)

DEFAULT_CONTEXT = SourceContext()

#: Automatic surface-water stations sample every 4 h (6 values a day) — standards.md §3.3 [1]
#: (HJ 915-2017's own frequency clause not read: an operator default).
WATER_INTERVAL_S = 4 * 3600
#: Dustfall (降尘) gauges report once a day here (the plans judge the monthly mean,
#: 000_d6d679181568297b.txt#L171); envwatch default, operator-configurable.
DUSTFALL_INTERVAL_S = 86400


def monitor_interval_s(monitor: Any) -> int | None:
    """The reporting interval of another monitor when it is not hourly."""
    return DUSTFALL_INTERVAL_S if str(monitor.kind.value) == "dustfall" else None


def _mtimes(directory: Path) -> dict[str, float]:
    """The catalogue files' modification times (the alert rules have their own reload)."""
    return {
        str(p): p.stat().st_mtime
        for p in sorted(directory.glob("*.y*ml"))
        if p.name not in ALERT_RULES_FILES
    }


def context_of(catalog: Any, source_id: str) -> SourceContext | None:
    """The evaluation context of a source, or None when the catalogue does not know it."""
    item = catalog.source(source_id)
    if item is None:
        return None
    cls = type(item).__name__
    if cls == "AirStation":
        return SourceContext(area_grade=1 if str(item.area_grade.value) in {"I", "1"} else 2)
    if cls == "WaterSection":
        return SourceContext(
            lake=str(item.body.value) != "river",
            target_class=item.target_class,
            expected_interval_s=WATER_INTERVAL_S,
        )
    if cls == "Outlet":
        wastewater = str(item.type.value) == "wastewater"
        limits: dict[str, PermitLimit] = {}
        for lim in item.limits:
            if lim.limit is None:
                continue
            basis = Basis.DAY if lim.basis == "day" else Basis.HOUR
            limits[lim.factor] = PermitLimit(
                outlet=item.id,
                factor=lim.factor,
                upper=lim.limit,
                basis=basis,
                source=lim.source or "",
            )
        ref = None if wastewater else catalog.reference_o2(item)
        local = tuple(
            LocalLimit(factor=lim.factor, upper=float(lim.limit), source=lim.source or "")
            for lim in item.limits
            if wastewater and lim.limit is not None and lim.basis == "day"
        )
        return SourceContext(
            limits=limits,
            reference_o2=ref,
            wastewater=wastewater,
            effluent_class=item.effluent_class,
            plant_built=item.plant_built,
            local_limits=local if item.effluent_class is not None else (),
        )
    if cls == "Monitor":
        limits = {}
        for lim in item.limits:
            if lim.limit is None:
                continue
            limits[lim.factor] = PermitLimit(
                outlet=item.id,
                factor=lim.factor,
                upper=lim.limit,
                basis=Basis.HOUR,
                source=lim.source or "",
            )
        zone = getattr(item, "zone_class", None)
        return SourceContext(
            limits=limits,
            expected_interval_s=monitor_interval_s(item),
            monitor_kind=str(item.kind.value),
            zone_class=None if zone is None else str(getattr(zone, "value", zone)),
        )
    return DEFAULT_CONTEXT


@dataclass
class CatalogView:
    directory: Path | None
    catalog: Any = None
    _mtimes: dict[str, float] = field(default_factory=dict)
    _contexts: dict[str, SourceContext | None] = field(default_factory=dict)
    _expected: dict[str, Expected | None] = field(default_factory=dict)
    reloads: int = 0

    def __post_init__(self) -> None:
        if self.directory is not None:
            self._load(initial=True)

    def _load(self, *, initial: bool) -> bool:
        from rules.catalog import load_catalog

        assert self.directory is not None
        mtimes = _mtimes(self.directory)
        try:
            catalog = load_catalog(self.directory)
        except ConfigError as exc:
            if initial:
                raise
            log.error("catalogue reload rejected, keeping the running one:\n%s", exc)
            self._mtimes = mtimes  # do not retry until the files change again
            return False
        except (OSError, RulesError) as exc:
            if initial:
                raise
            log.error("catalogue reload failed, keeping the running one: %s", exc)
            self._mtimes = mtimes
            return False
        self.catalog = catalog
        self._contexts = {}
        self._expected = {}
        self._mtimes = mtimes
        if not initial:
            self.reloads += 1
        log.info(
            "catalogue %s from %s: %d stations, %d sections, %d enterprises, %d monitors (%s)",
            "loaded" if initial else "reloaded",
            self.directory,
            len(catalog.stations),
            len(catalog.sections),
            len(catalog.enterprises),
            len(catalog.monitors),
            getattr(catalog, "fingerprint", "")[:12],
        )
        return True

    def maybe_reload(self) -> bool:
        """Reload when a YAML file changed, appeared or disappeared. True when a new one applies."""
        if self.directory is None:
            return False
        if _mtimes(self.directory) == self._mtimes:
            return False
        return self._load(initial=False)

    def knows_locality(self, locality: str) -> bool:
        if self.catalog is None:
            return True
        return any(loc.id == locality for loc in self.catalog.localities)

    def context(self, source_id: str) -> SourceContext | None:
        """None: unknown source (when a catalogue is configured)."""
        if self.catalog is None:
            return DEFAULT_CONTEXT
        try:
            return self._contexts[source_id]
        except KeyError:
            ctx = context_of(self.catalog, source_id)
            self._contexts[source_id] = ctx
            return ctx

    def expected(self, source_id: str) -> Expected | None:
        """What the catalogue says the source is (rules.plausibility); None: unknown source or
        no catalogue configured (check ``catalog``)."""
        if self.catalog is None:
            return None
        try:
            return self._expected[source_id]
        except KeyError:
            exp = expected_of(self.catalog, source_id)
            self._expected[source_id] = exp
            return exp


# --------------------------------------------------------------------------- locality contexts


def locality_context(view: CatalogView, locality: str) -> LocalityContext:
    """The catalogue's view of one locality (rule set, enterprises, routing labels)."""
    cat = view.catalog
    if cat is None:
        return LocalityContext(locality=locality, rule_set=_default_rule_set(None, None))
    try:
        loc = cat.locality(locality)
    except KeyError:
        return LocalityContext(locality=locality, rule_set=_default_rule_set(cat, None))
    detail: dict[str, dict[str, str]] = {}
    enterprises = []
    names = {"locality_name": str(loc.name)}
    for ent in cat.enterprises_of(locality):
        enterprises.append(
            {
                "id": ent.id,
                "name": ent.name,
                "locality": ent.locality,
                "performance_grade": ent.grade.value if ent.grade is not None else "",
                "measures": {
                    lvl: tuple(m.text for m in getattr(ent.measures, lvl))
                    for lvl in ("yellow", "orange", "red")
                },
                "measure_reductions": {
                    lvl: tuple(dict(m.reduction_pct) for m in getattr(ent.measures, lvl))
                    for lvl in ("yellow", "orange", "red")
                },
                "required_reductions": {
                    lvl: required_reductions(getattr(ent.measures, lvl))
                    for lvl in ("yellow", "orange", "red")
                },
            }
        )
        for out in ent.outlets:
            # online monitors report at least hourly (HJ 212 2061 hourly data)
            detail[out.id] = {
                **names,
                "enterprise": ent.id,
                "enterprise_name": ent.name,
                "outlet": out.id,
                "source_name": ent.name,
                "outlet_name": out.name,
                "interval_minutes": "60",
            }
    enterprise_names = {ent.id: ent.name for ent in cat.enterprises}
    for st in cat.stations_of(locality):
        detail[st.id] = {
            **names,
            "station": st.id,
            "source_name": st.name,
            "interval_minutes": "60",  # hourly air data (HJ 633 real-time report)
            "area_grade": str(st.area_grade.value),
        }
    sections = cat.sections_of(locality)
    for sec in sections:
        detail[sec.id] = {
            **names,
            "section": sec.id,
            "source_name": sec.name,
            "interval_minutes": str(WATER_INTERVAL_S // 60),
            **_section_links(sec, sections),
        }
    pairs: dict[str, tuple[str, float, float]] = {}
    production: dict[str, list[str]] = {}
    power = [m for m in cat.monitors_of(locality) if str(m.kind.value) == "electricity"]
    for mon in cat.monitors_of(locality):
        d = {**names, "source_name": mon.name}
        if mon.enterprise:
            d["enterprise"] = mon.enterprise
            d["enterprise_name"] = enterprise_names.get(mon.enterprise, mon.enterprise)
        zone = getattr(mon, "zone_class", None)
        if zone is not None:
            d["zone_class"] = str(getattr(zone, "value", zone))
        interval = monitor_interval_s(mon)
        if interval is not None:
            d["interval_minutes"] = str(interval // 60)
        detail[mon.id] = d
        if mon in power and _role(mon) == "treatment":
            # the enterprise's production-line monitor tells whether its treatment must run
            prod = next(
                (m for m in power if m.enterprise == mon.enterprise and _role(m) == "production"),
                None,
            )
            normal = getattr(mon, "normal_kw", None)
            running = getattr(prod, "running_kw", None) if prod is not None else None
            if prod is not None and normal and running:
                pairs[mon.id] = (prod.id, float(normal), float(running))
                production.setdefault(prod.id, []).append(mon.id)
    return LocalityContext(
        locality=locality,
        rule_set=_default_rule_set(cat, loc.warning_rule_set),
        enterprises=enterprises,
        source_detail=detail,
        stations=frozenset(s.id for s in cat.stations_of(locality)),
        power_pairs=pairs,
        power_production={k: tuple(v) for k, v in production.items()},
        plan=loc,
        sections=tuple(cat.sections_of(locality)),
    )


def _section_links(sec: Any, sections: Sequence[Any]) -> dict[str, str]:
    """A section's water-emergency detail (alerts/water.py): its lake flag, its upstream
    neighbours, whether it is a drinking-water source, and the sections — among them the
    drinking-water sources — downstream of it, followed transitively along the catalogue's
    links (``rules.water_events``; sections of the same locality)."""
    links = [(s.id, s.upstream, s.downstream) for s in sections]
    by_id = {s.id: s for s in sections}
    down = [by_id[d] for d in downstream_of(links).get(sec.id, ()) if d in by_id]
    out: dict[str, str] = {}
    if str(sec.body.value) != "river":
        out["lake"] = "1"
    ups = upstream_of(links).get(sec.id, ())
    if ups:
        out["upstream"] = ",".join(ups)
    if sec.drinking_water_source:
        out["drinking_water_source"] = "1"
    if down:
        out["at_risk"] = "、".join(f"{d.name} ({d.id})" for d in down)
    drinking = [d for d in down if d.drinking_water_source]
    if drinking:
        out["drinking_at_risk"] = "、".join(f"{d.name} ({d.id})" for d in drinking)
    return out


def required_reductions(measures: Any) -> dict[str, float]:
    """An enterprise's required cut per pollutant at one level (0–1): the sum of its measures'
    ``reduction_pct`` for the pollutant, at most 100 % — the measures of one list act on
    different units, so their cuts add up (envwatch's reading of the 一厂一策 lists [MEM])."""
    total: dict[str, float] = {}
    for m in measures:
        for pollutant, pct in m.reduction_pct.items():
            total[pollutant] = total.get(pollutant, 0.0) + float(pct)
    return {p: min(pct, 100.0) / 100.0 for p, pct in sorted(total.items())}


def _role(monitor: Any) -> str:
    role = getattr(monitor, "role", None)
    return "" if role is None else str(getattr(role, "value", role))


def _default_rule_set(cat: Any, wanted: str | None) -> Any:
    from rules.warnings import WarningRuleSet, default_rule_set

    sets: dict[str, WarningRuleSet] = {}
    if cat is not None:
        for k, v in cat.warning_rule_sets.items():
            sets[k] = v if isinstance(v, WarningRuleSet) else WarningRuleSet.model_validate(v)
    if not sets:
        from rules.warnings import load_rule_sets

        sets = _shipped_rule_sets(load_rule_sets)
    if wanted is not None and wanted in sets:
        return sets[wanted]
    return default_rule_set(sets)


def _shipped_rule_sets(load: Any) -> Any:
    import yaml

    from streams.embedded import REPO

    data = yaml.safe_load(
        (REPO / "deploy" / "config" / "warnings.yaml").read_text(encoding="utf-8")
    )
    return load(data)


def receivers_from_catalog(catalog: Any) -> list[Receiver]:
    """Who the route tree routes to: duty officers and emergency responders per locality, one
    receiver per enterprise, the operator. Escalation receivers (``chief-<locality>`` …) are not
    in the tree — the notify stage names them from the rule's chain. The channels of all of them
    come from ``Catalog.routes()`` (alerts/notify/routes.py)."""
    if catalog is None:
        return []
    out: list[Receiver] = []
    for loc in catalog.localities:
        out.append(Receiver(f"duty-{loc.id}", Role.DUTY, loc.id))
        out.append(Receiver(f"emergency-{loc.id}", Role.EMERGENCY, loc.id))
    for ent in catalog.enterprises:
        out.append(
            Receiver(f"enterprise-{ent.id}", Role.ENTERPRISE, ent.locality, enterprise=ent.id)
        )
    # envwatch's own alerts (store, receivers: alerts/pipeline.py) go to the operator only
    out.append(Receiver(OPERATOR_RECEIVER, Role.DUTY, PIPELINE_LOCALITY))
    return out
