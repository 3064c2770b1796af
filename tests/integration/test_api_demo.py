"""``envwatch demo --out DIR`` runs the alerts API: ``DIR/api.json`` (mode 0600) appears once the
API is up, with a token per role, per locality and per enterprise of the catalogue; the tokens
work against the running API and are never printed; nothing listens after the demo. ~40 s."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rules.catalog import load_catalog
from streams.embedded import KafkaBroker, MqttBroker
from tests.integration.worker_support import CATALOGUE, REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_demo_serves_the_api_with_tokens_only_in_api_json(
    kafka_broker: KafkaBroker, mqtt_broker: MqttBroker, tmp_path: Path
) -> None:
    # the fixtures only prove Tansu and mosquitto can run here (skip with the reason outside CI);
    # the demo starts its own
    out = tmp_path / "out"
    log = tmp_path / "demo.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streams.cli",
                "demo",
                "--duration",
                "20",
                "--out",
                str(out),
                "--quiet",
            ],
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        api_json = out / "api.json"
        deadline = time.monotonic() + 90
        while not api_json.exists():
            if proc.poll() is not None:
                text = log.read_text(errors="replace")
                raise AssertionError(f"demo ended without api.json:\n{text[-2000:]}")
            assert time.monotonic() < deadline, "no api.json within 90 s"
            time.sleep(0.5)
        time.sleep(0.2)  # written in one go; let the writer close it
        assert stat.S_IMODE(api_json.stat().st_mode) == 0o600
        data = json.loads(api_json.read_text())
        cat = load_catalog(CATALOGUE)
        want = {"duty", "emergency", "admin"}
        want |= {f"duty:{loc.id}" for loc in cat.localities}
        want |= {f"enterprise:{e.id}" for e in cat.enterprises}
        assert set(data["tokens"]) == want
        assert len(set(data["tokens"].values())) == len(want)
        url = data["url"]
        assert url.startswith("http://127.0.0.1:")
        for who in ("admin", "duty", "emergency", f"enterprise:{cat.enterprises[0].id}"):
            r = httpx.get(
                url + "/api/v1/alerts",
                headers={"Authorization": f"Bearer {data['tokens'][who]}"},
                timeout=10,
            )
            assert r.status_code == 200, (who, r.text)
        assert httpx.get(url + "/api/v1/alerts", timeout=10).status_code == 401
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
    text = log.read_text(errors="replace")
    for token in data["tokens"].values():
        assert token not in text
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        s.settimeout(0.3)
        assert s.connect_ex(("127.0.0.1", port)) != 0
