"""The InfluxDB sink: batches of line protocol, written synchronously, spooled to disk when needed.

* With a writer (``influx_url`` set) each batch is POSTed in as few requests as the endpoint
  allows (:func:`send`). A write that fails for a reason that says nothing against the lines —
  no answer, HTTP 5xx/429, and also 401/403 (a token the operator fixes) or 404 — is retried with
  exponential backoff; if it still fails the rest of the batch goes to the **spool** and the sink
  turns *unhealthy*: later batches go straight to the spool (no per-batch retry storm, the stream
  keeps its pace), and a background drainer probes the endpoint every ``drain_interval`` seconds.
  Once a write succeeds the spool is drained **oldest first**, and only then are new batches
  written directly again — so a correction never lands before the original it overwrites.
* HTTP 413 (too large): the batch is halved until it passes (and later batches are cut to the
  size learned); a single line still too large is refused.
* HTTP 400/422 (content refused): the batch is bisected until only the refused lines remain;
  each is kept in ``<spool>/rejected/`` with the endpoint's reason (:class:`Rejected`), the
  others are written, the stream goes on. ``envwatch sink replay`` (:func:`replay`) re-sends
  them once the operator fixed the cause; :meth:`Sink.health` feeds the operator's ``store``
  alert (streams/agents/store.py).
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

Writers (:func:`make_writer`): InfluxDB 2 (and 3 through its v2-compatible endpoint) is written
with influxdb-client's synchronous write API (:class:`ClientWriter`), batching and retries off so
every failure reaches the policy above with its status; InfluxDB 3's native ``/api/v3/write_lp``
(``accept_partial=false``: a batch whole or not at all), which influxdb-client does not speak,
keeps the bare httpx POST (:class:`InfluxWriter`). Figures and reasons: docs/sink.md.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import gzip
import itertools
import logging
import os
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import urllib3
from pydantic import SecretStr

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- errors


class SinkError(Exception):
    """Root of the sink's errors.

    SinkError
    └── WriteFailed(status, retryable, reason)   the endpoint did not take a batch
    """


class WriteFailed(SinkError):
    """A write was not accepted. ``retryable`` False: the server refused the content itself
    (:data:`SPLIT_STATUS`, :data:`REFUSED_STATUS`); True: the same request may succeed later."""

    def __init__(self, reason: str, *, status: int | None, retryable: bool) -> None:
        super().__init__(f"write failed ({status or 'no response'}): {reason}")
        self.reason = reason
        self.status = status
        self.retryable = retryable


#: The batch is too large for the endpoint (InfluxDB: "points batch is too large"): split it.
SPLIT_STATUS = frozenset({413})
#: The endpoint refuses some content (InfluxDB 2: 400 "partial write: unable to parse …",
#: 422 "points beyond retention policy"): bisect the batch down to the refused lines.
REFUSED_STATUS = frozenset({400, 422})
#: Everything else — no answer, 5xx, 429, and also 401/403 (a token or a grant the operator
#: fixes), 404 (a bucket to create) — says nothing against the lines: retried, spooled, never
#: rejected. Kept for reference: the statuses retried before issue 13.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def is_retryable(status: int | None) -> bool:
    """Whether a write that failed with ``status`` (None: no answer) may succeed unchanged."""
    return status not in SPLIT_STATUS and status not in REFUSED_STATUS


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


def _mask(text: str, token: str | None) -> str:
    """``text`` on one line, at most 500 characters, with ``token`` replaced by ``***``."""
    text = " ".join(text.split())
    if token:  # an endpoint (or a proxy) that echoes the request must not leak the token
        text = text.replace(token, "***")
    return text[:500]


def _tls_context(ca_file: str | os.PathLike[str] | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=os.fspath(ca_file)) if ca_file else True


class InfluxWriter:
    """One synchronous HTTP POST per batch of pre-serialised lines (httpx, keep-alive).

    v2: ``org``/``bucket`` and ``Authorization: Token``; v3: ``database`` (or ``bucket``) and
    ``Authorization: Bearer``, ``accept_partial=false``. ``gzip`` compresses the body
    (``Content-Encoding: gzip``) — worth it over a slow link, not on loopback. ``ca_file``
    verifies an ``https://`` endpoint against that CA bundle (default: the system's).

    The sink's writer for InfluxDB 3's native endpoint (``api="v3"``), which influxdb-client
    does not speak; :class:`ClientWriter` is the default for v2 (docs/sink.md).
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
        ca_file: str | os.PathLike[str] | None = None,
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
        self._token = token or None
        if gzip:
            headers["Content-Encoding"] = "gzip"
        self._client = httpx.Client(
            headers=headers,
            timeout=timeout_ms / 1000,
            transport=transport,
            verify=_tls_context(ca_file),
        )

    def write(self, lines: Sequence[str]) -> None:
        self.write_body(("\n".join(lines) + "\n").encode("utf-8"))

    def write_body(self, body: bytes) -> None:
        """POST line-protocol bytes; raise :class:`WriteFailed` unless the server took them."""
        if self._gzip:
            body = gzip.compress(body, compresslevel=1)
        try:
            r = self._client.post(self._url, params=self._params, content=body)
        except httpx.TransportError as exc:  # refused, reset, timeout, TLS …: the endpoint is down
            reason = _mask(f"{type(exc).__name__}: {exc}", self._token)
            raise WriteFailed(reason, status=None, retryable=True) from exc
        if r.status_code >= 300:
            reason = _mask(r.text[:2000] or r.reason_phrase, self._token)
            raise WriteFailed(reason, status=r.status_code, retryable=is_retryable(r.status_code))

    def close(self) -> None:
        self._client.close()


class _MaskToken(logging.Filter):
    """Masks a token in the records of the logger it is attached to. influxdb-client logs, on
    the root logger at DEBUG, the body of an error answer it cannot parse as JSON
    (``influxdb_client.client.exceptions``) — an endpoint that echoes the request echoes the
    token (tests/integration/test_secrets_never_leak.py)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self._token in text:
            record.msg, record.args = text.replace(self._token, "***"), None
        return True


class ClientWriter:
    """influxdb-client's write API, synchronous, one request per batch: the sink's v2 writer.

    The sink calls its writer from a thread (the store agent through ``asyncio.to_thread``, the
    drainer in its own), so the client's synchronous ``WriteApi`` (``WriteType.synchronous``) is
    the fitting one: no event loop blocked, no loop per thread as ``InfluxDBClientAsync`` would
    need. Everything that would hide a failure from envwatch's own retry/spool/reject policy is
    off: no batching (the client's batching mode retries by itself and reports failures to a
    callback, after the sink returned), ``retries=False`` (urllib3 retries nothing and raises
    the transport error itself). Each failure becomes :class:`WriteFailed` exactly as
    :class:`InfluxWriter` raises it: the HTTP status and the endpoint's answer (InfluxDB 2's
    ``partial write`` 400 included), ``status=None`` when nothing answered (refused, timeout,
    TLS); the token never appears in a reason. The pre-serialised line protocol goes as bytes
    (the client sends them unchanged); ``gzip`` is the client's ``enable_gzip``.

    InfluxDB 2 (``org``, ``bucket``) and InfluxDB 3 through its v2-compatible endpoint
    (``database`` as the bucket). Not InfluxDB 3's native ``/api/v3/write_lp``, and so not
    ``accept_partial=false``: that path keeps :class:`InfluxWriter` (docs/sink.md).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        org: str = "envwatch",
        bucket: str = "envwatch",
        database: str | None = None,
        timeout_ms: int = 10_000,
        gzip: bool = False,
        ca_file: str | os.PathLike[str] | None = None,
    ) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import WriteOptions, WriteType
        from influxdb_client.domain.write_precision import WritePrecision

        self._precision = WritePrecision.NS
        self._token = token or None
        self._client = InfluxDBClient(
            url=url.rstrip("/"),
            token=token or "",
            org=org,
            timeout=timeout_ms,
            enable_gzip=gzip,
            ssl_ca_cert=os.fspath(ca_file) if ca_file else None,
            verify_ssl=True,
            retries=False,
        )
        self._api: Any = self._client.write_api(
            write_options=WriteOptions(write_type=WriteType.synchronous)
        )
        self._bucket = database or bucket
        self._org = org
        self._mask_root = _MaskToken(token) if token else None
        if self._mask_root is not None:
            logging.getLogger().addFilter(self._mask_root)

    def write(self, lines: Sequence[str]) -> None:
        self.write_body(("\n".join(lines) + "\n").encode("utf-8"))

    def write_body(self, body: bytes) -> None:
        """Write line-protocol bytes; raise :class:`WriteFailed` unless the server took them."""
        from influxdb_client.rest import ApiException

        if self._api is None:
            raise WriteFailed("the writer is closed", status=None, retryable=True)
        try:
            self._api.write(
                bucket=self._bucket,
                org=self._org,
                record=body,
                write_precision=self._precision,
            )
        except ApiException as exc:
            status = exc.status or None  # 0: the client's TLS failure, nothing answered
            if status is None:
                text = str(exc.reason or "no response")
            else:
                text = str(exc.body or "") or str(exc.reason or "")
            reason = _mask(text, self._token)
            raise WriteFailed(reason, status=status, retryable=is_retryable(status)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # refused, reset, timeout …
            reason = _mask(f"{type(exc).__name__}: {exc}", self._token)
            raise WriteFailed(reason, status=None, retryable=True) from None

    def close(self) -> None:
        """Close the client and drop every reference to its connection pool now: a pool the
        write API still referenced would be cleared by its ``__del__`` at interpreter exit,
        when urllib3 can no longer import, printing "Exception ignored …" on every exit."""
        api, self._api = self._api, None
        if api is not None:
            with contextlib.suppress(Exception):
                api.close()
        self._client.close()  # type: ignore[no-untyped-call]  # influxdb-client is untyped here
        if self._mask_root is not None:
            logging.getLogger().removeFilter(self._mask_root)


class WriterSettings(Protocol):
    """The InfluxDB fields of :class:`streams.settings.Settings` that :func:`make_writer` reads."""

    @property
    def influx_url(self) -> str | None: ...
    @property
    def influx_token(self) -> SecretStr | None: ...
    @property
    def influx_org(self) -> str: ...
    @property
    def influx_bucket(self) -> str: ...
    @property
    def influx_database(self) -> str | None: ...
    @property
    def influx_ca_file(self) -> Path | None: ...
    @property
    def influx_api(self) -> str: ...
    @property
    def influx_writer(self) -> str: ...
    @property
    def influx_gzip(self) -> bool: ...
    @property
    def influx_timeout_ms(self) -> int: ...


def make_writer(settings: WriterSettings) -> Writer | None:
    """The sink's writer for ``settings`` (None: no ``influx_url``, the spool is the output).

    ``influx_api`` v3 → :class:`InfluxWriter` on ``/api/v3/write_lp`` (all or nothing);
    v2 → :class:`ClientWriter` (influxdb-client), or :class:`InfluxWriter` with
    ``influx_writer=httpx``. Both verify https against ``influx_ca_file`` when set.
    """
    if not settings.influx_url:
        return None
    token = None if settings.influx_token is None else settings.influx_token.get_secret_value()
    token = token or None
    common: dict[str, Any] = {
        "token": token,
        "org": settings.influx_org,
        "bucket": settings.influx_bucket,
        "database": settings.influx_database,
        "timeout_ms": settings.influx_timeout_ms,
        "gzip": settings.influx_gzip,
        "ca_file": settings.influx_ca_file,
    }
    api = InfluxApi(settings.influx_api)
    if api is InfluxApi.V3 or settings.influx_writer == "httpx":
        return InfluxWriter(settings.influx_url, api=api, **common)
    return ClientWriter(settings.influx_url, **common)


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


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True, slots=True)
class Refusal:
    """One line the endpoint refused, with its answer (``status`` None: no HTTP status)."""

    line: str
    status: int | None
    reason: str
    #: when it was refused (ISO-8601 UTC; filled by :class:`Rejected` when empty)
    at: str = ""


@dataclass
class Sent:
    """What :func:`send` did with some lines, in order: a prefix written (``written`` lines, the
    refused ones among them set aside in ``refused``), then ``rest``: the suffix not written
    because the endpoint is unavailable (empty when everything was answered)."""

    written: int = 0
    refused: list[Refusal] = field(default_factory=list)
    rest: list[str] = field(default_factory=list)
    #: the failure that stopped the writing (``status: reason``), empty when nothing stopped it
    error: str = ""
    #: the smallest number of lines the endpoint found too large (413), None when it never did
    too_large: int | None = None
    requests: int = 0


def failure_text(exc: Exception) -> str:
    """``401: unauthorized access`` / ``no response: ConnectError: …`` — one line."""
    if isinstance(exc, WriteFailed):
        status = str(exc.status) if exc.status is not None else "no response"
        return f"{status}: {exc.reason}"
    return f"no response: {type(exc).__name__}: {' '.join(str(exc).split())}"[:600]


def send(
    writer: Writer,
    lines: Sequence[str],
    *,
    retries: int = 0,
    backoff: float = 0.5,
    max_backoff: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    max_lines: int | None = None,
) -> Sent:
    """Write ``lines`` in order, as few requests as the endpoint allows.

    * written: next chunk;
    * 413 (too large): the chunk is halved until it passes; a single line still too large is
      refused with the endpoint's reason;
    * 400/422 (content refused): the chunk is bisected until only the refused lines remain, each
      set aside with the endpoint's reason (InfluxDB 2 wrote the valid lines of a partial write
      already; writing them again overwrites each point with itself);
    * anything else (no answer, 5xx, 429, 401/403/404 …): retried ``retries`` times with
      exponential backoff; then the writing stops and the unwritten suffix is returned in
      ``rest`` — the caller spools it, nothing is refused for it.

    ``max_lines`` cuts the lines into chunks of at most that many first (a size learned from a
    previous 413, :attr:`Sent.too_large`).
    """
    out = Sent()
    n = len(lines)
    step = max(1, max_lines) if max_lines else max(1, n)
    # ranges still to write, the next one last (a stack keeps the order while bisecting)
    todo = [(lo, min(lo + step, n)) for lo in range(0, n, step)][::-1]
    while todo:
        lo, hi = todo.pop()
        chunk = lines[lo:hi]
        delay = backoff
        attempt = 0
        while True:
            out.requests += 1
            try:
                writer.write(chunk)
            except WriteFailed as exc:
                err: Exception = exc
                status: int | None = exc.status
            except Exception as exc:  # a foreign writer (e.g. ClientWriter) raises its own types
                err, status = exc, None
            else:
                out.written += hi - lo
                break
            if status in SPLIT_STATUS or status in REFUSED_STATUS:
                if status in SPLIT_STATUS and hi - lo > 1:
                    out.too_large = min(out.too_large or hi - lo, hi - lo)
                if hi - lo == 1:
                    reason = err.reason if isinstance(err, WriteFailed) else str(err)
                    out.refused.append(Refusal(chunk[0], status, reason))
                    log.warning("sink: line refused (%s): %.200s", failure_text(err), chunk[0])
                else:
                    mid = (lo + hi) // 2
                    todo += [(mid, hi), (lo, mid)]
                break
            log.warning("sink write failed (attempt %d/%d): %s", attempt + 1, retries + 1, err)
            if attempt >= retries:
                out.error = failure_text(err)
                out.rest = list(lines[lo:])
                return out
            attempt += 1
            sleep(delay)
            delay = min(delay * 2, max_backoff)
    return out


# --------------------------------------------------------------------------- rejected lines

#: Each refused line is preceded by one comment line (``influx write`` skips comments):
#: ``# envwatch-rejected status=400 at=2026-12-03T06:50:00+00:00 reason=<one line>``
REJECTED_MARK = "# envwatch-rejected "


def format_rejected(refusals: Sequence[Refusal]) -> bytes:
    """The bytes of a rejected file (docs/sink.md "Rejected lines")."""
    out: list[str] = []
    for r in refusals:
        reason = " ".join(r.reason.split())[:500]
        status = "none" if r.status is None else str(r.status)
        out.append(f"{REJECTED_MARK}status={status} at={r.at} reason={reason}")
        out.append(r.line)
    return ("\n".join(out) + "\n").encode("utf-8") if out else b""


def read_rejected(path: Path) -> list[Refusal]:
    """The refused lines of one rejected file with their reasons. A file of the older format
    (plain lines, the reason in ``<stem>.reason``) gives that reason to every line."""
    legacy = path.with_suffix(".reason")
    default_status: int | None = None
    default_reason = "unknown (no reason recorded)"
    if legacy.exists():
        text = legacy.read_text(encoding="utf-8", errors="replace").strip()
        head, _, rest = text.partition(": ")
        default_status = int(head) if head.isdigit() else None
        default_reason = rest if default_status is not None else text
    out: list[Refusal] = []
    mark: tuple[int | None, str, str] | None = None
    for raw in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        if raw.startswith(REJECTED_MARK):
            mark = _parse_mark(raw[len(REJECTED_MARK) :])
            continue
        if not raw.strip() or raw.startswith("#"):
            continue
        status, reason, at = mark if mark is not None else (default_status, default_reason, "")
        out.append(Refusal(raw, status, reason, at))
        mark = None
    return out


def _parse_mark(text: str) -> tuple[int | None, str, str]:
    status: int | None = None
    at = ""
    reason = ""
    rest = text
    while rest:
        key, _, value = rest.partition("=")
        if key == "reason":
            reason = value
            break
        value, _, rest = value.partition(" ")
        if key == "status":
            status = int(value) if value.isdigit() else None
        elif key == "at":
            at = value
    return status, reason, at


@dataclass
class Rejected:
    """``<spool>/rejected/``: files of refused lines, each with its reason; written whole
    (``.tmp`` then rename), so a reader never sees half a file."""

    directory: Path
    prefix: str = "envwatch"
    fsync: bool = True
    _seq: itertools.count[int] = field(default_factory=itertools.count, init=False)
    _cache: tuple[tuple[tuple[str, int, int], ...], int, str] | None = field(
        default=None, init=False
    )

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)

    def put(self, refusals: Sequence[Refusal]) -> Path | None:
        """One new file holding ``refusals``; None when there are none."""
        if not refusals:
            return None
        self.directory.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        stamped = [r if r.at else Refusal(r.line, r.status, r.reason, now) for r in refusals]
        name = f"{self.prefix}-{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}.lp"
        path = self.directory / name
        self.write(path, stamped)
        return path

    def write(self, path: Path, refusals: Sequence[Refusal]) -> None:
        """Atomically (re)write ``path`` with ``refusals``; remove it when there are none."""
        if not refusals:
            path.unlink(missing_ok=True)
        else:
            tmp = path.with_name(path.name + ".tmp")
            with tmp.open("wb") as f:
                f.write(format_rejected(refusals))
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        path.with_suffix(".reason").unlink(missing_ok=True)  # the older format's sidecar
        if self.fsync and self.directory.exists():
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def files(self) -> list[Path]:
        """Rejected files, oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.lp"), key=lambda p: p.name)

    def pending(self) -> tuple[int, str]:
        """(refused lines kept, the newest one's ``status: reason``); re-read only when the
        directory's files changed."""
        files = self.files()
        sig: list[tuple[str, int, int]] = []
        for p in files:
            with contextlib.suppress(FileNotFoundError):
                st = p.stat()
                sig.append((p.name, st.st_mtime_ns, st.st_size))
        key = tuple(sig)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1], self._cache[2]
        count, newest = 0, ""
        for p in files:
            try:
                entries = read_rejected(p)
            except FileNotFoundError:
                continue
            count += len(entries)
            if entries:
                last = entries[-1]
                newest = f"{last.status if last.status is not None else 'no status'}: {last.reason}"
        self._cache = (key, count, newest)
        return count, newest


@dataclass
class ReplayReport:
    """What :func:`replay` did with one rejected file."""

    path: Path
    written: int = 0
    refused: list[Refusal] = field(default_factory=list)
    #: lines already in an earlier file (or earlier in this one): dropped, not sent twice
    duplicates: int = 0
    #: lines left untried because the endpoint stopped answering (``error`` says how)
    untried: int = 0
    error: str = ""


def replay(
    writer: Writer,
    directory: Path,
    *,
    retries: int = 2,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ReplayReport]:
    """Send the lines of every file in ``directory`` (``<spool>/rejected``) again, oldest first.

    Per file: the lines written are removed from it, the lines still refused stay with the
    endpoint's new reason, the file disappears when nothing is left. A line found twice (in two
    files, or twice in one) is kept once. When the endpoint stops answering, the file keeps what
    was not written and the replay stops there. Two replays never run at once (a lock file), and
    the sink only adds new files, so a running worker is no obstacle; rerunning sends only what is
    still refused.
    """
    store = Rejected(directory)
    reports: list[ReplayReport] = []
    if not directory.is_dir():
        return reports
    seen: set[str] = set()
    with (directory / ".replay.lock").open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        for path in store.files():
            report = ReplayReport(path)
            reports.append(report)
            entries: list[Refusal] = []
            for e in read_rejected(path):
                if e.line in seen:
                    report.duplicates += 1
                else:
                    seen.add(e.line)
                    entries.append(e)
            if not entries:
                store.write(path, [])
                continue
            sent = send(
                writer, [e.line for e in entries], retries=retries, backoff=backoff, sleep=sleep
            )
            now = datetime.now(UTC).isoformat(timespec="seconds")
            refused = [Refusal(r.line, r.status, r.reason, now) for r in sent.refused]
            untried = entries[len(entries) - len(sent.rest) :] if sent.rest else []
            report.refused = refused
            report.untried = len(untried)
            report.written = len(entries) - len(refused) - len(untried)
            report.error = sent.error
            store.write(path, [*refused, *untried])
            if sent.rest:
                break
    return reports


# --------------------------------------------------------------------------- sink


@dataclass(frozen=True, slots=True)
class SinkHealth:
    """What the store's operator alert reports (streams/agents/store.py, alerts/pipeline.py)."""

    #: False while batches go to the spool because the endpoint does not take them (a spool left
    #: by a previous run that is being drained is no failure)
    writing: bool
    #: the failure that turned the sink unhealthy (``status: reason``), empty while writing
    error: str
    #: lines waiting in the spool
    spooled_lines: int
    #: lines kept in ``rejected/`` (refused by the endpoint, waiting for ``envwatch sink replay``)
    rejected_lines: int
    #: the newest rejected line's ``status: reason``
    rejected_reason: str


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
    #: lines per request, learned from the endpoint's 413 answers (None: a batch is one request)
    max_lines: int | None = None
    #: the failure that made the sink unhealthy (``status: reason``)
    error: str = ""
    #: batches written whole at ``max_lines`` before it is doubled again (an endpoint's limit
    #: may be raised; a 413 lowers it again) — envwatch's choice [MEM]
    regrow_after: int = 100
    _pending: int = field(default=0, init=False)
    _streak: int = field(default=0, init=False)
    _rejected: Rejected | None = field(default=None, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _drainer: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._rejected = Rejected(
            self.spool.directory / "rejected", prefix=self.spool.prefix, fsync=self.spool.fsync
        )
        if self.writer is not None and self.spool.files():
            # what a previous run left behind (an outage, a crash): drain it before new data
            self._pending = sum(_count_lines(p) for p in self.spool.files())
            self.healthy = False  # drains first; not "failing" until a probe fails (no alert)
            self._start_drainer()

    @property
    def rejected_store(self) -> Rejected:
        assert self._rejected is not None
        return self._rejected

    def health(self) -> SinkHealth:
        """The sink's state for the operator alert (cheap: call it every few seconds)."""
        count, reason = self.rejected_store.pending()
        with self._lock:
            failing = not self.healthy and bool(self.error)
            return SinkHealth(
                writing=not failing,
                error=self.error if failing else "",
                spooled_lines=max(0, self._pending),
                rejected_lines=count,
                rejected_reason=reason,
            )

    def write(self, lines: Sequence[str]) -> Outcome:
        """Write one batch, or spool what the endpoint did not take. Returns what happened:
        WRITTEN (every line), REJECTED (written but for refused lines, kept in ``rejected/``),
        SPOOLED (some or all spooled; the endpoint is unavailable)."""
        if not lines:
            return Outcome.EMPTY
        with self._lock:
            if self.writer is None:
                self.spool.put(lines)
                self.spooled += len(lines)
                return Outcome.SPOOLED
            if not self.healthy:
                # keep the order: nothing new reaches the endpoint before the spool is empty
                self._put(lines)
                self._start_drainer()
                return Outcome.SPOOLED
            sent = self._send(lines, retries=self.retries)
            self.written += sent.written
            if sent.rest:
                self._put(sent.rest)
                self.healthy = False
                self.error = sent.error
                log.warning(
                    "sink: endpoint unavailable (%s), spooling to %s",
                    sent.error,
                    self.spool.directory,
                )
                self._start_drainer()
                return Outcome.SPOOLED
            return Outcome.REJECTED if sent.refused else Outcome.WRITTEN

    def _put(self, lines: Sequence[str]) -> None:
        self.spool.put(lines)
        self.spooled += len(lines)
        self._pending += len(lines)

    def _send(self, lines: Sequence[str], *, retries: int) -> Sent:
        """:func:`send`, then keep the refused lines aside and learn the endpoint's size."""
        assert self.writer is not None
        sent = send(
            self.writer,
            lines,
            retries=retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            sleep=self.sleep,
            max_lines=self.max_lines,
        )
        if sent.too_large is not None:
            self._streak = 0
            size = max(1, sent.too_large // 2)
            if self.max_lines is None or size < self.max_lines:
                self.max_lines = size
                log.warning("sink: the endpoint finds batches too large; now ≤ %d lines", size)
        elif self.max_lines is not None and not sent.rest:
            self._streak += 1
            if self._streak >= self.regrow_after:
                self._streak = 0
                grown = self.max_lines * 2
                self.max_lines = None if grown >= max(len(lines), self.drain_batch) else grown
                log.info("sink: trying larger requests again (≤ %s lines)", self.max_lines or "all")
        if sent.refused:
            path = self.rejected_store.put(sent.refused)
            self.rejected += len(sent.refused)
            log.error(
                "sink: %d line(s) refused by the endpoint, kept with the reason in %s "
                "(envwatch sink replay re-sends them)",
                len(sent.refused),
                path,
            )
        return sent

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
                    sent = self._send(head, retries=0)
                    done = len(head) - len(sent.rest)
                    self.drained += sent.written
                    self._pending -= done
                    if sent.rest and not done:
                        self.healthy = False
                        self.error = sent.error
                        return False
                    skip = done  # written (or refused and kept aside): not again
            self.spool.roll()
            for path in self.spool.files():
                lines = self.spool.read(path)
                if skip:
                    lines, skip = lines[skip:], 0
                i = 0
                while i < len(lines):
                    chunk = lines[i : i + self.drain_batch]
                    sent = self._send(chunk, retries=0)
                    done = len(chunk) - len(sent.rest)
                    self.drained += sent.written
                    self._pending -= done
                    if sent.rest:
                        self.spool.replace(path, lines[i + done :])
                        self.healthy = False
                        self.error = sent.error
                        return False
                    i += len(chunk)
                path.unlink()
                log.info("sink drained %s (%d lines)", path.name, i)
            self.healthy = True
            self.error = ""
            self._pending = 0
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


def _count_lines(path: Path) -> int:
    try:
        return len(Spool.read(path))
    except (OSError, ValueError):
        return 0
