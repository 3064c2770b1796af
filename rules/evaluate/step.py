"""The entry point: one sample in, the source's typed state updated, result points out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from rules.errors import InvalidReading
from rules.evaluate.air import AirState, air
from rules.evaluate.common import (
    SIGNED_FACTORS,
    STATE_VERSION,
    Point,
    Sample,
    SourceContext,
    point,
    source_tags,
)
from rules.evaluate.emission import EmissionState, emission
from rules.evaluate.monitor import MonitorState, monitor
from rules.evaluate.quality import QualityState, quality_day, quality_runs
from rules.evaluate.water import WaterState, water
from rules.flags import VALID_FLAGS, Flag

__all__ = ["SourceState", "load_state", "step"]


@dataclass(slots=True)
class SourceState:
    """The state of one source: its data quality and the state of its kind (the others None).

    Dataclasses with slots: attribute access on the hot path, and orjson serialises them as
    plain JSON objects (what streams.state checkpoints, with the default identity ``dump``);
    :func:`load_state` (or :func:`step` itself) takes that JSON form back. Dict keys are text
    (epoch seconds, hours, day numbers) so the JSON form is the state itself."""

    v: int = STATE_VERSION
    quality: QualityState = field(default_factory=QualityState)
    air: AirState | None = None
    water: WaterState | None = None
    emission: EmissionState | None = None
    monitor: MonitorState | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SourceState:
        """The state from its JSON form (``orjson.loads(orjson.dumps(state))``); a state of
        another layout version (an older checkpoint) is discarded: a fresh state."""
        if d.get("v") != STATE_VERSION:
            return cls()
        a, w, e, m = d.get("air"), d.get("water"), d.get("emission"), d.get("monitor")
        return cls(
            STATE_VERSION,
            QualityState.from_json(d["quality"]),
            None if a is None else AirState.from_json(a),
            None if w is None else WaterState.from_json(w),
            None if e is None else EmissionState.from_json(e),
            None if m is None else MonitorState.from_json(m),
        )


def load_state(data: SourceState | Mapping[str, Any] | None) -> SourceState | None:
    """What :func:`step` takes: a state as it is, its JSON form converted, None as None."""
    if data is None or type(data) is SourceState:
        return data
    assert not isinstance(data, SourceState)
    return SourceState.from_json(data)


def step(
    state: SourceState | Mapping[str, Any] | None, sample: Sample, ctx: SourceContext
) -> tuple[SourceState, list[Point]]:
    """Evaluate one sample; return the new state and the points it produced or corrected.

    The state is updated in place and returned (pass the returned one next time); its JSON form
    (a checkpoint's) is accepted too and converted once. Raises
    :class:`~rules.errors.RulesError` subclasses for input that cannot be evaluated (the caller
    dead-letters the sample with the error's reason). Values, flags, time labels and lateness
    are checked before anything is written, so such a sample leaves the state untouched.
    """
    t = sample.time
    if t.tzinfo is None or t.utcoffset() is None:
        raise InvalidReading("sample time must be timezone-aware", factor="time", value=t)
    st = state if type(state) is SourceState else load_state(state) or SourceState()
    assert type(st) is SourceState  # for mypy: narrowed by the line above
    values = sample.values
    valid, bad = split(values)
    ts = t.timestamp()
    kind = sample.kind
    # the source's tag dicts, resolved once per sample (memoised per source)
    stags = source_tags(kind, sample.locality, sample.source)
    points: list[Point]
    if bad:
        fields: dict[str, float | int | str | bool] = dict(valid)
        fields["invalid"] = ",".join(f"{f}:{bad[f]}" for f in sorted(bad))
        points = [point(Point, ("reading", stags.reading, fields, t))]
    elif valid:
        points = [point(Point, ("reading", stags.reading, valid, t))]
    else:
        points = []
    if kind == "air":
        st.air = air(st.air, sample, ctx, valid, ts, points)
    elif kind == "water":
        st.water, pts = water(st.water, sample, ctx, valid, ts)
        points += pts
    elif kind == "emission":
        st.emission, pts = emission(st.emission, sample, ctx, valid, ts)
        points += pts
    elif kind == "monitor":
        st.monitor, pts = monitor(st.monitor, sample, ctx, valid, ts)
        points += pts
    quality = st.quality
    run = quality_runs(quality, sample, ctx, valid, ts, stags)
    if run is not None:
        points.append(run)
    quality_day(quality, sample, ctx, valid, bad, ts, stags, points)
    return st, points


def split(
    values: Mapping[str, tuple[float | None, str]],
) -> tuple[dict[str, float], dict[str, str]]:
    """(valid values as floats, invalid flags by factor). A value is valid when present and flagged
    N or S (HJ 212-2017 表8; rules.flags.VALID_FLAGS).

    Raises InvalidReading for a value that is not a finite number, or a pH outside 0–14.
    """
    # fast path: every value a float with a valid flag (one C-level pass)
    valid = {f: v for f, (v, flag) in values.items() if type(v) is float and flag in VALID_FLAGS}
    if len(valid) != len(values):
        return _split_mixed(values)
    if valid:
        if not -math.inf < sum(valid.values()) < math.inf:  # finite sum: so is each value
            for f, v in valid.items():
                if not math.isfinite(v):
                    raise InvalidReading("value must be finite", factor=f, value=v)
        _check_ranges(valid)
    return valid, {}


def _split_mixed(
    values: Mapping[str, tuple[float | None, str]],
) -> tuple[dict[str, float], dict[str, str]]:
    """:func:`split` of a sample with a missing, flagged or non-float value."""
    valid = {f: v for f, (v, flag) in values.items() if v is not None and flag in VALID_FLAGS}
    bad: dict[str, str] = (
        {}
        if len(valid) == len(values)
        else {f: flag for f, (_v, flag) in values.items() if flag not in VALID_FLAGS}
    )
    if valid:
        # every value a float (one C-level pass) and their sum finite (so is each)
        if set(map(type, valid.values())) != _FLOAT_ONLY or not (
            -math.inf < sum(valid.values()) < math.inf
        ):
            for f, v in valid.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise InvalidReading("value must be a number or null", factor=f, value=v)
                if not math.isfinite(v):
                    raise InvalidReading("value must be finite", factor=f, value=v)
                valid[f] = float(v)
        _check_ranges(valid)
    if bad and not _KNOWN_FLAGS.issuperset(bad.values()):
        f = next(f for f, flag in bad.items() if flag not in _KNOWN_FLAGS)
        raise InvalidReading("not an HJ 212-2017 表8 data flag", factor=f, value=bad[f])
    return valid, bad


def _check_ranges(valid: dict[str, float]) -> None:
    """pH within 0–14; no negative value but of SIGNED_FACTORS."""
    ph = valid.get("ph")
    if ph is not None and not 0.0 <= ph <= 14.0:
        raise InvalidReading("pH outside 0–14", factor="ph", value=ph)
    if min(valid.values()) < 0:
        for f, v in valid.items():
            if v < 0 and f not in SIGNED_FACTORS:
                raise InvalidReading("negative value", factor=f, value=v)


_FLOAT_ONLY: Final = {float}
#: HJ 212-2017 表8 flags (rules.flags.Flag).
_KNOWN_FLAGS: Final = frozenset(f.value for f in Flag)
