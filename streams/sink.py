"""The InfluxDB sink: batches of line protocol, written synchronously, spooled to disk when needed.

* With a writer (``influx_url`` set) each batch is POSTed whole. A write that fails with a
  *retryable* error (connection refused/reset, timeout, HTTP 5xx/429/408) is retried with
  exponential backoff; if it still fails the batch goes to the **spool** and the sink turns
  *unhealthy*: later batches go straight to the spool (no per-batch retry storm, the stream keeps
  its pace), and a background drainer probes the endpoint every ``drain_interval`` seconds. Once a
  write succeeds the spool is drained **oldest first**, and only then are new batches written
  directly again — so a correction never lands before the original it overwrites.
* A batch the server *rejects* (HTTP 400/401/403/404/413/422 …) is not retried: it is moved to
  ``<spool>/rejected/`` with the server's reason next to it, and the stream goes on.
* Without a writer (the embedded default) the spool *is* the output.

Spool files (``<prefix>-<ns>-<pid>-<seq>.lp`` or ``.lp.gz``) are plain line protocol that
``influx write --file`` loads as is (it detects gzip by the ``.gz`` suffix). Batches are appended
to one open segment (``….lp.open``, held under an exclusive ``flock``) with one ``write(2)`` each,
and the segment is closed (renamed, or gzipped then renamed) when it reaches ``max_bytes`` or
``max_age`` seconds: a few large files instead of one file per batch. A process killed mid-way
leaves its ``.lp.open`` segment behind; the next :class:`Spool` on that directory finalises it,
cutting a trailing partial line, so no file ever holds half a line. A batch is therefore either
written to the endpoint, or whole in the spool (``fsync`` per append by default), never "half":
the Kafka offsets of a batch are committed only after :meth:`Sink.write` returned.

Why not influxdb-client: its write path (OpenAPI-generated service + urllib3) adds per-request
overhead and hides the status code behind its own exception types; a bare ``httpx`` POST of the
same bytes is simpler, lets the sink classify errors by status, and speaks InfluxDB 3's native
``/api/v3/write_lp`` (with ``accept_partial=false``, so v3 too writes a batch whole or not at
all). The "~4x slower" figure once printed by ``bench/bench_sink.py`` came mostly from order:
the first writer pays VictoriaMetrics' creation of new series; on the same fresh-vs-fresh terms
the client is ~1.3x slower than the bare POST (see docs/sink.md and ``bench/bench_worker.py``).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import gzip
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- errors


class SinkError(Exception):
    """Root of the sink's errors.

    SinkError
    └── WriteFailed(status, retryable, reason)   the endpoint did not take a batch
    """


class WriteFailed(SinkError):
    """A write was not accepted. ``retryable`` False: the server rejected the content itself."""

    def __init__(self, reason: str, *, status: int | None, retryable: bool) -> None:
        super().__init__(f"write failed ({status or 'no response'}): {reason}")
        self.reason = reason
        self.status = status
        self.retryable = retryable


#: HTTP statuses worth retrying: the request may succeed later unchanged.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Outcome(enum.Enum):
    """What :meth:`Sink.write` did with a batch."""

    WRITTEN = "written"
    SPOOLED = "spooled"
    REJECTED = "rejected"
    EMPTY = "empty"


# --------------------------------------------------------------------------- writers


class Writer(Protocol):
    def write(self, lines: Sequence[str]) -> None: ...
    def close(self) -> None: ...


class InfluxApi(enum.Enum):
    V2 = "v2"  # /api/v2/write?org&bucket (InfluxDB 2.x; 3.x accepts it with bucket = database)
    V3 = "v3"  # /api/v3/write_lp?db (InfluxDB 3.x native)


class InfluxWriter:
    """One synchronous HTTP POST per batch of pre-serialised lines (httpx, keep-alive).

    v2: ``org``/``bucket`` and ``Authorization: Token``; v3: ``database`` (or ``bucket``) and
    ``Authorization: Bearer``, ``accept_partial=false``. ``gzip`` compresses the body
    (``Content-Encoding: gzip``) — worth it over a slow link, not on loopback.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        org: str = "envwatch",
        bucket: str = "envwatch",
        database: str | None = None,
        api: InfluxApi | str = InfluxApi.V2,
        timeout_ms: int = 10_000,
        gzip: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api = InfluxApi(api)
        base = url.rstrip("/")
        headers = {"Content-Type": "text/plain; charset=utf-8", "Accept": "application/json"}
        if self.api is InfluxApi.V3:
            self._url = f"{base}/api/v3/write_lp"
            self._params = {
                "db": database or bucket,
                "precision": "nanosecond",
                "accept_partial": "false",
            }
            if token:
                headers["Authorization"] = f"Bearer {token}"
        else:
            self._url = f"{base}/api/v2/write"
            self._params = {"org": org, "bucket": database or bucket, "precision": "ns"}
            if token:
                headers["Authorization"] = f"Token {token}"
        self._gzip = gzip
        if gzip:
            headers["Content-Encoding"] = "gzip"
        self._client = httpx.Client(headers=headers, timeout=timeout_ms / 1000, transport=transport)

    def write(self, lines: Sequence[str]) -> None:
        self.write_body(("\n".join(lines) + "\n").encode("utf-8"))

    def write_body(self, body: bytes) -> None:
        """POST line-protocol bytes; raise :class:`WriteFailed` unless the server took them."""
        if self._gzip:
            body = gzip.compress(body, compresslevel=1)
        try:
            r = self._client.post(self._url, params=self._params, content=body)
        except httpx.TransportError as exc:  # refused, reset, timeout …: the endpoint is down
            raise WriteFailed(f"{type(exc).__name__}: {exc}", status=None, retryable=True) from exc
        if r.status_code >= 300:
            raise WriteFailed(
                r.text[:500] or r.reason_phrase,
                status=r.status_code,
                retryable=r.status_code in RETRYABLE_STATUS,
            )

    def close(self) -> None:
        self._client.close()


class ClientWriter:
    """influxdb-client's synchronous write API (kept for comparison in the benchmarks)."""

    def __init__(
        self, url: str, *, token: str | None, org: str, bucket: str, timeout_ms: int = 10_000
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


# --------------------------------------------------------------------------- spool

_OPEN = ".open"


@dataclass
class Spool:
    """A directory of line-protocol segments: appended batch by batch, rolled by size or age.

    ``files()`` lists the closed segments oldest first (names start with the creation time in
    ns). The open segment is closed by :meth:`roll` (called by ``put`` when it is full or old,
    by the sink before draining, and by :meth:`close`).
    """

    directory: Path
    prefix: str = "envwatch"
    max_bytes: int = 64 * 1024 * 1024
    max_age: float = 60.0
    compress: bool = False
    fsync: bool = True
    clock: Callable[[], float] = time.monotonic
    _seq: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _fd: int | None = field(default=None, init=False)
    _path: Path | None = field(default=None, init=False)
    _opened: float = field(default=0.0, init=False)
    _size: int = field(default=0, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.recover()

    # ---------------------------------------------------------------- writing
    def put(self, lines: Sequence[str]) -> Path:
        """Append one batch (one ``write(2)``) to the open segment; return the segment's path."""
        data = ("\n".join(lines) + "\n").encode("utf-8")
        with self._lock:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            assert self._path is not None
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            if self.fsync:
                os.fsync(self._fd)
            self._size += len(data)
            path = self._path
            if self._size >= self.max_bytes or self.clock() - self._opened >= self.max_age:
                path = self.roll() or path
            return path

    def _open(self) -> None:
        name = f"{self.prefix}-{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}.lp"
        path = self.directory / (name + _OPEN)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd, self._path, self._opened, self._size = fd, path, self.clock(), 0

    def roll(self) -> Path | None:
        """Close the open segment (if any) into a loadable ``.lp``/``.lp.gz`` file."""
        with self._lock:
            if self._fd is None or self._path is None:
                return None
            fd, path, size = self._fd, self._path, self._size
            self._fd, self._path, self._size = None, None, 0
            try:
                return self._finalise(path) if size else self._discard(path)
            finally:
                os.close(fd)  # releases the flock after the rename: no one else grabs it

    @staticmethod
    def _discard(path: Path) -> None:
        path.unlink(missing_ok=True)
        return

    def _finalise(self, path: Path) -> Path:
        final = path.with_name(path.name.removesuffix(_OPEN))
        if self.compress:
            gz = final.with_name(final.name + ".gz")
            if not gz.exists():
                tmp = gz.with_name(gz.name + ".tmp")
                with path.open("rb") as src, gzip.open(tmp, "wb", compresslevel=6) as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                if self.fsync:
                    with tmp.open("rb") as f:
                        os.fsync(f.fileno())
                tmp.rename(gz)
            path.unlink(missing_ok=True)
            final = gz
        else:
            path.rename(final)
        self._sync_dir()
        return final

    def _sync_dir(self) -> None:
        if not self.fsync:
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def recover(self) -> list[Path]:
        """Finalise segments left open by a process that died (those nobody holds a lock on)."""
        done: list[Path] = []
        with self._lock:
            for path in sorted(self.directory.glob(f"{self.prefix}-*.lp{_OPEN}")):
                if path == self._path:
                    continue
                try:
                    fd = os.open(path, os.O_RDWR)
                except FileNotFoundError:
                    continue
                try:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # a live process is appending to it
                    _cut_partial_line(fd)
                    size = os.fstat(fd).st_size
                    if size:
                        done.append(self._finalise(path))
                    else:
                        path.unlink(missing_ok=True)
                finally:
                    os.close(fd)
            for tmp in self.directory.glob(f"{self.prefix}-*.lp.gz.tmp"):
                tmp.unlink(missing_ok=True)  # an interrupted compression; its .open is still there
        if done:
            log.warning("spool: recovered %d segment(s) left open: %s", len(done), done)
        return done

    # ---------------------------------------------------------------- reading
    def files(self) -> list[Path]:
        """Closed segments, oldest first."""
        found = [
            *self.directory.glob(f"{self.prefix}-*.lp"),
            *self.directory.glob(f"{self.prefix}-*.lp.gz"),
        ]
        return sorted(found, key=lambda p: p.name)

    @property
    def pending(self) -> bool:
        """Anything spooled that has not been drained (closed segments or the open one)."""
        with self._lock:
            return self._size > 0 or bool(self.files())

    def head(self, n: int) -> list[str]:
        """The first ``n`` complete lines of the open segment (empty when there is none)."""
        with self._lock:
            if self._path is None or not self._size:
                return []
            with self._path.open("rb") as f:
                data = f.read(min(self._size, 1 << 20))
            lines = data.decode("utf-8", "replace").split("\n")[:-1]  # complete lines only
            return lines[:n]

    @staticmethod
    def read(path: Path) -> list[str]:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
        return [ln for ln in data.decode("utf-8").split("\n") if ln]

    def replace(self, path: Path, lines: Sequence[str]) -> None:
        """Atomically rewrite ``path`` with ``lines`` (the rest of a partly drained file)."""
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if path.name.endswith(".gz"):
            data = gzip.compress(data, compresslevel=6)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def close(self) -> None:
        self.roll()


def _cut_partial_line(fd: int) -> None:
    """Truncate an interrupted segment after its last complete line."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    pos = size
    step = 64 * 1024
    while pos > 0:
        start = max(0, pos - step)
        chunk = os.pread(fd, pos - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            end = start + i + 1
            if end != size:
                log.warning("spool: cut %d bytes of a partial line", size - end)
                os.ftruncate(fd, end)
            return
        pos = start
    os.ftruncate(fd, 0)


# --------------------------------------------------------------------------- sink


@dataclass
class Sink:
    """Write batches; on failure retry with backoff, then spool; drain the spool when healthy.

    Thread-safe: the store agent calls :meth:`write` from a worker thread, the drainer runs in
    its own daemon thread; one lock keeps the order of everything that reaches the endpoint.
    """

    writer: Writer | None
    spool: Spool
    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 10.0
    #: lines per request when draining spool files (a segment may hold many batches)
    drain_batch: int = 5000
    #: s between probes of an unhealthy endpoint by the background drainer (0: no thread)
    drain_interval: float = 2.0
    sleep: Callable[[float], None] = time.sleep
    written: int = 0
    spooled: int = 0
    drained: int = 0
    rejected: int = 0
    healthy: bool = True
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _drainer: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.writer is not None and self.spool.files():
            # what a previous run left behind (an outage, a crash): drain it before new data
            self.healthy = False
            self._start_drainer()

    def write(self, lines: Sequence[str]) -> Outcome:
        """Write one batch whole, or spool it whole. Returns what happened."""
        if not lines:
            return Outcome.EMPTY
        with self._lock:
            if self.writer is None:
                self.spool.put(lines)
                self.spooled += len(lines)
                return Outcome.SPOOLED
            if not self.healthy:
                # keep the order: nothing new reaches the endpoint before the spool is empty
                self.spool.put(lines)
                self.spooled += len(lines)
                self._start_drainer()
                return Outcome.SPOOLED
            outcome = self._try(lines, retries=self.retries)
            if outcome is Outcome.SPOOLED:
                self.spool.put(lines)
                self.spooled += len(lines)
                self.healthy = False
                log.warning("sink: endpoint unavailable, spooling to %s", self.spool.directory)
                self._start_drainer()
            elif outcome is Outcome.WRITTEN:
                self.written += len(lines)
            return outcome

    def _try(self, lines: Sequence[str], *, retries: int) -> Outcome:
        """WRITTEN, REJECTED (moved aside) or SPOOLED (meaning: still failing, caller spools)."""
        assert self.writer is not None
        delay = self.backoff
        for attempt in range(retries + 1):
            try:
                self.writer.write(lines)
            except WriteFailed as exc:
                if not exc.retryable:
                    self._reject(lines, exc)
                    return Outcome.REJECTED
                err: Exception = exc
            except Exception as exc:  # a foreign writer (e.g. ClientWriter) raises its own types
                err = exc
            else:
                return Outcome.WRITTEN
            log.warning("sink write failed (attempt %d/%d): %s", attempt + 1, retries + 1, err)
            if attempt < retries:
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
        return Outcome.SPOOLED

    def _reject(self, lines: Sequence[str], exc: WriteFailed) -> None:
        """Keep content the server refused, with the reason, out of the drain path."""
        rejected = self.spool.directory / "rejected"
        rejected.mkdir(exist_ok=True)
        stem = f"{self.spool.prefix}-{time.time_ns():020d}-{os.getpid()}"
        (rejected / f"{stem}.lp").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (rejected / f"{stem}.reason").write_text(f"{exc.status}: {exc.reason}\n", encoding="utf-8")
        self.rejected += len(lines)
        log.error(
            "sink: %d lines rejected by the endpoint (%s): kept in %s", len(lines), exc, rejected
        )

    def drain(self) -> bool:
        """Try to empty the spool now, oldest first. True when it is empty (or there is no writer)."""
        if self.writer is None:
            return True
        with self._lock:
            skip = 0
            if not self.spool.files():
                # probe with the open segment's first lines *before* closing it, so an endpoint
                # that stays down does not turn every probe into one more small file
                head = self.spool.head(self.drain_batch)
                if head:
                    outcome = self._try(head, retries=0)
                    if outcome is Outcome.SPOOLED:
                        self.healthy = False
                        return False
                    skip = len(head)  # written (or rejected and kept aside): not again
                    if outcome is Outcome.WRITTEN:
                        self.drained += skip
            self.spool.roll()
            for path in self.spool.files():
                lines = self.spool.read(path)
                if skip:
                    lines, skip = lines[skip:], 0
                for i in range(0, len(lines), self.drain_batch):
                    chunk = lines[i : i + self.drain_batch]
                    if self._try(chunk, retries=0) is Outcome.SPOOLED:
                        if i:
                            self.spool.replace(path, lines[i:])
                        self.healthy = False
                        return False
                    self.drained += len(chunk)
                path.unlink()
                log.info("sink drained %s (%d lines)", path.name, len(lines))
            self.healthy = True
            return True

    def _start_drainer(self) -> None:
        if self.drain_interval <= 0 or self.writer is None:
            return
        if self._drainer is not None and self._drainer.is_alive():
            return
        self._drainer = threading.Thread(target=self._drain_loop, name="sink-drainer", daemon=True)
        self._drainer.start()

    def _drain_loop(self) -> None:
        while not self._stop.wait(self.drain_interval):
            try:
                if self.drain():
                    log.info("sink: spool drained, endpoint healthy again")
                    return
            except Exception:  # never let the drainer die silently with data in the spool
                log.exception("sink: drain failed")

    def close(self) -> None:
        """Stop the drainer, try a last drain, close the open segment and the writer."""
        self._stop.set()
        if self._drainer is not None:
            self._drainer.join(timeout=30)
        with self._lock:
            if self.writer is not None and self.spool.pending:
                with contextlib.suppress(Exception):
                    self.drain()
            self.spool.close()
            if self.writer is not None:
                self.writer.close()
