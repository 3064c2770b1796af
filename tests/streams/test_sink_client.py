"""The sink's influxdb-client writer (:class:`streams.sink.ClientWriter`) keeps the sink's guarantees.

Over real HTTP: the fault scenarios of ``test_sink_faults`` run again unchanged with the client
writer in place of :class:`InfluxWriter`; a small server in the test answers the statuses
InfluxDB 2 documents for ``POST /api/v2/write`` and counts requests (the client must retry
nothing by itself); points written reach a real VictoriaMetrics (InfluxDB itself cannot run
here; VictoriaMetrics takes the same ``/api/v2/write`` requests). Expected values come from the
scenario, never from the code under test.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from streams import embedded
from streams.settings import Settings
from streams.sink import (
    ClientWriter,
    InfluxWriter,
    Outcome,
    Refusal,
    Rejected,
    Sink,
    Spool,
    WriteFailed,
    make_writer,
)
from tests.streams import test_sink_faults as faults

TOKEN = "secret-token-123"

# --- the fault scenarios of test_sink_faults, unchanged, with the client writer -------------

influx = faults.influx  # the FaultyInflux server fixture


@pytest.fixture(autouse=True)
def _client_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    """``faults.make_sink`` builds its writer through the module's ``InfluxWriter`` name."""

    def client(url: str, *, token: str | None, timeout_ms: int = 10_000) -> ClientWriter:
        return ClientWriter(url, token=token, timeout_ms=timeout_ms)

    monkeypatch.setattr(faults, "InfluxWriter", client)


test_413_halves_until_it_passes = faults.test_413_halves_until_it_passes_and_later_batches_are_cut
test_a_single_line_too_large = faults.test_a_single_line_too_large_is_refused_with_the_reason
test_400_bisects = faults.test_400_bisects_so_only_the_refused_lines_are_kept_aside
test_401_spooled_then_drained = (
    faults.test_401_is_retried_then_spooled_never_rejected_and_drained_when_fixed
)
test_outage_mid_bisection = (
    faults.test_an_outage_in_the_middle_of_a_bisection_spools_the_rest_in_order
)
test_replay_idempotent = faults.test_replay_writes_what_is_now_accepted_and_is_idempotent
test_replay_duplicates_and_down = (
    faults.test_replay_keeps_a_line_found_twice_once_and_stops_when_the_endpoint_is_down
)
test_learned_size_grows_back = faults.test_the_learned_size_grows_back_when_the_endpoint_takes_it
test_left_spool_no_failure = (
    faults.test_a_spool_left_by_a_previous_run_is_no_failure_until_a_probe_fails
)


# --- an endpoint that answers a set status and records every request ------------------------


class Recorder:
    def __init__(self) -> None:
        self.status = 204
        self.text = ""
        self.echo_auth = False  # answer with the request's Authorization header in the body
        self.hang: float = 0.0  # seconds before answering
        self.drop = False  # close the connection without an answer
        self.requests: list[tuple[str, dict[str, str], bytes]] = []  # path?query, headers, body


@pytest.fixture
def endpoint() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            rec.requests.append((self.path, dict(self.headers.items()), body))
            if rec.drop:
                self.close_connection = True
                self.connection.close()
                return
            if rec.hang:
                time.sleep(rec.hang)
            text = rec.text
            if rec.echo_auth:
                text = f'{{"message":"bad request: {self.headers.get("Authorization")}"}}'
            data = text.encode()
            self.send_response(rec.status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


BATCH = ["reading,source=s1 pm25=35.5 1790000000000000000"]


def test_v2_request_carries_org_bucket_ns_and_the_token(endpoint: tuple[Recorder, str]) -> None:
    rec, url = endpoint
    ClientWriter(url, token="t0k", org="o", bucket="b").write(BATCH)
    ((path, headers, body),) = rec.requests
    assert path.startswith("/api/v2/write?")
    query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))
    assert query == {"org": "o", "bucket": "b", "precision": "ns"}
    assert headers["Authorization"] == "Token t0k"
    assert body.decode().splitlines() == BATCH


def test_influxdb3_database_is_the_bucket_of_the_v2_endpoint(
    endpoint: tuple[Recorder, str],
) -> None:
    rec, url = endpoint
    ClientWriter(url, token="t0k", database="env").write(BATCH)
    assert "bucket=env" in rec.requests[0][0].split("?", 1)[1].split("&")


def test_gzip_body(endpoint: tuple[Recorder, str]) -> None:
    rec, url = endpoint
    ClientWriter(url, token=None, gzip=True).write(BATCH)
    ((_path, headers, body),) = rec.requests
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).decode().splitlines() == BATCH


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(503, True), (429, True), (400, False), (422, False), (413, False), (401, True), (404, True)],
)
def test_status_classification_with_one_request_and_no_token(
    endpoint: tuple[Recorder, str], status: int, retryable: bool
) -> None:
    """The status and the answer reach envwatch; the client retries nothing (one request), and
    an endpoint that echoes the Authorization header does not put the token in the reason."""
    rec, url = endpoint
    rec.status, rec.echo_auth = status, True
    with pytest.raises(WriteFailed) as info:
        ClientWriter(url, token=TOKEN).write(BATCH)
    assert info.value.status == status
    assert info.value.retryable is retryable
    assert "bad request: Token ***" in info.value.reason
    assert TOKEN not in str(info.value)
    assert len(rec.requests) == 1


def test_partial_write_answer_is_the_reason(endpoint: tuple[Recorder, str]) -> None:
    rec, url = endpoint
    rec.status = 400
    rec.text = '{"code":"invalid","message":"partial write: unable to parse \'x\': dropped=1"}'
    with pytest.raises(WriteFailed) as info:
        ClientWriter(url, token=None).write(BATCH)
    assert info.value.reason == rec.text


def test_refused_connection_is_retryable_without_status() -> None:
    url = f"http://127.0.0.1:{embedded.free_port()}"
    with pytest.raises(WriteFailed) as info:
        ClientWriter(url, token=TOKEN, timeout_ms=2000).write(BATCH)
    assert info.value.status is None
    assert info.value.retryable
    assert TOKEN not in str(info.value)


def test_a_connection_closed_without_answer_is_one_failed_request(
    endpoint: tuple[Recorder, str],
) -> None:
    rec, url = endpoint
    rec.drop = True
    with pytest.raises(WriteFailed) as info:
        ClientWriter(url, token=None, timeout_ms=5000).write(BATCH)
    assert info.value.status is None
    assert info.value.retryable
    assert len(rec.requests) == 1  # not re-sent by the client: the sink's backoff decides


def test_a_timeout_is_a_retryable_failure(endpoint: tuple[Recorder, str]) -> None:
    rec, url = endpoint
    rec.hang = 3.0
    with pytest.raises(WriteFailed) as info:
        ClientWriter(url, token=None, timeout_ms=300).write(BATCH)
    assert info.value.status is None
    assert info.value.retryable
    assert len(rec.requests) == 1


# --- a real endpoint ------------------------------------------------------------------------


def test_the_sink_writes_through_the_client_to_victoriametrics(
    victoria: embedded.Victoria, tmp_path: Path
) -> None:
    """Three points of one station, written by the sink with the client writer, read back."""
    lines = [
        f"reading,source=client-vm pm25={v} {1_790_000_000_000_000_000 + i * 3_600_000_000_000}"
        for i, v in enumerate((35.0, 76.0, 116.0))
    ]
    sink = Sink(ClientWriter(victoria.url, token=None), Spool(tmp_path), drain_interval=0)
    try:
        assert sink.write(lines) is Outcome.WRITTEN
    finally:
        sink.close()
    (series,) = victoria.export('reading_pm25{source="client-vm"}')
    assert series["values"] == [35.0, 76.0, 116.0]
    assert series["timestamps"] == [1_790_000_000_000, 1_790_003_600_000, 1_790_007_200_000]
    assert list(tmp_path.glob("*.lp*")) == []  # nothing spooled


# --- the writer the settings choose ---------------------------------------------------------


def _settings(**kw: Any) -> Settings:
    return Settings(influx_url="http://127.0.0.1:1", **kw)


def test_make_writer_defaults_to_the_client_for_v2_and_httpx_for_v3() -> None:
    assert make_writer(Settings(influx_url=None)) is None
    assert isinstance(make_writer(_settings()), ClientWriter)
    assert isinstance(make_writer(_settings(influx_writer="httpx")), InfluxWriter)
    v3 = make_writer(_settings(influx_api="v3", influx_database="env"))
    assert isinstance(v3, InfluxWriter)
    assert v3._url.endswith("/api/v3/write_lp")  # all or nothing (accept_partial=false)


def test_token_file_is_read_with_its_trailing_newline_stripped(
    endpoint: tuple[Recorder, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec, url = endpoint
    path = tmp_path / "influx-token"
    path.write_text("t0k-from-file\n")
    monkeypatch.setenv("ENVWATCH_INFLUX_TOKEN_FILE", str(path))
    writer = make_writer(Settings(influx_url=url))
    assert writer is not None
    writer.write(BATCH)
    assert rec.requests[0][1]["Authorization"] == "Token t0k-from-file"


def test_an_unreadable_token_file_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("ENVWATCH_INFLUX_TOKEN_FILE", str(missing))
    with pytest.raises(
        ValueError, match=r"ENVWATCH_INFLUX_TOKEN_FILE=.*nope: cannot read the file"
    ):
        Settings()


def test_a_process_that_closed_its_writer_exits_without_noise(
    endpoint: tuple[Recorder, str],
) -> None:
    """A worker's stderr at exit: nothing from the client's connection pool ("Exception
    ignored in ApiClient.__del__" when it is cleared during interpreter shutdown)."""
    _rec, url = endpoint
    code = (
        "from streams.sink import ClientWriter\n"
        f"w = ClientWriter({url!r}, token='t')\n"
        "w.write(['reading,source=s1 pm25=1 1790000000000000000'])\n"
        "w.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert done.stderr == ""


def _replay_cli(env: dict[str, str], spool: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENVWATCH_")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "envwatch"), "sink", "replay", "--spool", str(spool)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_replay_reads_the_token_file_and_sends_the_refused_line(
    endpoint: tuple[Recorder, str], tmp_path: Path
) -> None:
    """``envwatch sink replay`` with the token in a file: the kept line reaches the endpoint
    with the file's token, and the token appears in no output."""
    rec, url = endpoint
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    Rejected(tmp_path / "spool" / "rejected").put([Refusal(BATCH[0], 400, "field type conflict")])
    env = {"ENVWATCH_INFLUX_URL": url, "ENVWATCH_INFLUX_TOKEN_FILE": str(token_file)}
    done = _replay_cli(env, tmp_path / "spool")
    assert done.returncode == 0, done.stderr
    ((_path, headers, body),) = rec.requests
    assert headers["Authorization"] == f"Token {TOKEN}"
    assert body.decode().splitlines() == BATCH
    assert TOKEN not in done.stdout + done.stderr


def test_replay_with_an_unreadable_token_file_exits_2_naming_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"
    env = {"ENVWATCH_INFLUX_URL": "http://127.0.0.1:1", "ENVWATCH_INFLUX_TOKEN_FILE": str(missing)}
    done = _replay_cli(env, tmp_path / "spool")
    assert done.returncode == 2
    # the settings read the file first (alerts.secretfiles, every …_FILE): variable and path named
    assert f"ENVWATCH_INFLUX_TOKEN_FILE={missing}: cannot read the file" in done.stderr
