"""The alerts service ``envwatch api``: FastAPI app factory (docs/api.md).

Interfaces for the console (streams/api/console.py) and other in-process users:

* ``create_app(ctx)`` builds the app; ``app.state.context`` is the :class:`Context`.
* :class:`Context` holds ``settings`` (:class:`streams.api.settings.ApiSettings`), ``view``
  (:class:`streams.api.view.View`, the materialised view: ``list_alerts(principal, Filters)``,
  ``get_alert(principal, id)`` (None when missing *or* not visible), ``list_warnings``,
  ``list_silences``, ``result_for``), ``auth`` (:class:`streams.api.auth.Auth`:
  ``authenticate(token) -> Principal | None``), ``sender`` (an object with
  ``async send(Command)``: Kafka in production) and ``sources`` (catalogue: source id →
  :class:`Source`).
* :func:`principal` is the FastAPI dependency giving the request's
  :class:`streams.api.auth.Principal` (401 with ``WWW-Authenticate: Bearer`` otherwise).

The service never writes alert state: each accepted POST/DELETE becomes one command (or one per
locality) produced to ``aggregates``; the answer waits up to ``command_wait`` seconds for its
``CommandResult`` to appear in the view.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alerts.commands import Command, maintenance_id
from alerts.silences import Matcher, MatchOp, Silence
from streams.api.auth import Auth, Principal, Role
from streams.api.models import (
    Accepted,
    AlertDetail,
    AlertList,
    AssignIn,
    CommandOut,
    HistoryOut,
    MaintenanceIn,
    Note,
    RegionalWarningIn,
    SilenceIn,
    SilenceList,
    SilenceOut,
)
from streams.api.settings import ApiSettings
from streams.api.view import AlertRecord, Filters, View

NOT_FOUND = "not found"  # one body for every 404: a missing id and another's look alike


class Sender(Protocol):
    async def send(self, cmd: Command) -> None: ...


@dataclass(frozen=True)
class Source:
    id: str
    locality: str
    enterprise: str | None
    kind: str  # outlet | monitor | station | section


def sources_from_catalog(cat: Any) -> dict[str, Source]:
    """Every catalogued source (outlets, monitors, stations, sections) with its owner."""
    out: dict[str, Source] = {}
    if cat is None:
        return out
    for loc in cat.localities:
        for ent in cat.enterprises_of(loc.id):
            for o in ent.outlets:
                out[o.id] = Source(o.id, loc.id, ent.id, "outlet")
        for m in cat.monitors_of(loc.id):
            out[m.id] = Source(m.id, loc.id, m.enterprise or None, "monitor")
        for st in cat.stations_of(loc.id):
            out[st.id] = Source(st.id, loc.id, None, "station")
        for sec in cat.sections_of(loc.id):
            out[sec.id] = Source(sec.id, loc.id, None, "section")
    return out


class Bucket:
    """Token bucket per principal (monotonic clock)."""

    def __init__(self, burst: int, per_minute: float) -> None:
        self.burst, self.rate = float(burst), per_minute / 60.0
        self.state: dict[str, tuple[float, float]] = {}

    def take(self, who: str) -> float:
        """0 when allowed, else seconds until a token is there."""
        now = time.monotonic()
        tokens, last = self.state.get(who, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self.state[who] = (tokens - 1.0, now)
            return 0.0
        self.state[who] = (tokens, now)
        return (1.0 - tokens) / self.rate


@dataclass
class Metrics:
    requests: dict[tuple[str, int], int] = field(default_factory=dict)
    commands: dict[tuple[str, str], int] = field(default_factory=dict)
    unauthorized: int = 0
    rate_limited: int = 0


@dataclass
class Context:
    settings: ApiSettings
    view: View
    auth: Auth
    sender: Sender
    sources: dict[str, Source] = field(default_factory=dict)
    localities: tuple[str, ...] = ()  # catalogue localities (fan-out of global silences)
    enterprise_localities: dict[str, tuple[str, ...]] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)
    bucket: Bucket | None = None
    on_start: Callable[[], Awaitable[None]] | None = None
    on_stop: Callable[[], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        if self.bucket is None:
            self.bucket = Bucket(self.settings.rate_burst, self.settings.rate_per_minute)
        self.view.source_enterprise = {
            k: s.enterprise for k, s in self.sources.items() if s.enterprise
        }
        if not self.enterprise_localities:
            ent: dict[str, set[str]] = {}
            for s in self.sources.values():
                if s.enterprise:
                    ent.setdefault(s.enterprise, set()).add(s.locality)
            self.enterprise_localities = {k: tuple(sorted(v)) for k, v in ent.items()}

    def all_localities(self) -> list[str]:
        return sorted(set(self.localities) | set(self.view.localities))


class BodyLimit:
    """413 for a request body over ``limit`` bytes (Content-Length or counted while read)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", ()):
            if k == b"content-length" and v.isdigit() and int(v) > self.limit:
                await _too_large(send)
                return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        # read the whole body first (at most limit + one chunk), then hand it on
        chunks: list[bytes] = []
        seen = 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            chunk = msg.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await _too_large(send)
                return
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(send: Send) -> None:
    await JSONResponse({"detail": "request body too large"}, status_code=413)(
        {"type": "http"}, _nothing, send
    )


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def context_of(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def principal(request: Request) -> Principal:
    """The request's principal (bearer token); 401 with ``WWW-Authenticate: Bearer``."""
    ctx = context_of(request)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    p = ctx.auth.authenticate(token.strip() if scheme.lower() == "bearer" else "")
    if p is None:
        ctx.metrics.unauthorized += 1
        raise HTTPException(
            401, "missing or unknown bearer token", headers={"WWW-Authenticate": "Bearer"}
        )
    return p


Who = Annotated[Principal, Depends(principal)]


def limited(request: Request, p: Who) -> Principal:
    """The principal, after its token bucket allowed one more command (429 otherwise)."""
    ctx = context_of(request)
    assert ctx.bucket is not None
    wait = ctx.bucket.take(p.name)
    if wait > 0:
        ctx.metrics.rate_limited += 1
        raise HTTPException(
            429, "too many commands", headers={"Retry-After": str(max(1, math.ceil(wait)))}
        )
    return p


Actor = Annotated[Principal, Depends(limited)]


def alert_out(ctx: Context, p: Principal, r: AlertRecord) -> dict[str, Any]:
    base = ctx.settings.external_url.rstrip("/")
    return {
        "id": r.fingerprint,
        "kind": r.kind,
        "rule": r.labels.get("rule", ""),
        "rule_kind": r.labels.get("rule_kind", ""),
        "source": r.source,
        "source_name": r.name("source_name") or r.source,
        "factor": r.labels.get("factor", ""),
        "period": r.labels.get("period", ""),
        "locality": r.locality,
        "enterprise": r.enterprise,
        "severity": r.severity,
        "level": r.level,
        "state": r.state,
        "summary": r.annotations.get("summary", ""),
        "summary_en": r.annotations.get("summary_en", ""),
        "since": r.since,
        "fired_at": r.fired_at,
        "resolved_at": r.resolved_at,
        "acknowledged": r.ack_by is not None,
        "acknowledged_by": r.ack_by,
        "acknowledged_at": r.ack_at,
        "ack_note": r.ack_note,
        "assignee": r.assignee,
        "suppressed_by": list(r.suppressed_by),
        "escalations": r.escalations,
        "receivers": ctx.view.receivers_for(p, r),
        "url": f"{base}/console/alerts/{r.fingerprint}",
    }


def silence_out(loc: str, s: Silence) -> SilenceOut:
    return SilenceOut(
        id=s.id,
        locality=loc,
        matchers=[{"name": m.name, "op": m.op.value, "value": m.value} for m in s.matchers],
        created_by=s.created_by,
        comment=s.comment,
        starts_at=s.starts_at,
        ends_at=s.ends_at,
        recurrence=s.recurrence.model_dump(mode="json") if s.recurrence else None,
        maintenance=s.id.startswith("maint-"),
    )


def _not_found() -> HTTPException:
    return HTTPException(404, NOT_FOUND)


def _command(p: Principal, action: str, locality: str, note: str = "", **kw: Any) -> Command:
    return Command(
        id=uuid.uuid4().hex,
        action=action,
        locality=locality,
        actor=p.name,
        role=p.role.value,
        enterprise=p.enterprise,
        note=note,
        issued_at=datetime.now(UTC),
        **kw,
    )


async def _send(ctx: Context, cmds: list[Command], **extra: Any) -> Accepted:
    for c in cmds:
        await ctx.sender.send(c)
        key = (c.action, c.locality)
        ctx.metrics.commands[key] = ctx.metrics.commands.get(key, 0) + 1
    first = cmds[0]
    res = await ctx.view.wait_result(first.id, ctx.settings.command_wait)
    for c in cmds[1:]:
        if res is None:
            break
        await ctx.view.wait_result(c.id, ctx.settings.command_wait)
    if res is None:
        return Accepted(command=first.id, status="pending", commands=[c.id for c in cmds], **extra)
    return Accepted(
        command=first.id,
        status=res.status,
        reason=None if res.reason is None else res.reason.value,
        detail=res.detail,
        commands=[c.id for c in cmds],
        **extra,
    )


def create_app(ctx: Context) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ctx.on_start is not None:
            await ctx.on_start()
        try:
            yield
        finally:
            if ctx.on_stop is not None:
                await ctx.on_stop()

    app = FastAPI(
        title="envwatch alerts API",
        version="1",
        description="Alerts, silences and maintenance windows (docs/api.md).",
        lifespan=lifespan,
    )
    app.state.context = ctx
    app.add_middleware(BodyLimit, limit=ctx.settings.max_body)

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Any:
        response = await call_next(request)
        route = request.scope.get("route")
        key = (getattr(route, "path", "other"), response.status_code)
        ctx.metrics.requests[key] = ctx.metrics.requests.get(key, 0) + 1
        return response

    # ------------------------------------------------------------------ health

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        if ctx.view.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "catching up"}, status_code=503)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(_exposition(ctx), media_type="text/plain; version=0.0.4")

    # ------------------------------------------------------------------ alerts

    @app.get("/api/v1/alerts", response_model=AlertList)
    def list_alerts(
        p: Who,
        state: Annotated[str | None, Query(description="pending|firing|resolved|all")] = None,
        locality: str | None = None,
        source: str | None = None,
        rule: str | None = None,
        severity: str | None = None,
        since: datetime | None = None,
    ) -> dict[str, Any]:
        if since is not None and since.tzinfo is None:
            raise HTTPException(422, "since must carry a timezone")
        f = Filters(state, locality, source, rule, severity, since)
        items = [alert_out(ctx, p, r) for r in ctx.view.list_alerts(p, f)]
        return {"items": items, "count": len(items)}

    @app.get("/api/v1/alerts/{alert_id}", response_model=AlertDetail)
    def get_alert(alert_id: str, p: Who) -> dict[str, Any]:
        r = ctx.view.get_alert(p, alert_id)
        if r is None:
            raise _not_found()
        out = alert_out(ctx, p, r)
        out["history"] = [HistoryOut(**vars(h)) for h in r.history]
        return out

    def actionable(p: Principal, alert_id: str) -> AlertRecord:
        r = ctx.view.get_alert(p, alert_id)
        if r is None:
            raise _not_found()
        if p.role is Role.EMERGENCY or r.kind != "alert":
            raise HTTPException(403, "this role cannot act on alerts")
        return r

    @app.post("/api/v1/alerts/{alert_id}/ack", status_code=202, response_model=Accepted)
    async def ack(alert_id: str, body: Note, p: Actor) -> Accepted:
        r = actionable(p, alert_id)
        return await _send(
            ctx, [_command(p, "ack", r.locality, body.note, fingerprint=r.fingerprint)]
        )

    @app.post("/api/v1/alerts/{alert_id}/unack", status_code=202, response_model=Accepted)
    async def unack(alert_id: str, body: Note, p: Actor) -> Accepted:
        r = actionable(p, alert_id)
        cmd = _command(p, "unack", r.locality, body.note, fingerprint=r.fingerprint)
        return await _send(ctx, [cmd])

    @app.post("/api/v1/alerts/{alert_id}/assign", status_code=202, response_model=Accepted)
    async def assign(alert_id: str, body: AssignIn, p: Actor) -> Accepted:
        r = actionable(p, alert_id)
        cmd = _command(
            p, "assign", r.locality, body.note, fingerprint=r.fingerprint, assignee=body.assignee
        )
        return await _send(ctx, [cmd])

    @app.post("/api/v1/alerts/{alert_id}/unassign", status_code=202, response_model=Accepted)
    async def unassign(alert_id: str, p: Actor, body: Note | None = None) -> Accepted:
        r = actionable(p, alert_id)
        note = body.note if body else ""
        cmd = _command(p, "unassign", r.locality, note, fingerprint=r.fingerprint)
        return await _send(ctx, [cmd])

    @app.post("/api/v1/alerts/{alert_id}/resolve", status_code=202, response_model=Accepted)
    async def resolve(alert_id: str, body: Note, p: Actor) -> Accepted:
        r = actionable(p, alert_id)
        cmd = _command(p, "resolve", r.locality, body.note, fingerprint=r.fingerprint)
        return await _send(ctx, [cmd])

    @app.get("/api/v1/progress")
    def progress(p: Who, locality: str | None = None) -> dict[str, Any]:
        """The plans' progress as of each locality's newest closed day (alerts/progress_live.py):
        per indicator the year-to-date value, the 2025 target and its provenance, the projection
        and the status. Enterprises: 403."""
        if p.role is Role.ENTERPRISE:
            raise HTTPException(403, "the plans' progress is for the authorities")
        items = ctx.view.list_progress(p, locality)
        return {"items": items, "count": len(items)}

    @app.get("/api/v1/warnings", response_model=AlertList)
    def warnings(p: Who) -> dict[str, Any]:
        items = [alert_out(ctx, p, r) for r in ctx.view.list_warnings(p)]
        return {"items": items, "count": len(items)}

    # ------------------------------------------------------------------ silences

    @app.get("/api/v1/silences", response_model=SilenceList)
    def list_silences(p: Who) -> SilenceList:
        return SilenceList(items=[silence_out(loc, s) for loc, s in ctx.view.list_silences(p)])

    @app.post("/api/v1/silences", status_code=202, response_model=Accepted)
    async def add_silence(body: SilenceIn, p: Actor) -> Accepted:
        matchers = list(body.matchers)
        eq = {m.name: m.value for m in matchers if m.op is MatchOp.EQ}
        if p.role is Role.EMERGENCY:
            raise HTTPException(403, "this role cannot silence")
        if p.role is Role.ENTERPRISE:
            assert p.enterprise is not None
            if "enterprise" in eq and eq["enterprise"] != p.enterprise:
                raise HTTPException(403, "an enterprise silences only its own sources")
            if "enterprise" not in eq:
                matchers.append(Matcher(name="enterprise", op=MatchOp.EQ, value=p.enterprise))
            locs = list(ctx.enterprise_localities.get(p.enterprise, ()))
            if "locality" in eq:
                locs = [eq["locality"]] if eq["locality"] in locs else []
            if not locs:
                raise HTTPException(403, "no locality holds this enterprise's sources")
        elif p.role is Role.DUTY and p.locality is not None:
            if "locality" in eq and eq["locality"] != p.locality:
                raise HTTPException(403, "a duty officer silences only within its locality")
            if "locality" not in eq:
                matchers.append(Matcher(name="locality", op=MatchOp.EQ, value=p.locality))
            locs = [p.locality]
        else:  # admin, duty of every locality
            locs = [eq["locality"]] if "locality" in eq else ctx.all_localities()
            if not locs:
                raise HTTPException(409, "no locality known yet")
        starts = body.starts_at or datetime.now(UTC)
        if body.ends_at is not None and body.ends_at <= starts:
            raise HTTPException(422, "ends_at must be after starts_at")
        if body.ends_at is None and body.recurrence is None:
            raise HTTPException(422, "a one-off silence needs ends_at")
        try:
            silence = Silence(
                id="s-" + uuid.uuid4().hex[:16],
                matchers=tuple(matchers),
                created_by=p.name,
                comment=body.comment,
                starts_at=starts,
                ends_at=body.ends_at,
                recurrence=body.recurrence,
            )
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        cmds = [_command(p, "silence", loc, body.comment, silence=silence) for loc in locs]
        return await _send(ctx, cmds, silence=silence.id)

    @app.delete("/api/v1/silences/{silence_id}", status_code=202, response_model=Accepted)
    async def delete_silence(silence_id: str, p: Actor) -> Accepted:
        if p.role is Role.EMERGENCY:
            raise _not_found()
        held = [(loc, s) for loc, s in ctx.view.list_silences(p) if s.id == silence_id]
        if not held:
            raise _not_found()
        maint = silence_id.startswith("maint-")
        action = "maintenance_end" if maint else "unsilence"
        cmds = [_command(p, action, loc, silence_id=silence_id) for loc, _ in held]
        return await _send(ctx, cmds)

    # ------------------------------------------------------------------ maintenance

    def may_maintain(p: Principal, src: Source | None) -> Source:
        if src is None or src.kind not in ("outlet", "monitor"):
            raise _not_found()
        if p.role is Role.ADMIN:
            return src
        if p.role is Role.ENTERPRISE and src.enterprise == p.enterprise:
            return src
        if p.role is Role.DUTY and (p.locality is None or p.locality == src.locality):
            return src
        raise _not_found()

    @app.post("/api/v1/maintenance", status_code=202, response_model=Accepted)
    async def maintenance(body: MaintenanceIn, p: Actor) -> Accepted:
        src = may_maintain(p, ctx.sources.get(body.source))
        if body.starts_at is not None and body.ends_at <= body.starts_at:
            raise HTTPException(422, "ends_at must be after starts_at")
        cid = uuid.uuid4().hex
        cmd = _command(
            p,
            "maintenance_start",
            src.locality,
            body.note,
            source=src.id,
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            silence_id=maintenance_id(src.id, cid),
        )
        return await _send(ctx, [cmd], silence=cmd.silence_id)

    @app.delete("/api/v1/maintenance/{window_id}", status_code=202, response_model=Accepted)
    async def end_maintenance(window_id: str, p: Actor) -> Accepted:
        for loc, ss in sorted(ctx.view.silences.items()):
            for s in ss:
                if s.id != window_id or not s.id.startswith("maint-"):
                    continue
                source = next((m.value for m in s.matchers if m.name == "source"), "")
                src = ctx.sources.get(source) or Source(source, loc, None, "monitor")
                may_maintain(p, src)
                cmd = _command(p, "maintenance_end", loc, silence_id=window_id)
                return await _send(ctx, [cmd])
        raise _not_found()

    @app.post("/api/v1/regional-warnings", status_code=202, response_model=Accepted)
    async def regional_warning(body: RegionalWarningIn, p: Actor) -> Accepted:
        """A regional warning for an area: one command per locality of it (admin only — the
        account of the province or regional centre)."""
        if p.role is not Role.ADMIN:
            raise HTTPException(403, "only an admin principal issues regional warnings")
        known = set(ctx.all_localities())
        unknown = sorted(set(body.area) - known)
        if unknown:
            raise HTTPException(422, f"area: unknown localities {unknown}")
        if (
            body.starts_at is not None
            and body.ends_at is not None
            and body.ends_at <= body.starts_at
        ):
            raise HTTPException(422, "ends_at must be after starts_at")
        area = tuple(sorted(set(body.area)))
        cmds = [
            _command(
                p,
                "regional_warning",
                loc,
                body.note,
                regional_id=body.id,
                regional_level=body.level,
                issuer=body.issuer,
                area=area,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
            )
            for loc in area
        ]
        return await _send(ctx, cmds)

    # ------------------------------------------------------------------ commands

    @app.get("/api/v1/commands/{command_id}", response_model=CommandOut)
    def get_command(command_id: str, p: Who) -> CommandOut:
        res = ctx.view.result_for(p, command_id)
        if res is None:
            raise _not_found()
        return CommandOut(
            command=res.command.model_dump(mode="json"),
            status=res.status,
            reason=None if res.reason is None else res.reason.value,
            detail=res.detail,
            at=res.at,
            transitions=list(res.transitions),
        )

    from streams.api import console  # the console's pages (helper CONSOLE), same app

    app.include_router(console.router)
    return app


def _exposition(ctx: Context) -> str:
    v = ctx.view
    lines = [
        "# HELP envwatch_api_ready 1 once the view caught up with the topics' end at start.",
        "# TYPE envwatch_api_ready gauge",
        f"envwatch_api_ready {int(v.ready)}",
        "# HELP envwatch_api_view_records_total Records folded into the view.",
        "# TYPE envwatch_api_view_records_total counter",
        f"envwatch_api_view_records_total {v.applied}",
        "# HELP envwatch_api_alerts Alerts in the view by state.",
        "# TYPE envwatch_api_alerts gauge",
    ]
    states: dict[str, int] = {}
    for r in v.alerts.values():
        states[r.state] = states.get(r.state, 0) + 1
    for s in ("pending", "firing", "resolved"):
        lines.append(f'envwatch_api_alerts{{state="{s}"}} {states.get(s, 0)}')
    lines += [
        "# HELP envwatch_api_requests_total HTTP requests by route and status.",
        "# TYPE envwatch_api_requests_total counter",
    ]
    for (route, code), n in sorted(ctx.metrics.requests.items()):
        lines.append(f'envwatch_api_requests_total{{route="{_esc(route)}",code="{code}"}} {n}')
    lines += [
        "# HELP envwatch_api_commands_total Commands produced by action and locality.",
        "# TYPE envwatch_api_commands_total counter",
    ]
    for (action, loc), n in sorted(ctx.metrics.commands.items()):
        lines.append(f'envwatch_api_commands_total{{action="{action}",locality="{_esc(loc)}"}} {n}')
    lines += [
        "# TYPE envwatch_api_unauthorized_total counter",
        f"envwatch_api_unauthorized_total {ctx.metrics.unauthorized}",
        "# TYPE envwatch_api_rate_limited_total counter",
        f"envwatch_api_rate_limited_total {ctx.metrics.rate_limited}",
    ]
    return "\n".join(lines) + "\n"


def _esc(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def retention(settings: ApiSettings) -> timedelta:
    return timedelta(hours=settings.retention_hours)
