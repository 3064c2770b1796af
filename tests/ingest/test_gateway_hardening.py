"""The HJ 212 gateway under hostile input (issue 13): per-packet containment, the PW check,
limits on connections, bytes and dead letters, over real loopback TCP with in-memory sinks.

Expected values come from the packets the tests build and from HJ 212-2017: 表7 QnRtn codes
(3 PW错误, 4 MN错误, 2 请求被拒绝, 100 未知错误), CN 9014 for a data acknowledgement; an hourly
packet with DataTime hh:00 is published with the label hh+1:00 +08:00 (§4.9 / architecture §5).
Loopback addresses other than 127.0.0.1 (``local_addr``) stand for distinct peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from ingest import hj212
from ingest.gateway import (
    DeadLetter,
    Gateway,
    GatewayConfig,
    MnTarget,
    connection_cap,
    redact_password,
)
from rules.catalog import SecretRef, load_catalog
from rules.errors import ConfigError
from rules.factors import Kind
from streams.cli.gateway import GatewayService, SecretUnavailable, resolve_secret
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PW = "Ew-2026-pw"  # the test's password for MN "SECURE01"
TARGETS = {
    "OPEN01": MnTarget("weifang", "e-wf-open", Kind.EMISSION),  # no password configured
    "SECURE01": MnTarget("weifang", "e-wf-secure", Kind.EMISSION, password=SecretStr(PW)),
    "BROKEN01": MnTarget(
        "weifang", "e-wf-broken", Kind.EMISSION, password_problem="env X_PW is not set or empty"
    ),
}


def hourly(
    mn: str, hour: int, *, pw: str = PW, day: str = "20260115", qn_tail: str = "000"
) -> bytes:
    return hj212.build(
        st="31",
        cn="2061",
        mn=mn,
        pw=pw,
        qn=f"{day}{hour:02d}0500{qn_tail}",
        flag=hj212.make_flag(ack=True),
        cp={
            "DataTime": f"{day}{hour:02d}0000",
            "a21026-Avg": f"{10 + hour}",
            "a21026-Flag": "N",
        },
    )


class Sinks:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, object]]] = []
        self.dead: list[DeadLetter] = []

    async def publish(self, topic: str, payload: bytes) -> None:
        await asyncio.sleep(0)
        self.published.append((topic, orjson.loads(payload)))

    def dead_letter(self, item: DeadLetter) -> None:
        self.dead.append(item)

    def reasons(self) -> Counter[str]:
        return Counter(d.reason.value for d in self.dead)


def run(body, config: GatewayConfig | None = None, targets=None) -> Sinks:  # type: ignore[no-untyped-def]
    sinks = Sinks()

    async def main() -> None:
        gateway = Gateway(
            TARGETS if targets is None else targets,
            sinks.publish,
            sinks.dead_letter,
            config=config or GatewayConfig(),
        )
        async with gateway:
            await asyncio.wait_for(body(gateway, sinks), 60)

    asyncio.run(main())
    return sinks


async def connect(port: int, ip: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(ip, 0))


async def replies(reader: asyncio.StreamReader, n: int) -> list[hj212.Packet]:
    return [hj212.parse(await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)) for _ in range(n)]


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """True once the gateway closed the connection (EOF or reset)."""
    try:
        while await asyncio.wait_for(reader.read(65536), 20):
            pass
    except ConnectionError:
        pass
    return True


# ----------------------------------------------------------------- per-packet containment


def test_a_datatime_of_9999_12_31_is_dead_lettered_and_the_two_packets_after_it_go_through() -> (
    None
):
    # HJ 212 labels an hour by its start: DataTime 9999-12-31 23:00 is the hour ending at
    # 10000-01-01 00:00, which no datetime can hold (the probe's OverflowError)
    bad = hj212.build(
        st="31",
        cn="2061",
        mn="OPEN01",
        qn="20260115090500001",
        flag=hj212.make_flag(ack=True),
        cp={"DataTime": "99991231230000", "a21026-Avg": "12", "a21026-Flag": "N"},
    )
    good = [hourly("OPEN01", 8, qn_tail="002"), hourly("OPEN01", 9, qn_tail="003")]
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        reader, writer = await connect(gateway.address[1])
        writer.write(bad + good[0] + good[1])  # one write, as the probe sent them
        await writer.drain()
        got["replies"] = await replies(reader, 3)
        got["stats"] = gateway.stats()
        writer.close()

    sinks = run(body)
    # the two valid packets are published, with their own labels and values
    assert [(t, p["time"], p["values"]) for t, p in sinks.published] == [
        ("env/emission/weifang/e-wf-open", "2026-01-15T09:00:00+08:00", {"so2": {"value": 18.0, "flag": "N"}}),
        ("env/emission/weifang/e-wf-open", "2026-01-15T10:00:00+08:00", {"so2": {"value": 19.0, "flag": "N"}}),
    ]  # fmt: skip
    # the bad one is dead-lettered with its reason, as received
    assert [(d.reason.value, d.raw, d.mn) for d in sinks.dead] == [("field", bad, "OPEN01")]
    assert "DataTime" in sinks.dead[0].detail
    assert "99991231230000" in sinks.dead[0].detail
    # all three are answered, in order: the kept bad packet and the two published ones (9014)
    answers = got["replies"]
    assert isinstance(answers, list)
    assert [(r.cn, r.qn) for r in answers] == [
        ("9014", "20260115090500001"),
        ("9014", "20260115080500002"),
        ("9014", "20260115090500003"),
    ]
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert (stats["published"], stats["dead_letter.field"], stats["packets"]) == (2, 1, 3)


def test_any_exception_on_a_packet_is_contained_dead_lettered_and_answered_qnrtn_100() -> None:
    def lookup(mn: str) -> MnTarget | None:
        if mn == "BOOM01":
            raise RuntimeError("catalogue index broken")  # a bug in the gateway's own lookup
        return TARGETS.get(mn)

    boom = hourly("BOOM01", 7, qn_tail="001")
    after = hourly("OPEN01", 8, qn_tail="002")
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        reader, writer = await connect(gateway.address[1])
        writer.write(boom + after)
        await writer.drain()
        got["replies"] = await replies(reader, 2)
        got["stats"] = gateway.stats()
        writer.close()

    sinks = run(body, targets=lookup)
    answers = got["replies"]
    assert isinstance(answers, list)
    assert (answers[0].cn, answers[0].cp["QnRtn"], answers[0].qn) == (
        "9011",
        "100",
        "20260115070500001",
    )
    assert (answers[1].cn, answers[1].qn) == ("9014", "20260115080500002")
    assert [d.reason.value for d in sinks.dead] == ["internal"]
    assert sinks.dead[0].detail == "RuntimeError: catalogue index broken"
    assert sinks.dead[0].raw == redact_password(boom)  # the lookup failed: PW unknown, hidden
    assert [p["source"] for _, p in sinks.published] == ["e-wf-open"]
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert (stats["internal_errors"], stats["dead_letter.internal"]) == (1, 1)


# ----------------------------------------------------------------- the PW check


def test_the_pw_of_a_packet_is_checked_against_its_mns_password() -> None:
    wrong = [hourly("SECURE01", h, pw="123456", qn_tail=f"{h:03d}") for h in (1, 2, 3, 4)]
    right = hourly("SECURE01", 5, qn_tail="005")
    unchecked = hourly("OPEN01", 6, pw="anything", qn_tail="006")
    unreadable = hourly("BROKEN01", 7, qn_tail="007")
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        reader, writer = await connect(gateway.address[1])
        writer.write(b"".join(wrong) + right + unchecked + unreadable)
        await writer.drain()
        got["replies"] = await replies(reader, 7)
        got["stats"] = gateway.stats()
        writer.close()

    sinks = run(body)
    answers = got["replies"]
    assert isinstance(answers, list)
    assert [(r.cn, r.cp.get("QnRtn")) for r in answers] == [
        ("9011", "3"),  # 表7: PW错误, four times (the probe's 4/4 published before)
        ("9011", "3"),
        ("9011", "3"),
        ("9011", "3"),
        ("9014", None),  # the right PW: published and acknowledged
        ("9014", None),  # no password configured: today's behaviour, counted
        ("9011", "2"),  # 表7: 请求被拒绝 — the MN's password reference cannot be read
    ]
    assert [p["source"] for _, p in sinks.published] == ["e-wf-secure", "e-wf-open"]
    assert sinks.reasons() == {"wrong_password": 4, "password_unavailable": 1}
    for item in sinks.dead:
        # neither the password sent nor the configured one is in the dead letter
        for secret in ("123456", PW):
            assert secret.encode() not in item.raw
            assert secret not in item.detail
        assert b"PW=***" in item.raw
    assert sinks.dead[0].detail == "wrong password for MN 'SECURE01'"
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert stats["pw_unchecked"] == 1
    # the replies echo the packet's own PW (HJ 212 replies carry the request's QN/PW/MN)
    assert answers[0].pw == "123456"


def test_require_password_refuses_an_mn_without_one() -> None:
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        reader, writer = await connect(gateway.address[1])
        writer.write(hourly("OPEN01", 6) + hourly("SECURE01", 7))
        await writer.drain()
        got["replies"] = await replies(reader, 2)
        writer.close()

    sinks = run(body, config=GatewayConfig(require_password=True))
    answers = got["replies"]
    assert isinstance(answers, list)
    assert [(r.cn, r.cp.get("QnRtn")) for r in answers] == [("9011", "2"), ("9014", None)]
    assert sinks.reasons() == {"no_password": 1}
    assert [p["source"] for _, p in sinks.published] == ["e-wf-secure"]


def test_dead_letters_of_a_passworded_mn_never_carry_its_pw() -> None:
    # an unknown pollutant code from the right logger: kept, but its PW (the real password)
    # is replaced; an MN without a password keeps its bytes as received
    secure = hourly("SECURE01", 8).replace(b"a21026-", b"zz9999-")
    secure = hj212.frame(hj212.parse(secure, verify_crc=False).segment)
    open_ = hj212.frame(hj212.parse(hourly("OPEN01", 8, pw="123456").replace(b"a21026-", b"zz9999-"), verify_crc=False).segment)  # fmt: skip

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        reader, writer = await connect(gateway.address[1])
        writer.write(secure + open_)
        await writer.drain()
        await replies(reader, 2)
        writer.close()

    sinks = run(body)
    assert sinks.reasons() == {"unknown_code": 2}
    assert sinks.dead[0].raw == secure.replace(f"PW={PW}".encode(), b"PW=***")
    assert sinks.dead[1].raw == open_
    assert redact_password(b"QN=1;ST=91;CN=1072;PW=abc;MN=X;CP=&&NewPW=def&&") == (
        b"QN=1;ST=91;CN=1072;PW=***;MN=X;CP=&&NewPW=***&&"
    )


def test_password_references_resolve_from_env_or_file_and_never_inline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVWATCH_TEST_HJ212_PW", "from-env")
    assert resolve_secret(SecretRef(env="ENVWATCH_TEST_HJ212_PW")).get_secret_value() == "from-env"
    (tmp_path / "pw").write_text("from-file\n")
    assert resolve_secret(SecretRef(file="pw"), tmp_path).get_secret_value() == "from-file"
    with pytest.raises(SecretUnavailable, match="ENVWATCH_TEST_HJ212_UNSET is not set"):
        resolve_secret(SecretRef(env="ENVWATCH_TEST_HJ212_UNSET"))
    with pytest.raises(SecretUnavailable, match="cannot be read"):
        resolve_secret(SecretRef(file="missing"), tmp_path)

    # the catalogue: a reference is accepted; an inline password is a problem that does not
    # print the value
    config = tmp_path / "config"
    config.mkdir()
    for f in (REPO / "deploy" / "config").glob("*.yaml"):
        (config / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    weifang = config / "weifang.yaml"
    original = weifang.read_text(encoding="utf-8")
    anchor = '        mn: "010000A8900016F000169D01"\n'
    assert anchor in original
    weifang.write_text(original.replace(anchor, anchor + '        password: "s3cret-inline"\n'))
    with pytest.raises(ConfigError) as problem:
        load_catalog(config)
    assert "password: a secret is given by reference, never inline" in str(problem.value)
    assert "s3cret-inline" not in str(problem.value)

    weifang.write_text(
        original.replace(
            anchor, anchor + "        password: {env: ENVWATCH_TEST_HJ212_PW}\n"
        ).replace(
            '        mn: "010000A8900016F000169D02"\n',
            '        mn: "010000A8900016F000169D02"\n        password: {file: missing-pw}\n',
        )
    )
    catalog = load_catalog(config)
    service = GatewayService(Settings(config_dir=config), catalog)
    stack = service._lookup("010000a8900016f000169d01")
    assert stack is not None
    assert stack.password is not None
    assert stack.password.get_secret_value() == "from-env"
    assert "from-env" not in repr(stack)
    broken = service._lookup("010000A8900016F000169D02")
    assert broken is not None
    assert broken.password is None
    assert "missing-pw" in str(broken.password_problem)
    # every other outlet of the reference catalogue has none: counted once, PW not checked
    outlets = sum(len(e.outlets) for e in catalog.enterprises)
    assert service.outlets_without_password == outlets - 2
    assert service.passwords_unavailable == 1
    metrics = service.render_metrics()
    assert b"envwatch_gateway_outlets_without_password " in metrics
    assert b"from-env" not in metrics


# ----------------------------------------------------------------- limits


def test_a_flood_of_empty_packets_is_cut_at_the_connection_limit_with_one_summary() -> None:
    flood = b"##\r\n" * 20_000  # 80 KB: 20,000 dead letters before (the probe)
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        reader, writer = await connect(gateway.address[1], "127.0.0.3")
        writer.write(flood)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        got["closed"] = await closed_by_server(reader)
        await asyncio.sleep(0)
        got["stats"] = gateway.stats()
        writer.close()

    sinks = run(body)  # the default limit: 100 dead letters per connection
    assert got["closed"] is True
    assert sinks.reasons() == {"framing": 100, "dead_letter_limit": 1}
    summary = sinks.dead[-1]
    assert summary.reason.value == "dead_letter_limit"
    assert "(limit 100): closed" in summary.detail
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert stats["dead_letter_limit_closed"] == 1
    assert stats["items_dropped"] > 0  # what the connection had sent beyond: counted


def test_a_peer_over_its_dead_letter_limit_is_refused_for_a_while_and_others_are_not() -> None:
    config = GatewayConfig(
        max_dead_letters_per_connection=10, max_dead_letters_per_peer=25, ban_seconds=600
    )
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        port = gateway.address[1]
        for _ in range(3):  # 10 + 10 + 5: the peer reaches 25 on its third connection
            reader, writer = await connect(port, "127.0.0.3")
            writer.write(b"##\r\n" * 20)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            await closed_by_server(reader)
            writer.close()
        reader, writer = await connect(port, "127.0.0.3")  # banned: closed at once
        got["banned_closed"] = await closed_by_server(reader)
        writer.close()
        # another peer is served as usual
        reader, writer = await connect(port, "127.0.0.2")
        writer.write(hourly("SECURE01", 8))
        await writer.drain()
        got["ack"] = (await replies(reader, 1))[0].cn
        writer.close()
        got["stats"] = gateway.stats()

    sinks = run(body, config=config)
    assert sinks.reasons() == {"framing": 25, "dead_letter_limit": 2, "peer_banned": 1}
    banned = next(d for d in sinks.dead if d.reason.value == "peer_banned")
    assert "peer 127.0.0.3 caused 25 dead letters" in banned.detail
    assert "refused for 600 s" in banned.detail
    assert got["banned_closed"] is True
    assert got["ack"] == "9014"
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert (stats["peers_banned"], stats["connections_banned"], stats["peers_banned_now"]) == (
        1,
        1,
        1,
    )
    assert len(sinks.published) == 1


def test_slowloris_connections_are_closed() -> None:
    """One byte at a time never completes a packet within packet_timeout: closed. Line ends
    alone complete no packet either: closed at the idle timeout."""
    packet = hourly("OPEN01", 8)
    got: dict[str, object] = {}

    async def trickle(port: int, data: bytes, ip: str) -> bool:
        reader, writer = await connect(port, ip)
        closer = asyncio.create_task(closed_by_server(reader))
        with contextlib.suppress(ConnectionError):
            for byte in data:
                if closer.done():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)
        closed = await closer
        writer.close()
        return closed

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        port = gateway.address[1]
        got["closed"] = await asyncio.gather(
            trickle(port, packet, "127.0.0.4"), trickle(port, b"\r\n" * 200, "127.0.0.5")
        )
        got["stats"] = gateway.stats()

    sinks = run(body, config=GatewayConfig(packet_timeout=0.5, idle_timeout=1.0))
    assert got["closed"] == [True, True]
    assert sinks.published == []
    # the partial packet is kept with its reason; line ends alone are not a dead letter
    assert sinks.reasons() == {"slow": 1}
    assert packet.startswith(sinks.dead[0].raw)
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert (stats["slow_closed"], stats["idle_closed"]) == (1, 1)


def test_time_the_gateway_spends_publishing_does_not_count_against_a_partial_packet() -> None:
    """A slow broker (0.6 s per publish) with packet_timeout 0.3 s: the logger's second packet,
    half sent with the first, is completed after the first ack and is not taken for slowloris."""
    first, second = hourly("OPEN01", 8, qn_tail="001"), hourly("OPEN01", 9, qn_tail="002")
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        reader, writer = await connect(gateway.address[1])
        writer.write(first + second[:40])
        await writer.drain()
        acks = await replies(reader, 1)
        writer.write(second[40:])
        await writer.drain()
        acks += await replies(reader, 1)
        got["acks"] = [(r.cn, r.qn) for r in acks]
        got["stats"] = gateway.stats()
        writer.close()

    sinks = Sinks()

    async def slow_publish(topic: str, payload: bytes) -> None:
        await asyncio.sleep(0.6)
        await sinks.publish(topic, payload)

    async def main() -> None:
        config = GatewayConfig(packet_timeout=0.3)
        async with Gateway(TARGETS, slow_publish, sinks.dead_letter, config=config) as gateway:
            await asyncio.wait_for(body(gateway, sinks), 60)

    asyncio.run(main())
    assert got["acks"] == [("9014", "20260115080500001"), ("9014", "20260115090500002")]
    assert len(sinks.published) == 2
    assert sinks.dead == []
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert stats["slow_closed"] == 0


def test_reads_are_throttled_to_the_byte_rate_and_nothing_is_lost() -> None:
    packets = [hourly("OPEN01", h, qn_tail=f"{h:03d}") for h in range(12)]
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        reader, writer = await connect(gateway.address[1])
        writer.write(b"".join(packets))  # ~2.5 KB at 1 KB/s
        await writer.drain()
        got["acks"] = [r.cn for r in await replies(reader, len(packets))]
        got["stats"] = gateway.stats()
        writer.close()

    sinks = run(body, config=GatewayConfig(max_bytes_per_second=1000, read_size=512))
    assert got["acks"] == ["9014"] * 12
    assert len(sinks.published) == 12
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert stats["throttled"] >= 1


def test_at_the_connection_cap_the_quietest_unauthenticated_connection_makes_room() -> None:
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        port = gateway.address[1]
        idle = [await connect(port, "127.0.0.2") for _ in range(2)]  # A, B
        await asyncio.sleep(0.05)
        reader, writer = await connect(port, "127.0.0.3")  # the logger L: authenticated
        writer.write(hourly("SECURE01", 8))
        await writer.drain()
        first = await replies(reader, 1)
        # three more idle connections at a cap of 3: each evicts the quietest unauthenticated
        # one (A, then B, then C) — never the logger
        more = []
        for _ in range(3):
            more.append(await connect(port, "127.0.0.4"))
            await asyncio.sleep(0.05)
        writer.write(hourly("SECURE01", 9))
        await writer.drain()
        second = await replies(reader, 1)
        got["acks"] = [r.cn for r in first + second]
        got["evicted"] = [await closed_by_server(r) for r, _ in idle + more[:1]]
        got["stats"] = gateway.stats()
        for _, w in [*idle, *more, (reader, writer)]:
            w.close()

    sinks = run(body, config=GatewayConfig(max_connections=3))
    assert got["acks"] == ["9014", "9014"]
    assert got["evicted"] == [True, True, True]
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert stats["connections_evicted"] == 3
    assert stats["connections_open"] == 3  # L and the two newest idle ones
    assert len(sinks.published) == 2


def test_when_every_connection_is_a_busy_logger_a_new_one_is_refused() -> None:
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        port = gateway.address[1]
        loggers = []
        for h in (8, 9):
            reader, writer = await connect(port)
            writer.write(hourly("SECURE01", h))
            await writer.drain()
            await replies(reader, 1)
            loggers.append((reader, writer))
        reader, writer = await connect(port, "127.0.0.6")
        got["refused"] = await closed_by_server(reader)
        got["stats"] = gateway.stats()
        for _, w in [*loggers, (reader, writer)]:
            w.close()

    run(body, config=GatewayConfig(max_connections=2, evict_idle_after=60))
    assert got["refused"] is True
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert (stats["connections_refused"], stats["connections_evicted"]) == (1, 0)


def test_one_peer_cannot_hold_more_than_its_share() -> None:
    got: dict[str, object] = {}

    async def body(gateway: Gateway, sinks: Sinks) -> None:
        port = gateway.address[1]
        idle = [await connect(port, "127.0.0.7") for _ in range(8)]
        await asyncio.sleep(0.05)
        got["stats"] = gateway.stats()
        for _, w in idle:
            w.close()

    run(body, config=GatewayConfig(max_connections_per_peer=5))
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert (stats["connections_open"], stats["connections_evicted"]) == (5, 3)


def test_connection_cap_keeps_headroom_below_the_descriptor_limit() -> None:
    # the usual soft limit of 1,024 descriptors, 256 kept free (FD_HEADROOM)
    assert connection_cap(10_000, 1024) == 768
    assert connection_cap(10_000, 1_048_576) == 10_000
    assert connection_cap(10_000, 100) == 1


def test_the_soft_descriptor_limit_is_raised_to_the_hard_one() -> None:
    script = (
        "import resource; from ingest.gateway import raise_nofile_limit; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 1024)); "
        "print(raise_nofile_limit(), resource.getrlimit(resource.RLIMIT_NOFILE))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "(1024, 1024) (1024, 1024)"


_CHILD = r"""
import asyncio, json, os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))  # the probe's machine
from ingest.bridge import prometheus_text, serve_metrics
from ingest.gateway import Gateway, GatewayConfig, MnTarget, connection_cap, raise_nofile_limit
from rules.factors import Kind

async def main():
    soft, hard = raise_nofile_limit()
    cap = connection_cap(10_000, soft)
    published = []

    async def publish(topic, payload):
        published.append(topic)

    targets = {"OPEN01": MnTarget("weifang", "e-wf-open", Kind.EMISSION)}
    gateway = Gateway(targets, publish, lambda d: None, config=GatewayConfig(max_connections=cap))
    await gateway.start()
    def render():
        stats = gateway.stats()
        stats["fds"] = len(os.listdir("/proc/self/fd"))
        stats["nofile"] = soft
        return prometheus_text([(k.replace(".", "_"), "gauge", k, v) for k, v in sorted(stats.items())])
    metrics = await serve_metrics(render, "127.0.0.1", 0)
    print(json.dumps({"port": gateway.address[1], "metrics": metrics.sockets[0].getsockname()[1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""


def test_1100_idle_connections_do_not_lock_out_a_logger_or_the_metrics_port_at_1024_fds() -> None:
    """The probe's numbers: RLIMIT_NOFILE 1,024 (soft = hard, so it cannot be raised) and 1,100
    idle connections. The gateway (a child process) caps itself at 1,024 − 256 = 768
    connections, evicting the quietest unauthenticated one for each new connection: a logger
    that connects after the flood is served and the metrics port answers."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2048:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    got: dict[str, object] = {}
    try:
        assert child.stdout is not None
        ports = json.loads(child.stdout.readline())

        async def main() -> None:
            # 1,100 idle connections from five addresses (220 each: below the per-peer cap of
            # 256, so the global cap is what acts)
            idle = []
            for i in range(1100):
                idle.append(await connect(ports["port"], f"127.0.0.{2 + i % 5}"))
            await asyncio.sleep(0.2)
            reader, writer = await connect(ports["port"])
            writer.write(hourly("OPEN01", 8))
            await writer.drain()
            got["ack"] = (await replies(reader, 1))[0].cn
            mr, mw = await asyncio.open_connection("127.0.0.1", ports["metrics"])
            mw.write(b"GET /metrics HTTP/1.0\r\n\r\n")
            got["metrics"] = (await asyncio.wait_for(mr.read(), 10)).decode()
            for _, w in [*idle, (reader, writer), (mr, mw)]:
                w.close()

        asyncio.run(main())
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(10)
    assert got["ack"] == "9014"
    text = str(got["metrics"])
    assert text.startswith("HTTP/1.0 200 OK")
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.split("\r\n\r\n", 1)[1].splitlines()
        if line and not line.startswith("#")
    }
    assert values["nofile"] == 1024
    assert values["connections_max"] == 768
    # 1,100 idle + the logger = 1,101 accepted; 768 open at most → 333 evicted, none refused
    assert values["connections_total"] == 1101
    assert values["connections_evicted"] == 333
    assert values["connections_open"] == 768
    assert values.get("connections_refused", 0) == 0
    assert values["published"] == 1
    assert values["fds"] < 1024
