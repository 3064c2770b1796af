"""Envelopes on ``readings`` (issue 16): several samples in one Kafka record, judged exactly as if
each were a record of its own.

The input is the simulated winter episode of Weifang (``ingest.simulators``, deploy/config: air
stations, outlets, river sections, dust/noise/vapour/bypass/electricity monitors, AQI forecasts)
made canonical by the bridge's own :func:`ingest.bridge.normalise`, spread over 4 partitions by
the bridge's partitioner (murmur2 of the source id). Each partition is fed once sample by sample
and once in envelopes of several sizes; the points sent on ``evaluations`` and ``aggregates`` per
key (in order), the dead letters' reasons and the states must be the same. No services.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner

from ingest.bridge import normalise
from ingest.simulators import simulate, specs_from_catalog
from ingest.simulators.publish import payload_of
from streams import topics
from streams.catalog import CatalogView
from streams.records import envelope_bytes, is_envelope
from streams.steps import EvaluateStep

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "config"
START = datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
PARTITIONS = 4

Record = tuple[str, bytes, bytes]


@pytest.fixture(scope="module")
def view() -> CatalogView:
    return CatalogView(CONFIG)


@pytest.fixture(scope="module")
def partitions(view: CatalogView) -> dict[int, list[tuple[bytes, bytes, int]]]:
    """partition → (key, canonical sample, receipt ms) in delivery order, as the bridge makes them."""
    specs = [s for s in specs_from_catalog(view.catalog) if s.locality == "weifang"]
    partitioner = DefaultPartitioner()
    out: dict[int, list[tuple[bytes, bytes, int]]] = defaultdict(list)
    for d in simulate(specs, start=START, hours=36, seed=3, scenario="winter-episode"):
        s = d.sample
        key, value = normalise(f"env/{s.kind.value}/{s.locality}/{s.source}", payload_of(s))
        part = partitioner(key, list(range(PARTITIONS)), list(range(PARTITIONS)))
        out[part].append((key, value, round(d.at.timestamp() * 1000)))
    return dict(out)


def _step(view: CatalogView) -> EvaluateStep:
    return EvaluateStep(view, max_future=timedelta(minutes=15), max_past=timedelta(days=30))


def _points_by_key(outputs: list[Record]) -> dict[tuple[str, bytes], list[dict[str, Any]]]:
    got: dict[tuple[str, bytes], list[dict[str, Any]]] = defaultdict(list)
    for topic, key, value in outputs:
        if topic in (topics.EVALUATIONS, topics.AGGREGATES):
            got[(topic, key)] += orjson.loads(value)
    return dict(got)


def _dead(outputs: list[Record]) -> list[dict[str, Any]]:
    return [orjson.loads(v) for t, _k, v in outputs if t == topics.DEAD_LETTER]


def _singles(view: CatalogView, items: list[tuple[bytes, bytes, int]], part: int) -> Any:
    step, states, outputs = _step(view), {}, []
    for offset, (key, value, ts) in enumerate(items):
        outputs += step(states, key, value, offset, ts, part)
    return step, states, outputs


def _enveloped(
    view: CatalogView, items: list[tuple[bytes, bytes, int]], part: int, size: int
) -> Any:
    """In envelopes of ``size`` samples; an envelope carries its last sample's receipt (the
    bridge produces it after the burst's last message arrived)."""
    step, states, outputs = _step(view), {}, []
    for offset, i in enumerate(range(0, len(items), size)):
        chunk = items[i : i + size]
        value = envelope_bytes([v for _k, v, _ts in chunk])
        assert is_envelope(value)
        # every sample of a chunk is judged at the chunk's receipt: the singles must be too
        outputs += step(states, b"", value, offset, chunk[-1][2], part)
    return step, states, outputs


@pytest.mark.parametrize("size", [2, 7, 50, 400])
def test_an_envelope_is_judged_like_its_samples_one_by_one(
    view: CatalogView, partitions: dict[int, list[tuple[bytes, bytes, int]]], size: int
) -> None:
    kinds: set[str] = set()
    for part, items in partitions.items():
        # the single path with the receipt each sample has inside its envelope
        stamped = [
            (k, v, items[min(len(items), (i // size + 1) * size) - 1][2])
            for i, (k, v, _ts) in enumerate(items)
        ]
        one, one_states, one_out = _singles(view, stamped, part)
        many, many_states, many_out = _enveloped(view, items, part, size)
        assert _points_by_key(many_out) == _points_by_key(one_out)
        assert [d["reason"] for d in _dead(many_out)] == [d["reason"] for d in _dead(one_out)]
        assert orjson.dumps(many_states) == orjson.dumps(one_states)
        assert many.samples == one.samples == len(items)
        kinds |= {orjson.loads(v)["kind"] for _k, v, _ts in items}
    # the scenario's mix, not just air
    assert {"air", "emission", "water", "monitor", "forecast"} <= kinds


def test_a_bad_sample_in_an_envelope_is_dead_lettered_alone_with_its_origin(
    view: CatalogView, partitions: dict[int, list[tuple[bytes, bytes, int]]]
) -> None:
    part, items = next((p, it) for p, it in sorted(partitions.items()) if len(it) > 20)
    good = items[:20]
    ts = good[-1][2]
    unknown = orjson.loads(good[3][1]) | {"source": "aq-wf-99"}  # not in the catalogue
    broken = {"kind": "air", "source": "aq-wf-01"}  # no locality, no time, no values
    values = [v for _k, v, _ts in good]
    envelope = envelope_bytes([*values[:5], orjson.dumps(unknown), *values[5:9],
                               orjson.dumps(broken), *values[9:]])  # fmt: skip

    step, states, outputs = _step(view), {}, []
    outputs = step(states, b"", envelope, 41, ts, part)
    dead = _dead(outputs)
    assert [(d["stage"], d["origin"]) for d in dead] == [
        ("evaluate", f"readings/{part}@41#5"),
        ("evaluate", f"readings/{part}@41#10"),
    ]
    assert dead[0]["reason"] == "unknown source 'aq-wf-99' (not in the catalogue)"
    assert dead[1]["reason"].startswith("undecodable sample: ")
    # each dead letter carries its own sample, nothing else
    import base64

    assert orjson.loads(base64.b64decode(dead[0]["payload_b64"])) == unknown
    assert orjson.loads(base64.b64decode(dead[1]["payload_b64"])) == broken
    # the rest proceeds exactly as the same envelope without the two
    clean_step, clean_states = _step(view), {}
    clean = clean_step(clean_states, b"", envelope_bytes(values), 41, ts, part)
    assert _points_by_key(outputs) == _points_by_key(clean)
    assert orjson.dumps(states) == orjson.dumps(clean_states)  # no state touched by the two
    assert step.samples == len(values) + 2


def test_an_envelope_that_is_no_json_is_one_dead_letter(view: CatalogView) -> None:
    step = _step(view)
    out = step({}, b"", b'[{"kind": "air", "sou', 9, 0, 2)
    [dead] = _dead(out)
    assert dead["origin"] == "readings/2@9"
    assert dead["reason"].startswith("undecodable envelope: ")
    assert [t for t, _k, _v in out] == [topics.DEAD_LETTER]
