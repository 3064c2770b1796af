"""The notify stage's grouping over its checkpointed state (streams/agents/notify.py), no broker.

``NotifyGrouping`` runs the pure ``alerts.grouping.Grouper`` as the partition step of a
``streams.state.CheckpointedState`` over ``alert-events``. These tests feed it real wire records
(``Transition.to_dict`` JSON, keyed by locality) through ``CheckpointedState.process`` with the
partition already present (a restore would read Kafka), and take its snapshot records as the
worker writes them to ``alerts-state``:

* a restart at any record — a new stage whose partition state is the last snapshot, fed the
  records after it, as a restore replays them — sends the same notifications (ids and bodies)
  as a run without the restart, and what the two runs both sent has the same ids (the delivery
  ledger ignores the second copy);
* a transition redelivered (at-least-once) is not told twice;
* an escalation goes to the chain and a storm of one locality is one message per group.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from alerts.model import AlertState, Reason, Severity, Transition, TransitionKind, transition_id
from alerts.model import fingerprint as make_fingerprint
from alerts.notification import Notification
from alerts.routing import Receiver, Role, RouteTree, tree_from_receivers
from streams import topics
from streams.agents.notify import NotifyGrouping
from streams.app import build
from streams.settings import Settings
from streams.state import Partition

T0 = datetime(2026, 11, 22, 1, 0, tzinfo=UTC)
TREE = tree_from_receivers(
    [
        Receiver("duty-weifang", Role.DUTY, "weifang"),
        Receiver("enterprise-e-wf-01", Role.ENTERPRISE, "weifang", enterprise="e-wf-01"),
    ]
)


def pipeline(tmp_path: Path) -> Any:
    settings = Settings(
        kafka="kafka://127.0.0.1:1",  # never contacted
        app_id="notify-grouping-test",
        agents="deadletter",
        config_dir=None,
        data_dir=tmp_path / "faust",
        spool_dir=tmp_path / "spool",
        outbox_path=None,
    )
    return build(settings)


def stage(tmp_path: Path) -> NotifyGrouping:
    def tree() -> RouteTree:
        return TREE

    g = NotifyGrouping(pipeline(tmp_path), tree)
    g.state.partitions[0] = Partition(0)  # owned, nothing to restore
    return g


def transition(
    source: str, at: datetime, state: AlertState, reason: Reason, note: str = ""
) -> bytes:
    labels = {
        "rule": "permit-exceedance",
        "rule_kind": "permit_exceedance",
        "source": source,
        "factor": "nox",
        "locality": "weifang",
        "kind": "alert",
        "enterprise": "e-wf-01",
    }
    fp = make_fingerprint(labels)
    t = Transition(
        id=transition_id(fp, state, reason, at),
        kind=TransitionKind.ALERT,
        fingerprint=fp,
        labels=labels,
        annotations={"summary": f"{source} NOx"},
        state=state,
        previous_state=AlertState.FIRING if state is AlertState.RESOLVED else AlertState.PENDING,
        reason=reason,
        at=at,
        severity=Severity.WARNING,
        locality="weifang",
        source=source,
        note=note or None,
        value=200.0,
        limit=150.0,
    )
    return orjson.dumps(t.to_dict())


FIRE, CLEAR = Reason.CONDITION_MET_NO_WAIT, Reason.CLEAR_CONDITION_MET


def script() -> list[bytes]:
    """Ten outlets fire within 5 s (one group), escalate 1 h later, resolve 20 s apart from then,
    and an eleventh outlet fires 2 h after the first (its transition moves the clock)."""
    out = [
        transition(f"o{i}", T0 + timedelta(seconds=i / 2), AlertState.FIRING, FIRE)
        for i in range(10)
    ]
    out += [
        transition(f"o{i}", T0 + timedelta(hours=1), AlertState.FIRING, Reason.ESCALATED, "level 1")
        for i in range(10)
    ]
    out += [
        transition(f"o{i}", T0 + timedelta(hours=1, seconds=20 * i), AlertState.RESOLVED, CLEAR)
        for i in range(10)
    ]
    out.append(transition("o10", T0 + timedelta(hours=2), AlertState.FIRING, FIRE))
    return out


def records(values: list[bytes], start: int = 0) -> list[tuple[int, int, bytes, bytes, int]]:
    return [(0, start + i, b"weifang", v, 0) for i, v in enumerate(values)]


def notifications(outputs: list[tuple[str, bytes, bytes]]) -> list[Notification]:
    assert {topic for topic, _k, _v in outputs} <= {topics.NOTIFICATIONS}
    out = [Notification.from_json(v) for _t, _k, v in outputs]
    assert all(k == n.receiver.encode() for (_t, k, _v), n in zip(outputs, out, strict=True))
    return out


async def run_all(g: NotifyGrouping, values: list[bytes], start: int = 0) -> list[Notification]:
    return notifications(await g.state.process(records(values, start)))


def test_a_restart_at_any_record_sends_the_same_notifications(tmp_path: Path) -> None:
    import asyncio

    values = script()
    whole = asyncio.run(run_all(stage(tmp_path / "a"), values))
    # (UTC; T0 = 01:00) the storm: one firing message per receiver at 01:00:30 (group_wait
    # 30 s) listing 10; the escalations at 02:00: ten to the duty officer (the default chain),
    # at once; the resolutions at 02:00:00 + 20 s × i: the first news after the first message is
    # due at the next group_interval tick 01:00:30 + 12 × 5 min = 02:00:30 — it tells the two
    # resolutions of 02:00:00 and 02:00:20 (listing 8 firing + 2 resolved = 10); the other
    # eight are due at 02:05:30 (listing 8 resolved), flushed when o10's firing at 03:00 moves
    # the clock; o10's own group (due 03:00:30) is not flushed: nothing moves the clock past it
    kinds = sorted(
        (n.receiver, n.reason, n.annotations.get("count", "1"), n.at.strftime("%H:%M:%S"))
        for n in whole
    )
    assert kinds == sorted(
        [
            *[("duty-weifang", "escalated", "1", "02:00:00")] * 10,
            *[
                (receiver, "grouped", count, at)
                for receiver in ("duty-weifang", "enterprise-e-wf-01")
                for count, at in (("10", "01:00:30"), ("10", "02:00:30"), ("8", "02:05:30"))
            ],
        ]
    )
    for cut in (3, 10, 15, 25, 30):
        first = stage(tmp_path / f"b{cut}")
        before = asyncio.run(run_all(first, values[:cut]))
        snapshot = first.state.due_snapshots(force=True)
        marker = orjson.loads(next(v for k, v, _p in snapshot if k == b"0/marker"))
        parity = marker["generation"] % 2
        restored = stage(tmp_path / f"c{cut}")
        part = restored.state.partitions[0]
        part.next_offset = marker["next_offset"]
        for k, v, _p in snapshot:
            if k.startswith(f"0/{parity}/".encode()):
                part.states[k.decode().split("/", 2)[2]] = orjson.loads(v)
        after = asyncio.run(run_all(restored, values[cut:], start=cut))
        assert [n.id for n in before + after] == [n.id for n in whole], cut
        assert before + after == whole


def test_a_redelivered_batch_is_not_told_again(tmp_path: Path) -> None:
    import asyncio

    values = script()
    g = stage(tmp_path)
    first = asyncio.run(run_all(g, values))
    # the locality stage re-emits what followed its last snapshot: same transitions, new offsets
    again = asyncio.run(run_all(g, values[10:], start=len(values)))
    assert len(first) == 16
    assert again == []
