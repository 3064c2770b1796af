"""HJ 212 codec and gateway throughput, each next to a baseline measured in the same run.

* codec: ``hj212.parse`` of an hourly flue-gas packet, and parse + decode into a ``Sample``,
  next to ``orjson.loads`` of the same sample as MQTT JSON (what the bridge does per message);
* gateway: packets/s end to end over loopback TCP (framing, parse, CRC, decode, Sample, JSON,
  in-memory publish, 9014 ack), next to a bare asyncio line server that reads the same bytes and
  answers each CRLF-terminated line with a fixed ack — same clients, same event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson

from ingest import hj212
from ingest.gateway import Gateway, GatewayConfig, MnTarget, sample_of
from rules.factors import Kind

TARGET = MnTarget("weifang", "e-wf-001", Kind.EMISSION)


def _packet(i: int) -> bytes:
    return hj212.build(
        st="31",
        cn="2061",
        mn=f"MN{i % 100:04d}",
        qn=f"2026011509050{i % 10000:04d}",
        flag=hj212.make_flag(ack=True),
        cp={
            "DataTime": "20260115080000",
            "a21026-Avg": f"{i % 97}.5",
            "a21026-Flag": "N",
            "a21002-Avg": "120.3",
            "a21002-Flag": "N",
            "a34013-Avg": "8.1",
            "a34013-Flag": "N",
            "a19001-Avg": "9.8",
            "a19001-Flag": "N",
            "a00000-Avg": "25.1",
            "a00000-Flag": "N",
            "a01012-Avg": "85.0",
            "a01012-Flag": "N",
        },
    )


def _rate(fn: Callable[[], None], n: int) -> float:
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        best = max(best, n / (time.perf_counter() - t0))
    return best


def bench_codec(n: int) -> None:
    packets = [_packet(i) for i in range(n)]
    sample = sample_of(hj212.parse(packets[0]), TARGET)
    jsons = [orjson.dumps(sample.model_dump(mode="json", by_alias=True))] * n

    def parse_all() -> None:
        for p in packets:
            hj212.parse(p)

    def parse_decode_all() -> None:
        for p in packets:
            sample_of(hj212.parse(p), TARGET)

    def json_all() -> None:
        for j in jsons:
            orjson.loads(j)

    def crc_all() -> None:
        for p in packets:
            hj212.crc16(p[6:-6])

    r_json = _rate(json_all, n)
    r_crc = _rate(crc_all, n)
    r_parse = _rate(parse_all, n)
    r_full = _rate(parse_decode_all, n)
    print(f"codec, {n} hourly packets of {len(packets[0])} bytes (best of 3):")
    print(f"  baseline orjson.loads of the sample JSON   {r_json:>12,.0f} /s")
    print(f"  crc16 of the data segment                  {r_crc:>12,.0f} /s")
    print(f"  hj212.parse                                {r_parse:>12,.0f} /s")
    print(f"  hj212.parse + decode + Sample              {r_full:>12,.0f} /s")
    print(f"  ratio parse / orjson.loads                 {r_parse / r_json:>12.3f}")
    print(f"  ratio parse+decode+Sample / orjson.loads   {r_full / r_json:>12.3f}")


async def _line_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    ack = hj212.build(st="91", cn="9014", mn="MN0000", qn="20260115090500000", flag=4)
    buf = b""
    while chunk := await reader.read(65536):
        buf += chunk
        lines = buf.count(b"\r\n")
        if lines:
            buf = buf[buf.rfind(b"\r\n") + 2 :]
            writer.write(ack * lines)
            await writer.drain()
    writer.close()


async def _clients(port: int, conns: int, per_conn: int, batch: int) -> float:
    # packets are built before the clock starts: only the transfer and the server are timed
    prebuilt = [[_packet(c * per_conn + i) for i in range(per_conn)] for c in range(conns)]

    async def one(c: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        packets = prebuilt[c]
        for at in range(0, per_conn, batch):
            chunk = packets[at : at + batch]
            writer.write(b"".join(chunk))
            await writer.drain()
            for _ in chunk:
                await reader.readuntil(b"\r\n")
        writer.close()
        await writer.wait_closed()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(conns)))
    return conns * per_conn / (time.perf_counter() - t0)


async def bench_tcp(conns: int, per_conn: int, batch: int) -> None:
    published = 0

    async def publish(_topic: str, _payload: bytes) -> None:
        nonlocal published
        published += 1

    targets = {f"MN{i:04d}": TARGET for i in range(100)}
    base = await asyncio.start_server(_line_server, "127.0.0.1", 0)
    base_port = base.sockets[0].getsockname()[1]
    rates: dict[str, float] = {"baseline": 0.0, "gateway": 0.0}
    async with Gateway(targets, publish, lambda _d: None, config=GatewayConfig()) as gateway:
        for _ in range(2):  # interleave, keep the best of each
            rates["baseline"] = max(
                rates["baseline"], await _clients(base_port, conns, per_conn, batch)
            )
            rates["gateway"] = max(
                rates["gateway"], await _clients(gateway.address[1], conns, per_conn, batch)
            )
        stats = gateway.stats()
    base.close()
    await base.wait_closed()
    total = conns * per_conn
    assert stats.get("published", 0) == 2 * total, stats
    print(f"TCP loopback, {conns} connections × {per_conn} packets, {batch} per write:")
    print(f"  baseline line server (read + fixed ack)    {rates['baseline']:>12,.0f} packets/s")
    print(f"  HJ 212 gateway (parse, Sample, publish, ack){rates['gateway']:>11,.0f} packets/s")
    print(
        f"  ratio gateway / baseline                   {rates['gateway'] / rates['baseline']:>12.3f}"
    )


def main(quick: bool) -> None:
    bench_codec(2_000 if quick else 20_000)
    if quick:
        asyncio.run(bench_tcp(conns=5, per_conn=200, batch=20))
    else:
        asyncio.run(bench_tcp(conns=20, per_conn=2_000, batch=50))


if __name__ == "__main__":
    main(quick=False)
