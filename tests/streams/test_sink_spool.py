"""The sink's outage path without services: a fake endpoint that goes down and comes back.

What a user would notice: a point lost or written twice with old content after an outage, a spool
file ``influx write`` cannot load, thousands of tiny files, a bad line blocking everything behind it.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from streams.sink import InfluxWriter, Outcome, Sink, Spool, WriteFailed


class FlakyEndpoint:
    """Records every line it accepted, in order; ``down`` makes writes fail like a refused connection."""

    def __init__(self) -> None:
        self.down = False
        self.reject_containing: str | None = None
        self.accepted: list[str] = []
        self.calls = 0

    def write(self, lines: Sequence[str]) -> None:
        self.calls += 1
        if self.down:
            raise WriteFailed("ConnectError: refused", status=None, retryable=True)
        if self.reject_containing and any(self.reject_containing in ln for ln in lines):
            raise WriteFailed("unable to parse", status=400, retryable=False)
        self.accepted.extend(lines)

    def close(self) -> None:
        pass


def batch(i: int, value: float = 1.0, n: int = 3) -> list[str]:
    return [f"reading,source=s{k} pm25={value} {i * 1_000_000_000 + k}" for k in range(n)]


def final_store(lines: Sequence[str]) -> dict[str, str]:
    """What InfluxDB keeps: the last write per series+timestamp (here the line minus its value)."""
    out: dict[str, str] = {}
    for ln in lines:
        head, _fields, ts = ln.split(" ")
        out[f"{head} {ts}"] = ln
    return out


def test_outage_spools_then_drains_oldest_first_and_corrections_win(tmp_path: Path) -> None:
    ep = FlakyEndpoint()
    slept: list[float] = []
    sink = Sink(ep, Spool(tmp_path), retries=2, backoff=0.5, sleep=slept.append, drain_interval=0)
    assert sink.write(batch(1)) is Outcome.WRITTEN
    ep.down = True
    assert sink.write(batch(2, value=10.0)) is Outcome.SPOOLED
    # backoff before giving up: 0.5 s, then 0.5*2 = 1.0 s (retries=2 → 3 attempts)
    assert slept == [0.5, 1.0]
    calls = ep.calls
    # while unhealthy, batches go straight to the spool: no retry storm slows the stream
    assert sink.write(batch(3)) is Outcome.SPOOLED
    assert sink.write(batch(2, value=20.0)) is Outcome.SPOOLED  # a correction of batch 2
    assert ep.calls == calls
    assert sink.drain() is False  # still down
    ep.down = False
    assert sink.drain() is True
    assert sink.write(batch(4)) is Outcome.WRITTEN
    # order preserved: 1, 2 (10.0), 3, 2 (20.0), 4 — the correction is not overtaken
    values_for_s0_at_2 = [ln for ln in ep.accepted if ln.endswith(f" {2 * 1_000_000_000}")]
    assert values_for_s0_at_2 == ["reading,source=s0 pm25=10.0 2000000000",
                                  "reading,source=s0 pm25=20.0 2000000000"]  # fmt: skip
    store = final_store(ep.accepted)
    assert len(store) == 4 * 3  # 4 timestamps × 3 sources, nothing missing
    assert store["reading,source=s1 2000000001"].split(" ")[1] == "pm25=20.0"
    assert sink.spool.files() == []
    assert (sink.written, sink.spooled, sink.drained) == (6, 9, 9)


def test_background_drainer_empties_the_spool_without_new_traffic(tmp_path: Path) -> None:
    import time

    ep = FlakyEndpoint()
    ep.down = True
    sink = Sink(ep, Spool(tmp_path), retries=0, drain_interval=0.05)
    sink.write(batch(1))
    ep.down = False
    deadline = time.monotonic() + 5
    while sink.spool.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(ep.accepted) == 3
    assert sink.healthy
    sink.close()


def test_segments_roll_by_size_into_few_loadable_files(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=4096, max_age=3600)
    for i in range(200):  # 200 batches of 3 lines, ~40 bytes each → ~24 kB
        spool.put(batch(i))
    spool.close()
    files = spool.files()
    # ~24 000 bytes / 4096 per segment → 6 segments (rounded up), not 200 files
    assert 5 <= len(files) <= 7
    lines = [ln for f in files for ln in f.read_text().splitlines()]
    assert len(lines) == 600
    assert lines == [ln for i in range(200) for ln in batch(i)]  # oldest first across files
    assert all(f.name.endswith(".lp") for f in files)
    assert not list(tmp_path.glob("*.open"))


def test_segments_roll_by_age(tmp_path: Path) -> None:
    now = [0.0]
    spool = Spool(tmp_path, max_age=60, clock=lambda: now[0])
    spool.put(batch(1))
    assert spool.files() == []  # still open
    now[0] = 61.0
    spool.put(batch(2))  # the segment is older than 60 s: closed after this append
    assert len(spool.files()) == 1


def test_gzip_segments_are_what_influx_write_reads(tmp_path: Path) -> None:
    spool = Spool(tmp_path, compress=True)
    spool.put(batch(1))
    spool.put(batch(2))
    spool.close()
    (f,) = spool.files()
    assert f.name.endswith(".lp.gz")  # `influx write --file` detects gzip by the .gz suffix
    assert gzip.decompress(f.read_bytes()).decode().splitlines() == batch(1) + batch(2)
    assert Spool.read(f) == batch(1) + batch(2)


def test_a_killed_process_leaves_no_half_line_and_its_segment_is_recovered(tmp_path: Path) -> None:
    # what a kill -9 in the middle of an append could leave: complete lines, then a fragment
    orphan = tmp_path / "envwatch-00000000000000000001-99999-000000.lp.open"
    orphan.write_bytes(("\n".join(batch(1)) + "\n").encode() + b"reading,source=s9 pm2")
    spool = Spool(tmp_path)
    (f,) = spool.files()
    assert f.read_text().splitlines() == batch(1)
    assert not orphan.exists()


def test_a_live_segment_is_not_taken_over(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.put(batch(1))  # open segment, locked by `first`
    second = Spool(tmp_path)  # e.g. a second worker on the same directory
    assert second.files() == []
    first.close()
    assert len(second.files()) == 1


def test_rejected_content_is_kept_aside_and_does_not_block(tmp_path: Path) -> None:
    ep = FlakyEndpoint()
    ep.reject_containing = "bad"
    sink = Sink(ep, Spool(tmp_path), sleep=lambda s: None, drain_interval=0)
    assert sink.write(["bad line"]) is Outcome.REJECTED
    assert ep.calls == 1  # a 400 is not retried
    assert sink.write(batch(1)) is Outcome.WRITTEN
    (rejected,) = (tmp_path / "rejected").glob("*.lp")
    assert rejected.read_text().splitlines()[1] == "bad line"
    assert "status=400" in rejected.read_text().splitlines()[0]
    assert sink.spool.files() == []


def test_partly_drained_file_keeps_only_the_rest(tmp_path: Path) -> None:
    ep = FlakyEndpoint()
    ep.down = True
    sink = Sink(ep, Spool(tmp_path), retries=0, drain_batch=3, drain_interval=0)
    for i in range(4):
        sink.write(batch(i))

    class DownAfter:
        def __init__(self, n: int) -> None:
            self.n = n

        def write(self, lines: Sequence[str]) -> None:
            if self.n == 0:
                raise WriteFailed("refused", status=None, retryable=True)
            self.n -= 1
            ep.accepted.extend(lines)

        def close(self) -> None:
            pass

    sink.writer = DownAfter(2)
    assert sink.drain() is False
    assert len(ep.accepted) == 6
    (rest,) = sink.spool.files()
    assert Spool.read(rest) == batch(2) + batch(3)
    sink.writer = ep
    ep.down = False
    assert sink.drain() is True
    assert len(ep.accepted) == 12  # nothing written twice, nothing missing


def test_a_restarted_sink_drains_what_the_previous_run_spooled(tmp_path: Path) -> None:
    ep = FlakyEndpoint()
    ep.down = True
    first = Sink(ep, Spool(tmp_path), retries=0, drain_interval=0)
    first.write(batch(1))
    first.spool.close()  # the process ends during the outage
    ep.down = False
    second = Sink(ep, Spool(tmp_path), retries=0, drain_interval=0)
    assert not second.healthy  # spool found: new batches queue behind it
    assert second.write(batch(2)) is Outcome.SPOOLED
    assert second.drain()
    assert ep.accepted == batch(1) + batch(2)


# --------------------------------------------------------------------------- the HTTP writer


def _capture(status: int = 204) -> tuple[list[httpx.Request], httpx.MockTransport]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text="" if status < 300 else '{"message":"nope"}')

    return seen, httpx.MockTransport(handler)


def test_v2_write_request() -> None:
    seen, transport = _capture()
    w = InfluxWriter("http://influx:8086/", token="t0k", org="o", bucket="b", transport=transport)
    w.write(batch(1))
    (r,) = seen
    assert r.url.path == "/api/v2/write"
    assert dict(r.url.params) == {"org": "o", "bucket": "b", "precision": "ns"}
    assert r.headers["authorization"] == "Token t0k"
    assert r.content.decode().splitlines() == batch(1)


def test_v3_write_request_is_all_or_nothing() -> None:
    seen, transport = _capture()
    w = InfluxWriter(
        "http://influx:8181", token="t0k", database="env", api="v3", transport=transport
    )
    w.write(batch(1))
    (r,) = seen
    assert r.url.path == "/api/v3/write_lp"
    assert dict(r.url.params) == {"db": "env", "precision": "nanosecond", "accept_partial": "false"}
    assert r.headers["authorization"] == "Bearer t0k"


def test_gzip_body() -> None:
    seen, transport = _capture()
    InfluxWriter("http://i", token=None, gzip=True, transport=transport).write(batch(1))
    assert seen[0].headers["content-encoding"] == "gzip"
    assert gzip.decompress(seen[0].content).decode().splitlines() == batch(1)


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(503, True), (429, True), (400, False), (413, False), (401, True), (403, True), (404, True)],
)
def test_status_classification(status: int, retryable: bool) -> None:
    _seen, transport = _capture(status)
    with pytest.raises(WriteFailed) as info:
        InfluxWriter("http://i", token=None, transport=transport).write(batch(1))
    assert info.value.status == status
    assert info.value.retryable is retryable


def test_refused_connection_is_retryable() -> None:
    from streams.embedded import free_port

    w = InfluxWriter(f"http://127.0.0.1:{free_port()}", token=None, timeout_ms=2000)
    with pytest.raises(WriteFailed) as info:
        w.write(batch(1))
    assert info.value.retryable
    assert info.value.status is None


def test_probing_a_down_endpoint_does_not_multiply_files(tmp_path: Path) -> None:
    ep = FlakyEndpoint()
    ep.down = True
    sink = Sink(ep, Spool(tmp_path), retries=0, drain_interval=0)
    for i in range(10):
        sink.write(batch(i))
        assert sink.drain() is False  # a probe every time, like the background drainer
    assert sink.spool.files() == []  # still one open segment, not ten small files
    ep.down = False
    assert sink.drain() is True
    assert ep.accepted == [ln for i in range(10) for ln in batch(i)]  # each line exactly once
