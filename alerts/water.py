"""Water emergencies in the locality stage (pure): sudden changes and upstream comparisons.

* **Sudden change** — the evaluate stage judges every sample of a section against the section's
  own recent baseline (``rules.water_events``) and writes a ``water_change`` point with, per
  judged factor, the value, the baseline, the jump threshold and the verdict (in a jump or not).
  :func:`change_evaluations` turns it into one ``water_change`` evaluation per factor — an
  explicit observation on every sample, so an alert opened by a jump is closed by the sample back
  near the baseline.
* **Upstream comparison** — :class:`UpstreamWatch` keeps each section's recent samples (the
  values of its readings, :data:`KEEP_HOURS`) and compares a section with each of its upstream
  neighbours (``rules.water_events.upstream_of``; the catalogue's links, ``detail["upstream"]``)
  at the labels both reported (automatic stations report on the same 4-h grid, standards.md
  §3.3): ``rules.water.classify`` of both samples (on the river TP column unless both are lakes
  or reservoirs: like with like), then ``rules.water.compare_upstream``. The
  pair is judged when the second of its two samples arrives, whichever that is, so the points of
  several input partitions may interleave in any order and give the same observations at the
  same event times (a replay, the backtest and the live worker agree). A pair whose partner
  never reports is not judged (no observation: the alert's state is held).

Both carry the section's catalogue detail, including ``at_risk`` / ``drinking_at_risk`` (the
sections, and the drinking-water sources, downstream of it; ``streams.catalog``), which the
texts name. Links to sections of another locality are not followed: each locality's stage sees
only its own sections.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeGuard

from rules.errors import RulesError
from rules.water import LABELS, classify, compare_upstream

#: Samples of a section kept for the upstream comparison: the evaluate stage's lateness horizon
#: (rules.evaluate.LATENESS_HOURS), so a partition lagging by up to two days still finds its pair.
KEEP_HOURS: Final = 48


def change_evaluations(
    fields: Mapping[str, Any],
) -> list[tuple[str, float, float, dict[str, str]]]:
    """``(factor, value, jump threshold, detail)`` per factor of a ``water_change`` point;
    ``detail`` holds ``baseline``, ``direction`` (rise / drop) and ``jump`` ("1" / "0")."""
    out: list[tuple[str, float, float, dict[str, str]]] = []
    for key, jump in fields.items():
        if not key.startswith("jump_"):
            continue
        factor = key[5:]
        value = fields.get(factor)
        baseline = fields.get(f"baseline_{factor}")
        limit = fields.get(f"limit_{factor}")
        if not (_is_num(value) and _is_num(baseline) and _is_num(limit)):
            continue
        v, b, lim = float(value), float(baseline), float(limit)
        detail = {
            "baseline": repr(b),
            "direction": "drop" if lim < b else "rise",
            "jump": "1" if jump is True else "0",
        }
        out.append((factor, v, lim, detail))
    return sorted(out)


def _is_num(x: object) -> TypeGuard[int | float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class UpstreamWatch:
    """Each section's recent samples: section → {label iso: values}."""

    def __init__(self) -> None:
        self.samples: dict[str, dict[str, dict[str, float]]] = {}

    def to_dict(self) -> dict[str, Any]:
        return {s: dict(v) for s, v in self.samples.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> UpstreamWatch:
        w = cls()
        for s, v in dict(data or {}).items():
            w.samples[str(s)] = {str(t): dict(vals) for t, vals in dict(v).items()}
        return w

    def add(
        self,
        source: str,
        at: datetime,
        values: Mapping[str, float],
        details: Mapping[str, Mapping[str, str]],
    ) -> list[tuple[str, str, int, dict[str, str]]]:
        """File a sample of ``source`` and compare every pair it completes: ``(section,
        upstream section, classes worse, detail)`` for each, judged at ``at``."""
        if not values:
            return []
        key = at.astimezone(UTC).isoformat()
        mine = self.samples.setdefault(source, {})
        known = key in mine
        mine[key] = dict(values)
        horizon = at - timedelta(hours=KEEP_HOURS)
        for k in [k for k in mine if datetime.fromisoformat(k) < horizon]:
            del mine[k]
        if known:
            return []  # a re-delivered sample: its pairs were judged when it first came
        pairs: list[tuple[str, str]] = [
            (source, up) for up in _ids(details.get(source, {}).get("upstream"))
        ]
        pairs += [
            (down, source)
            for down, d in sorted(details.items())
            if down != source and source in _ids(d.get("upstream"))
        ]
        out: list[tuple[str, str, int, dict[str, str]]] = []
        for section, up in pairs:
            here = self.samples.get(section, {}).get(key)
            there = self.samples.get(up, {}).get(key)
            if here is None or there is None:
                continue
            d_here, d_up = details.get(section, {}), details.get(up, {})
            # like with like: both on the lake TP column only when both are lakes/reservoirs
            # (a reservoir below a river section is not "worse" for the stricter column alone)
            lake = d_here.get("lake") == "1" and d_up.get("lake") == "1"
            try:
                got = classify(here, lake=lake)
                ref = classify(there, lake=lake)
            except RulesError:
                continue
            cmp = compare_upstream(got, ref)
            up_name = d_up.get("source_name", "")
            out.append(
                (
                    section,
                    up,
                    cmp.classes_worse,
                    {
                        "observed_class": LABELS[got.grade],
                        "upstream_class": LABELS[ref.grade],
                        "upstream_name": f"{up_name} ({up})" if up_name else up,
                        "worsened": ",".join(cmp.worsened),
                    },
                )
            )
        return out


def _ids(raw: str | None) -> tuple[str, ...]:
    return tuple(s for s in (raw or "").split(",") if s)
