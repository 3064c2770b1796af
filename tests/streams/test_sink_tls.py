"""The sink over HTTPS: ``ENVWATCH_INFLUX_CA_FILE`` verifies the endpoint, a wrong CA is refused.

InfluxDB itself cannot run here, so the endpoint is a real VictoriaMetrics behind a
TLS-terminating proxy made in the test (a Python HTTPS server forwarding each request as is),
with a certificate for 127.0.0.1 issued by a test CA (``trustme``). Both writers are checked:
the influxdb-client one (the default for InfluxDB 2) and the httpx one (InfluxDB 3's native
endpoint).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from streams import embedded
from streams.settings import Settings
from streams.sink import ClientWriter, InfluxWriter, Outcome, Sink, Spool, WriteFailed, make_writer

TOKEN = "tls-secret-token-456"


class Tls:
    def __init__(self, url: str, ca_file: Path, wrong_ca_file: Path) -> None:
        self.url = url
        self.ca_file = ca_file
        self.wrong_ca_file = wrong_ca_file


@pytest.fixture
def tls(victoria: embedded.Victoria, tmp_path: Path) -> Iterator[Tls]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    wrong_ca_file = tmp_path / "wrong-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong_ca_file))
    upstream = httpx.Client(base_url=victoria.url, timeout=30)

    class Proxy(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            keep = ("Content-Type", "Content-Encoding", "Authorization")
            headers = {k: v for k, v in self.headers.items() if k in keep}
            r = upstream.post(self.path, content=body, headers=headers)
            self.send_response(r.status_code)
            self.send_header("Content-Length", str(len(r.content)))
            self.end_headers()
            self.wfile.write(r.content)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Tls(f"https://127.0.0.1:{server.server_address[1]}", ca_file, wrong_ca_file)
    finally:
        server.shutdown()
        server.server_close()
        upstream.close()


def _lines(source: str) -> list[str]:
    return [
        f"reading,source={source} pm25={v} {1_790_000_000_000_000_000 + i * 3_600_000_000_000}"
        for i, v in enumerate((35.0, 75.0))
    ]


@pytest.mark.parametrize("kind", ["client", "httpx"])
def test_https_with_the_ca_file_writes(
    tls: Tls, victoria: embedded.Victoria, tmp_path: Path, kind: str
) -> None:
    source = f"tls-{kind}"
    writer = make_writer(
        Settings(influx_url=tls.url, influx_ca_file=tls.ca_file, influx_writer=kind)
    )
    assert isinstance(writer, ClientWriter if kind == "client" else InfluxWriter)
    sink = Sink(writer, Spool(tmp_path), drain_interval=0)
    try:
        assert sink.write(_lines(source)) is Outcome.WRITTEN
    finally:
        sink.close()
    (series,) = victoria.export(f'reading_pm25{{source="{source}"}}')
    assert series["values"] == [35.0, 75.0]


@pytest.mark.parametrize("kind", ["client", "httpx"])
def test_a_wrong_ca_is_refused_with_a_clear_error_and_no_token(
    tls: Tls, victoria: embedded.Victoria, tmp_path: Path, kind: str
) -> None:
    source = f"tls-wrong-{kind}"
    writer = (
        ClientWriter(tls.url, token=TOKEN, ca_file=tls.wrong_ca_file, timeout_ms=5000)
        if kind == "client"
        else InfluxWriter(tls.url, token=TOKEN, ca_file=tls.wrong_ca_file, timeout_ms=5000)
    )
    with pytest.raises(WriteFailed) as info:
        writer.write(_lines(source))
    writer.close()
    assert info.value.status is None  # nothing answered: retried, then spooled, never rejected
    assert info.value.retryable
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.reason
    assert TOKEN not in str(info.value)
    assert victoria.export(f'reading_pm25{{source="{source}"}}') == []


def test_the_system_trust_store_alone_refuses_the_test_ca(tls: Tls) -> None:
    """Without ENVWATCH_INFLUX_CA_FILE the client verifies against the system's CAs (no silent
    'verify off'): the test CA is not among them."""
    with pytest.raises(WriteFailed) as info:
        ClientWriter(tls.url, token=TOKEN, timeout_ms=5000).write(_lines("tls-system"))
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.reason
