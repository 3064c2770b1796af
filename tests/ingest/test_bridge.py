"""The bridge's pure parts: validation into canonical JSON, dead-letter reasons, metrics text."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from ingest.bridge import MAX_PAYLOAD, normalise, prometheus_text, serve_metrics, topic_source

TOPIC = "env/air/weifang/aq-wf-001"


def body(**changes: object) -> bytes:
    d: dict[str, object] = {
        "kind": "air",
        "locality": "weifang",
        "source": "aq-wf-001",
        "time": "2026-11-22T09:00:00+08:00",
        "values": {"pm25": {"value": 35}},
    }
    d.update(changes)
    return orjson.dumps(d)


def test_valid_sample_becomes_canonical_json_keyed_by_source() -> None:
    key, value = normalise(TOPIC, body())
    assert key == b"aq-wf-001"
    # defaults written out: schema 1, interval hour, flag N; the integer 35 as a float
    assert orjson.loads(value) == {
        "schema": 1,
        "kind": "air",
        "locality": "weifang",
        "source": "aq-wf-001",
        "time": "2026-11-22T09:00:00+08:00",
        "interval": "hour",
        "values": {"pm25": {"value": 35.0, "flag": "N"}},
    }


@pytest.mark.parametrize(
    ("topic", "payload", "names"),
    [
        (TOPIC, b"\xff\xfe not json", "invalid sample"),
        (TOPIC, body(time="2026-11-22T09:00:00"), "time"),  # naive time
        (TOPIC, body(values={"pm2.5": {"value": 1}}), "pm2.5"),  # unknown factor
        (TOPIC, body(values={}), "values"),
        (TOPIC, body(extra=1), "extra"),
        ("env/air/weifang/other", body(), "does not match"),
        (TOPIC, b" " * (MAX_PAYLOAD + 1), "exceeds"),
    ],
)
def test_invalid_input_is_refused_with_a_reason_naming_the_problem(
    topic: str, payload: bytes, names: str
) -> None:
    with pytest.raises(ValueError) as info:
        normalise(topic, payload)
    assert names in str(info.value)


def test_topic_source() -> None:
    assert topic_source(TOPIC) == "aq-wf-001"
    assert topic_source("env/air/weifang") is None
    assert topic_source("other/air/weifang/x") is None


def test_prometheus_text_format() -> None:
    text = prometheus_text([("a_total", "counter", "things", 3), ("b", "gauge", "now", 0.5)])
    assert text == (
        b"# HELP a_total things\n# TYPE a_total counter\na_total 3\n"
        b"# HELP b now\n# TYPE b gauge\nb 0.5\n"
    )


def test_metrics_server_answers_get_metrics_and_404_elsewhere() -> None:
    async def main() -> tuple[bytes, bytes]:
        server = await serve_metrics(lambda: b"x 1\n", "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def get(path: str) -> bytes:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = await r.read()
            w.close()
            return data

        try:
            return await get("/metrics"), await get("/nope")
        finally:
            server.close()

    ok, missing = asyncio.run(main())
    assert ok.startswith(b"HTTP/1.0 200 OK")
    assert ok.endswith(b"\r\n\r\nx 1\n")
    assert b"version=0.0.4" in ok
    assert missing.startswith(b"HTTP/1.0 404")
