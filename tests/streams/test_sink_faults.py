"""The sink against an endpoint that refuses: 401, 413, 400 with a partial write — over real HTTP.

The endpoint is a small InfluxDB-2-like HTTP server in the test (``FaultyInflux``): it answers
401 while ``auth_failing``, 413 for a request of more than ``max_lines`` lines or a line longer
than ``max_line_bytes``, and 400 ``partial write`` for a request holding a line that contains one
of ``refuse`` (writing the other lines first, as InfluxDB 2 does). What it keeps is a dict by
series + timestamp (a second write of a point overwrites it, as in InfluxDB). Every expected
count below is worked out by hand from the scenario, not taken from the code under test.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from streams.sink import (
    InfluxWriter,
    Outcome,
    Rejected,
    Sink,
    Spool,
    read_rejected,
    replay,
)


class FaultyInflux:
    def __init__(self) -> None:
        self.auth_failing = False
        self.max_lines: int | None = None
        self.max_line_bytes: int | None = None
        self.refuse: set[str] = set()
        self.points: dict[str, str] = {}  # series + timestamp → line
        self.requests: list[tuple[int, int]] = []  # (lines, status)
        self.lock = threading.Lock()

    def answer(self, body: str) -> tuple[int, str]:
        lines = [ln for ln in body.split("\n") if ln]
        with self.lock:
            status, text = self._answer(lines)
            self.requests.append((len(lines), status))
            return status, text

    def _answer(self, lines: list[str]) -> tuple[int, str]:
        if self.auth_failing:
            return 401, '{"code":"unauthorized","message":"unauthorized access"}'
        if self.max_lines is not None and len(lines) > self.max_lines:
            return 413, '{"code":"request too large","message":"points batch is too large"}'
        if self.max_line_bytes is not None and any(len(ln) > self.max_line_bytes for ln in lines):
            return 413, '{"code":"request too large","message":"line is too large"}'
        bad = [ln for ln in lines if any(r in ln for r in self.refuse)]
        for ln in lines:
            if ln not in bad:
                head, _fields, ts = ln.rsplit(" ", 2)
                self.points[f"{head} {ts}"] = ln
        if bad:
            return 400, (
                '{"code":"invalid","message":"partial write: unable to parse \''
                + bad[0]
                + f"': invalid field format dropped={len(bad)}\"}}"
            )
        return 204, ""


@pytest.fixture
def influx() -> Iterator[tuple[FaultyInflux, str]]:
    endpoint = FaultyInflux()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            status, text = endpoint.answer(self.rfile.read(n).decode())
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def lines(n: int, start: int = 0) -> list[str]:
    return [f"reading,source=s{i} pm25={i}.5 {1_790_000_000_000_000_000 + i}" for i in range(start, start + n)]  # fmt: skip


def make_sink(url: str, tmp: Path, **kw: Any) -> Sink:
    writer = InfluxWriter(url, token="secret-token-123", timeout_ms=5000)
    return Sink(writer, Spool(tmp), sleep=lambda _s: None, drain_interval=0, **kw)


def test_413_halves_until_it_passes_and_later_batches_are_cut(
    influx: tuple[FaultyInflux, str], tmp_path: Path
) -> None:
    ep, url = influx
    ep.max_lines = 3
    sink = make_sink(url, tmp_path)
    assert sink.write(lines(10)) is Outcome.WRITTEN
    # 10 → 413; halves 0..5 → 413, 0..2 ok, 2..5 ok; 5..10 → 413, 5..7 ok, 7..10 ok
    assert ep.requests == [(10, 413), (5, 413), (2, 204), (3, 204), (5, 413), (2, 204), (3, 204)]
    assert sorted(ep.points.values()) == sorted(lines(10))
    # the size learned (half of the smallest batch found too large: 5 // 2 = 2) cuts the next
    # batch at once: 5 requests of 2 lines, no 413
    ep.requests.clear()
    assert sink.write(lines(10, start=10)) is Outcome.WRITTEN
    assert ep.requests == [(2, 204)] * 5
    assert not (tmp_path / "rejected").exists()


def test_a_single_line_too_large_is_refused_with_the_reason(
    influx: tuple[FaultyInflux, str], tmp_path: Path
) -> None:
    ep, url = influx
    ep.max_line_bytes = 80
    big = 'reading,source=big note="' + "x" * 100 + '" 1790000000000000099'
    batch = [*lines(2), big, *lines(1, start=2)]
    sink = make_sink(url, tmp_path)
    assert sink.write(batch) is Outcome.REJECTED
    assert sorted(ep.points.values()) == sorted(lines(3))
    (path,) = Rejected(tmp_path / "rejected").files()
    (refused,) = read_rejected(path)
    assert refused.line == big
    assert refused.status == 413
    assert "line is too large" in refused.reason


def test_400_bisects_so_only_the_refused_lines_are_kept_aside(
    influx: tuple[FaultyInflux, str], tmp_path: Path
) -> None:
    ep, url = influx
    batch = lines(16)
    ep.refuse = {"source=s5 ", "source=s11 "}
    sink = make_sink(url, tmp_path)
    assert sink.write(batch) is Outcome.REJECTED
    good = [ln for i, ln in enumerate(batch) if i not in (5, 11)]
    assert sorted(ep.points.values()) == sorted(good)
    (path,) = Rejected(tmp_path / "rejected").files()
    refused = read_rejected(path)
    assert [r.line for r in refused] == [batch[5], batch[11]]
    assert {r.status for r in refused} == {400}
    assert "unable to parse" in refused[0].reason
    assert batch[5] in refused[0].reason
    assert all(r.at for r in refused)
    # the file loads with `influx write --file`: comments and the refused lines as they were
    assert path.read_text().splitlines()[1::2] == [batch[5], batch[11]]
    assert all(c.startswith("# ") for c in path.read_text().splitlines()[0::2])
    health = sink.health()
    assert (health.writing, health.rejected_lines) == (True, 2)
    assert health.rejected_reason.startswith("400: ")


def test_401_is_retried_then_spooled_never_rejected_and_drained_when_fixed(
    influx: tuple[FaultyInflux, str], tmp_path: Path
) -> None:
    ep, url = influx
    ep.auth_failing = True
    slept: list[float] = []
    writer = InfluxWriter(url, token="secret-token-123", timeout_ms=5000)
    sink = Sink(
        writer, Spool(tmp_path), retries=3, backoff=0.5, sleep=slept.append, drain_interval=0
    )
    assert sink.write(lines(4)) is Outcome.SPOOLED
    assert slept == [0.5, 1.0, 2.0]  # 4 attempts, backoff doubling
    assert sink.write(lines(4, start=4)) is Outcome.SPOOLED  # straight to the spool: no storm
    assert len(ep.requests) == 4
    health = sink.health()
    assert health.writing is False
    assert health.error.startswith("401: ")
    assert "unauthorized access" in health.error
    assert "secret-token-123" not in health.error
    assert health.spooled_lines == 8
    assert sink.drain() is False  # still 401: still spooled
    assert not (tmp_path / "rejected").exists()
    ep.auth_failing = False
    assert sink.drain() is True
    assert sorted(ep.points.values()) == sorted(lines(8))
    health = sink.health()
    assert (health.writing, health.error, health.spooled_lines) == (True, "", 0)


def test_an_outage_in_the_middle_of_a_bisection_spools_the_rest_in_order(
    influx: tuple[FaultyInflux, str], tmp_path: Path
) -> None:
    ep, url = influx
    batch = lines(8)
    ep.refuse = {"source=s1 "}
    calls = {"n": 0}
    real = ep._answer

    def flaky(ls: list[str]) -> tuple[int, str]:
        calls["n"] += 1
        if calls["n"] >= 4:  # 8 → 400, 0..4 → 400, 0..2 → 400, then the endpoint fails
            return 503, "unavailable"
        return real(ls)

    ep._answer = flaky  # type: ignore[method-assign]
    sink = make_sink(url, tmp_path, retries=0)
    assert sink.write(batch) is Outcome.SPOOLED
    ep._answer = real  # type: ignore[method-assign]
    assert sink.drain() is True
    # s1 refused once (no line in rejected/ twice), everything else stored
    (path,) = Rejected(tmp_path / "rejected").files()
    assert [r.line for r in read_rejected(path)] == [batch[1]]
    assert sorted(ep.points.values()) == sorted(b for i, b in enumerate(batch) if i != 1)


def test_replay_writes_what_is_now_accepted_and_is_idempotent(
    influx: tuple[FaultyInflux, str], tmp_path: Path
) -> None:
    ep, url = influx
    batch = lines(8)
    ep.refuse = {"source=s2 ", "source=s6 "}
    sink = make_sink(url, tmp_path)
    assert sink.write(batch) is Outcome.REJECTED
    rejected = tmp_path / "rejected"
    (path,) = Rejected(rejected).files()
    writer = InfluxWriter(url, token=None, timeout_ms=5000)

    # the operator fixed the cause of s2 only
    ep.refuse = {"source=s6 "}
    ep.requests.clear()
    (report,) = replay(writer, rejected, sleep=lambda _s: None)
    assert (report.path, report.written, report.duplicates, report.untried) == (path, 1, 0, 0)
    assert [(r.line, r.status) for r in report.refused] == [(batch[6], 400)]
    assert batch[2] in ep.points.values()
    assert [r.line for r in read_rejected(path)] == [batch[6]]

    # rerun: only s6 is sent again (one request of one line), nothing is written twice
    ep.requests.clear()
    (report,) = replay(writer, rejected, sleep=lambda _s: None)
    assert (report.written, len(report.refused)) == (0, 1)
    assert ep.requests == [(1, 400)]

    # fixed: written, the file is gone
    ep.refuse = set()
    (report,) = replay(writer, rejected, sleep=lambda _s: None)
    assert report.written == 1
    assert Rejected(rejected).files() == []
    assert sorted(ep.points.values()) == sorted(batch)
    assert replay(writer, rejected) == []


def test_replay_keeps_a_line_found_twice_once_and_stops_when_the_endpoint_is_down(
    influx: tuple[FaultyInflux, str], tmp_path: Path
) -> None:
    ep, url = influx
    rejected = tmp_path / "rejected"
    rejected.mkdir()
    # the older format: plain lines and one reason for the file
    (rejected / "envwatch-00000000000000000001-1.lp").write_text("\n".join(lines(2)) + "\n")
    (rejected / "envwatch-00000000000000000001-1.reason").write_text("400: unable to parse\n")
    store = Rejected(rejected)
    store.put([*read_rejected(rejected / "envwatch-00000000000000000001-1.lp")][1:])
    first, second = store.files()
    assert [(r.status, r.reason) for r in read_rejected(first)] == [(400, "unable to parse")] * 2
    writer = InfluxWriter(url, token=None, timeout_ms=5000)

    ep.auth_failing = True
    reports = replay(writer, rejected, retries=1, sleep=lambda _s: None)
    assert len(reports) == 1  # stopped at the first file
    assert (reports[0].written, reports[0].untried) == (0, 2)
    assert reports[0].error.startswith("401: ")
    assert len(read_rejected(first)) == 2
    assert second.exists()

    ep.auth_failing = False
    reports = replay(writer, rejected, sleep=lambda _s: None)
    assert [(r.written, r.duplicates) for r in reports] == [(2, 0), (0, 1)]
    assert Rejected(rejected).files() == []
    assert not (rejected / "envwatch-00000000000000000001-1.reason").exists()
    assert [n for n, _s in ep.requests if _s == 204] == [2]  # the duplicate was never sent


def test_the_learned_size_grows_back_when_the_endpoint_takes_it(
    influx: tuple[FaultyInflux, str], tmp_path: Path
) -> None:
    ep, url = influx
    ep.max_lines = 3
    sink = make_sink(url, tmp_path, regrow_after=2)
    sink.write(lines(10))
    assert sink.max_lines == 2  # 5 // 2, as above
    ep.max_lines = None  # the operator raised the proxy's limit
    sink.write(lines(10, start=10))
    sink.write(lines(10, start=20))  # the 2nd batch written whole at 2 lines: doubled to 4
    ep.requests.clear()
    sink.write(lines(10, start=30))
    assert ep.requests == [(4, 204), (4, 204), (2, 204)]
    assert sorted(ep.points.values()) == sorted(lines(40))


def test_a_spool_left_by_a_previous_run_is_no_failure_until_a_probe_fails(
    influx: tuple[FaultyInflux, str], tmp_path: Path
) -> None:
    ep, url = influx
    first = Sink(None, Spool(tmp_path))
    first.write(lines(3))
    first.close()
    sink = make_sink(url, tmp_path)
    assert sink.health().writing is True  # draining what was left is no reason for an alert
    ep.auth_failing = True
    assert sink.drain() is False
    assert sink.health().writing is False
    ep.auth_failing = False
    assert sink.drain() is True
    assert sink.health().writing is True
    assert sorted(ep.points.values()) == sorted(lines(3))
