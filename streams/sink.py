"""The InfluxDB sink: batches of line protocol, written synchronously, spooled to disk when needed.

* With ``influx_url`` set, each batch is written with influxdb-client (v2: org/bucket/token; v3:
  ``influx_database`` as the bucket, which InfluxDB 3's v2-compatible write API accepts). A write
  that fails is retried with exponential backoff; while the endpoint stays down, batches go to the
  spool directory and are drained, oldest first, once a write succeeds again.
* Without ``influx_url`` (the embedded default) the spool *is* the output: files of line protocol
  that ``influx write --file`` can load later.

Spool files are written to a temporary name and renamed, so a crash never leaves half a batch.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class Writer(Protocol):
    def write(self, lines: Sequence[str]) -> None: ...
    def close(self) -> None: ...


class InfluxWriter:
    """influxdb-client's synchronous write API with pre-serialised lines."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        org: str,
        bucket: str,
        timeout_ms: int = 10_000,
    ) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.domain.write_precision import WritePrecision

        self._precision = WritePrecision.NS

        self._client = InfluxDBClient(url=url, token=token or "", org=org, timeout=timeout_ms)
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket = bucket
        self._org = org

    def write(self, lines: Sequence[str]) -> None:
        self._api.write(
            bucket=self._bucket,
            org=self._org,
            record="\n".join(lines),
            write_precision=self._precision,  # type: ignore[arg-type]  # WritePrecision.NS is typed str
        )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._api.close()  # type: ignore[no-untyped-call]  # influxdb-client is untyped here
        self._client.close()  # type: ignore[no-untyped-call]


@dataclass
class Spool:
    """A directory of line-protocol files, written atomically, read back oldest first."""

    directory: Path
    prefix: str = "envwatch"
    _seq: itertools.count[int] = field(default_factory=itertools.count, init=False)

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)

    def put(self, lines: Sequence[str]) -> Path:
        name = f"{self.prefix}-{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}.lp"
        tmp = self.directory / (name + ".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        final = self.directory / name
        tmp.rename(final)
        return final

    def files(self) -> list[Path]:
        return sorted(self.directory.glob(f"{self.prefix}-*.lp"))


@dataclass
class Sink:
    """Write batches; on failure retry with backoff, then spool; drain the spool when healthy."""

    writer: Writer | None
    spool: Spool
    retries: int = 3
    backoff: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    written: int = 0
    spooled: int = 0

    def write(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        if self.writer is None:
            self.spool.put(lines)
            self.spooled += len(lines)
            return
        if self.spool.files() and not self._drain():
            self.spool.put(lines)
            self.spooled += len(lines)
            return
        if not self._try(lines):
            self.spool.put(lines)
            self.spooled += len(lines)

    def _try(self, lines: Sequence[str]) -> bool:
        assert self.writer is not None
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                self.writer.write(lines)
            except Exception as exc:  # the client raises urllib3/ApiException variants
                log.warning(
                    "sink write failed (attempt %d/%d): %s", attempt + 1, self.retries + 1, exc
                )
                if attempt < self.retries:
                    self.sleep(delay)
                    delay *= 2
            else:
                self.written += len(lines)
                return True
        return False

    def _drain(self) -> bool:
        """Write spooled files oldest first; stop at the first failure."""
        for path in self.spool.files():
            lines = path.read_text(encoding="utf-8").splitlines()
            if not self._try(lines):
                return False
            path.unlink()
            log.info("sink drained %s (%d lines)", path.name, len(lines))
        return True

    def drain(self) -> bool:
        """Try to empty the spool now (e.g. from a periodic timer). True when empty."""
        return self.writer is None or self._drain()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
