"""The alerts console: small server-rendered pages at ``/console/…`` (docs/console.md).

No JavaScript and no front-end build: Jinja2 templates (``streams/api/templates/console``) and
plain HTML forms. The console has no data path of its own: every page and every form is one call
of the alerts API (``/api/v1/…``) made *in process* through the same ASGI application with the
logged-in principal's bearer token, so authentication, per-role isolation (an enterprise sees only
its own alerts; any other id is a 404), validation, rate and size limits and the audit are exactly
the API's.

Login: ``POST /console/login`` with the token in a form field (never in a URL) opens a session; the
browser gets only an opaque random session id in a cookie (``HttpOnly``, ``SameSite=Strict``,
``Path=/console``, ``Secure`` when the request came over HTTPS). Sessions live in this process's
memory, expire after :data:`IDLE` without use or :data:`LIFETIME` in all, and end at logout; the
token is kept server-side only to make the API calls. Every form POST carries the session's CSRF
token in a hidden field, compared in constant time; the login form uses a double-submit cookie.
Responses forbid scripts and framing (Content-Security-Policy) and caching.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from alerts.model import fingerprint
from rules.beijing import BEIJING

PREFIX: Final = "/console"
SESSION_COOKIE: Final = "envwatch_console"
LOGIN_COOKIE: Final = "envwatch_console_login"
IDLE: Final = 30 * 60  # seconds without a request before a session ends [MEM]
LIFETIME: Final = 12 * 3600  # seconds a session lasts at most (one duty shift) [MEM]
MAX_SESSIONS: Final = 10_000  # the oldest are dropped beyond this [MEM]
LOGIN_FAILURES: Final = 10  # failed logins per client address … [MEM]
LOGIN_WINDOW: Final = 300.0  # … within this many seconds before the form answers 429 [MEM]
MAX_FORM_FIELD: Final = 4_000  # characters of one form field (the API limits notes to 2,000)

#: No script at all; styles inline; the favicon is a data: URL; forms post only to this origin.
CSP: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)

STATES: Final = (
    ("", "未关闭", "open"),
    ("firing", "告警中", "firing"),
    ("pending", "待定", "pending"),
    ("resolved", "已恢复", "resolved"),
)
SEVERITIES: Final = (
    ("", "全部", "all"),
    ("critical", "严重", "critical"),
    ("warning", "警告", "warning"),
    ("info", "提示", "info"),
)
WEEKDAYS: Final = (
    ("mon", "周一", "Mon"),
    ("tue", "周二", "Tue"),
    ("wed", "周三", "Wed"),
    ("thu", "周四", "Thu"),
    ("fri", "周五", "Fri"),
    ("sat", "周六", "Sat"),
    ("sun", "周日", "Sun"),
)
ACTIONS: Final = {
    "ack": ("已确认", "acknowledged"),
    "assign": ("已指派", "assigned"),
    "unassign": ("已取消指派", "unassigned"),
    "resolve": ("已人工关闭", "resolved by hand"),
}

templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent / "templates"))


def _bjt(value: Any) -> str:
    """An ISO time (from the API) as Beijing wall clock, ``YYYY-MM-DD HH:MM``."""
    if not value:
        return ""
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


templates.env.filters["bjt"] = _bjt


# ----------------------------------------------------------------------------- sessions


@dataclass
class Session:
    """One logged-in browser: opaque id (the cookie), the principal, its CSRF token."""

    id: str
    token: str = field(repr=False)
    name: str
    role: str
    csrf: str = field(repr=False)
    created: float
    last_seen: float
    flashes: list[tuple[str, str]] = field(default_factory=list)


class Sessions:
    """In-memory sessions of this process (a restart logs everyone out)."""

    def __init__(self, *, idle: float = IDLE, lifetime: float = LIFETIME) -> None:
        self.idle = idle
        self.lifetime = lifetime
        self._by_id: dict[str, Session] = {}

    def open(self, token: str, name: str, role: str) -> Session:
        now = time.monotonic()
        self._expire(now)
        while len(self._by_id) >= MAX_SESSIONS:
            self._by_id.pop(next(iter(self._by_id)))
        s = Session(
            id=secrets.token_urlsafe(32),
            token=token,
            name=name,
            role=role,
            csrf=secrets.token_urlsafe(32),
            created=now,
            last_seen=now,
        )
        self._by_id[s.id] = s
        return s

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = time.monotonic()
        s = self._by_id.get(session_id)
        if s is None:
            return None
        if now - s.last_seen > self.idle or now - s.created > self.lifetime:
            self._by_id.pop(session_id, None)
            return None
        s.last_seen = now
        return s

    def close(self, session_id: str) -> None:
        self._by_id.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for sid, s in list(self._by_id.items()):
            if now - s.last_seen > self.idle or now - s.created > self.lifetime:
                del self._by_id[sid]


class LoginThrottle:
    """Failed logins per client address: at most :data:`LOGIN_FAILURES` in :data:`LOGIN_WINDOW`
    seconds, then the login form answers 429 until the oldest failure leaves the window."""

    def __init__(self) -> None:
        self._failures: dict[str, list[float]] = {}

    def blocked(self, client: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures.get(client, []) if now - t < LOGIN_WINDOW]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return len(recent) >= LOGIN_FAILURES

    def failed(self, client: str) -> None:
        if len(self._failures) > MAX_SESSIONS:
            self._failures.clear()
        self._failures.setdefault(client, []).append(time.monotonic())


def throttle_of(request: Request) -> LoginThrottle:
    state = request.app.state
    throttle = getattr(state, "console_login_throttle", None)
    if throttle is None:
        throttle = LoginThrottle()
        state.console_login_throttle = throttle
    return throttle


def sessions_of(request: Request) -> Sessions:
    """The app's session store (created on first use)."""
    state = request.app.state
    store = getattr(state, "console_sessions", None)
    if store is None:
        store = Sessions()
        state.console_sessions = store
    return store


def _session(request: Request) -> Session | None:
    return sessions_of(request).get(request.cookies.get(SESSION_COOKIE))


# ----------------------------------------------------------------------------- the API, in process


async def api_call(
    request: Request,
    token: str,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> httpx.Response:
    """One call of the alerts API through this very application (same auth, isolation, limits)."""
    client = request.client
    peer = (client.host, client.port) if client is not None else ("127.0.0.1", 0)
    transport = httpx.ASGITransport(app=request.app, client=peer)
    async with httpx.AsyncClient(transport=transport, base_url="http://console.internal") as c:
        return await c.request(
            method,
            path,
            params=params,
            json=body,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:300]
    detail = data.get("detail", data) if isinstance(data, dict) else data
    if isinstance(detail, list):
        return "; ".join(
            f"{'.'.join(str(x) for x in e.get('loc', ()) if x != 'body')}: {e.get('msg', '')}"
            if isinstance(e, Mapping)
            else str(e)
            for e in detail
        )
    if isinstance(detail, Mapping):
        return str(detail.get("reason") or detail.get("message") or detail)
    return str(detail)


async def whoami(request: Request, token: str) -> tuple[str, str] | None:
    """(name, role) of the principal holding ``token``, None when the API refuses it.

    The API's own authentication decides; the console only asks it."""
    auth = getattr(getattr(request.app.state, "context", None), "auth", None)
    principal = None
    if auth is not None:
        for attr in ("authenticate", "principal_of", "lookup"):
            fn = getattr(auth, attr, None)
            if callable(fn):
                try:
                    principal = fn(token)
                except Exception:  # a refused token may raise (HTTPException or its own)
                    principal = None
                break
        if principal is not None:
            role = getattr(principal, "role", "")
            return str(getattr(principal, "name", "")), str(getattr(role, "value", role))
    response = await api_call(request, token, "GET", "/api/v1/alerts")
    if response.status_code in (401, 403):
        return None
    return "", ""


# ----------------------------------------------------------------------------- responses


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _page(
    request: Request,
    name: str,
    session: Session | None,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
) -> Response:
    flashes: list[tuple[str, str]] = []
    if session is not None:
        flashes, session.flashes = session.flashes, []
    ctx = {"session": session, "flashes": flashes, **(context or {})}
    response = templates.TemplateResponse(request, f"console/{name}", ctx, status_code=status)
    return _headers(response)


def _error(request: Request, session: Session | None, status: int, message: str) -> Response:
    titles = {
        404: "未找到 Not found",
        403: "禁止 Forbidden",
        400: "请求无效 Bad request",
        429: "请求过多 Too many requests",
        502: "服务错误 Service error",
    }
    ctx = {"status": status, "title": titles.get(status, ""), "message": message}
    return _page(request, "error.html", session, ctx, status=status)


def _redirect(url: str) -> Response:
    return _headers(RedirectResponse(url, status_code=303))


def _to_login(request: Request) -> Response:
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return _redirect(f"{PREFIX}/login?next={quote(path, safe='')}")


def _safe_next(value: str) -> str:
    """Only a path of the console itself (no scheme, no host, no ``//``)."""
    if value.startswith(PREFIX + "/") and "//" not in value and "\\" not in value:
        return value
    return f"{PREFIX}/alerts"


async def _form(request: Request) -> dict[str, Any]:
    form = await request.form()
    out: dict[str, Any] = {}
    for key in set(form.keys()):
        values = [str(v)[:MAX_FORM_FIELD] for v in form.getlist(key) if isinstance(v, str)]
        out[key] = values if key == "weekdays" else (values[0] if values else "")
    return out


def _csrf_ok(session: Session, form: Mapping[str, Any]) -> bool:
    sent = str(form.get("csrf") or "")
    return bool(sent) and hmac.compare_digest(sent.encode(), session.csrf.encode())


def _result_flash(session: Session, response: httpx.Response, done: tuple[str, str]) -> None:
    """A flash message for the API's answer to a command."""
    if response.status_code >= 400:
        session.flashes.append(
            ("error", f"失败 Failed ({response.status_code}): {_detail(response)}")
        )
        return
    data = response.json() if response.content else {}
    status = str(data.get("status", "")) if isinstance(data, Mapping) else ""
    if status == "refused":
        why = " — ".join(str(x) for x in (data.get("reason"), data.get("detail")) if x)
        session.flashes.append(("error", f"被拒绝 Refused: {why}"))
    elif status == "pending":
        session.flashes.append(
            ("ok", f"已提交，处理中 Accepted, not applied yet (command {data.get('command', '')})")
        )
    else:
        session.flashes.append(("ok", f"{done[0]} {done[1].capitalize()}"))


# ----------------------------------------------------------------------------- routes

router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("")
@router.get("/")
async def index() -> Response:
    return _redirect(f"{PREFIX}/alerts")


@router.get("/login")
async def login_form(request: Request, next: str = "") -> Response:
    login_csrf = secrets.token_urlsafe(32)
    response = _page(
        request,
        "login.html",
        None,
        {"login_csrf": login_csrf, "next": _safe_next(next)},
    )
    response.set_cookie(
        LOGIN_COOKIE,
        login_csrf,
        max_age=900,
        path=f"{PREFIX}/login",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    sent = str(form.get("csrf") or "")
    if not cookie or not sent or not hmac.compare_digest(cookie.encode(), sent.encode()):
        return _error(request, None, 400, "表单已过期，请重新登录 The form expired; log in again.")
    client = request.client.host if request.client is not None else ""
    throttle = throttle_of(request)
    if throttle.blocked(client):
        return _error(
            request, None, 429, "登录失败次数过多，请稍后再试 Too many failed logins; try later."
        )
    token = str(form.get("token") or "").strip()
    who = await whoami(request, token) if token else None
    if who is None:
        throttle.failed(client)
        login_csrf = secrets.token_urlsafe(32)
        ctx: dict[str, Any] = {
            "login_csrf": login_csrf,
            "next": _safe_next(str(form.get("next") or "")),
            "flashes": [("error", "令牌无效 The token was refused.")],
        }
        response = _page(request, "login.html", None, ctx, status=401)
        response.set_cookie(
            LOGIN_COOKIE,
            login_csrf,
            max_age=900,
            path=f"{PREFIX}/login",
            httponly=True,
            samesite="strict",
            secure=_secure(request),
        )
        return response
    session = sessions_of(request).open(token, *who)
    response = _redirect(_safe_next(str(form.get("next") or "")))
    response.set_cookie(
        SESSION_COOKIE,
        session.id,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _redirect(f"{PREFIX}/login")
    if not _csrf_ok(session, await _form(request)):
        return _error(request, session, 403, "CSRF 校验失败 CSRF check failed.")
    sessions_of(request).close(session.id)
    response = _redirect(f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


async def _get(request: Request, session: Session, path: str, **params: str) -> httpx.Response:
    return await api_call(
        request, session.token, "GET", path, params={k: v for k, v in params.items() if v}
    )


def _refused(request: Request, session: Session, response: httpx.Response) -> Response | None:
    """The page for an API answer that is not 200 (None when it is)."""
    if response.status_code == 200:
        return None
    if response.status_code == 401:
        sessions_of(request).close(session.id)
        return _to_login(request)
    if response.status_code == 404:
        return _error(request, session, 404, "没有这条记录 No such alert.")
    if response.status_code == 403:
        return _error(request, session, 403, _detail(response))
    return _error(request, session, 502, f"{response.status_code}: {_detail(response)}")


@router.get("/alerts")
async def alerts_page(
    request: Request,
    state: str = "",
    locality: str = "",
    rule: str = "",
    severity: str = "",
    source: str = "",
) -> Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    filters = {
        "state": state,
        "locality": locality,
        "rule": rule,
        "severity": severity,
        "source": source,
    }
    response = await _get(request, session, "/api/v1/alerts", **filters)
    refused = _refused(request, session, response)
    if refused is not None:
        return refused
    data = response.json()
    items = data.get("items", []) if isinstance(data, Mapping) else data
    ctx = {"alerts": items, "filters": filters, "states": STATES, "severities": SEVERITIES}
    return _page(request, "alerts.html", session, ctx)


@router.get("/alerts/find")
async def find_alert(
    request: Request,
    locality: str = "",
    rule: str = "",
    source: str = "",
    factor: str = "",
    period: str = "",
) -> Response:
    """From an alert's identity tags (a Grafana row) to its page: the fingerprint of
    ``alerts.model.fingerprint``, ``none`` meaning an empty factor or period."""
    if _session(request) is None:
        return _to_login(request)
    labels = {
        "locality": locality,
        "rule": rule,
        "source": source,
        "factor": "" if factor == "none" else factor,
        "period": "" if period == "none" else period,
    }
    return _redirect(f"{PREFIX}/alerts/{fingerprint(labels)}")


@router.get("/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: str) -> Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    response = await _get(request, session, f"/api/v1/alerts/{quote(alert_id, safe='')}")
    refused = _refused(request, session, response)
    if refused is not None:
        return refused
    ctx = {"alert": response.json(), "can_act": session.role != "emergency"}
    return _page(request, "alert.html", session, ctx)


@router.post("/alerts/{alert_id}/{action}")
async def alert_action(request: Request, alert_id: str, action: str) -> Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    form = await _form(request)
    if not _csrf_ok(session, form):
        return _error(request, session, 403, "CSRF 校验失败 CSRF check failed.")
    if action not in ACTIONS:
        return _error(request, session, 404, "没有这个操作 No such action.")
    body: dict[str, Any] = {"note": str(form.get("note") or "")}
    if action == "assign":
        body["assignee"] = str(form.get("assignee") or "")
    page = f"{PREFIX}/alerts/{quote(alert_id, safe='')}"
    response = await api_call(
        request,
        session.token,
        "POST",
        f"/api/v1/alerts/{quote(alert_id, safe='')}/{action}",
        body=body,
    )
    if response.status_code == 404:
        return _error(request, session, 404, "没有这条记录 No such alert.")
    _result_flash(session, response, ACTIONS[action])
    return _redirect(page)


# ----------------------------------------------------------------------------- silences


@router.get("/silences")
async def silences_page(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    response = await _get(request, session, "/api/v1/silences")
    refused = _refused(request, session, response)
    if refused is not None:
        return refused
    data = response.json()
    items = data.get("items", []) if isinstance(data, Mapping) else data
    silences = [s for s in items if not _is_maintenance(s)]
    return _page(request, "silences.html", session, {"silences": silences, "weekdays": WEEKDAYS})


def _is_maintenance(silence: Mapping[str, Any]) -> bool:
    """A maintenance window (the API's ``maintenance`` flag; ids ``maint-…``)."""
    return bool(silence.get("maintenance")) or str(silence.get("id", "")).startswith("maint-")


def _local_input(value: str) -> str | None:
    """A ``datetime-local`` field (Beijing wall clock) as ISO 8601 with the offset."""
    text = value.strip()
    if not text:
        return None
    t = datetime.fromisoformat(text)
    return (t.replace(tzinfo=BEIJING) if t.tzinfo is None else t).isoformat()


@router.post("/silences")
async def create_silence(request: Request) -> Response:
    from streams.cli.alerts import silence_body

    session = _session(request)
    if session is None:
        return _to_login(request)
    form = await _form(request)
    if not _csrf_ok(session, form):
        return _error(request, session, 403, "CSRF 校验失败 CSRF check failed.")
    weekdays = [d for d in form.get("weekdays") or [] if d]
    try:
        body = silence_body(
            [m for m in str(form.get("matchers") or "").splitlines() if m.strip()],
            now=datetime.now(UTC),
            starts=_local_input(str(form.get("starts") or "")),
            ends=_local_input(str(form.get("ends") or "")),
            duration=str(form.get("for") or "").strip() or None,
            weekly=",".join(weekdays) if weekdays else None,
            daily_from=str(form.get("from") or "").strip() or None,
            daily_to=str(form.get("to") or "").strip() or None,
            comment=str(form.get("comment") or ""),
        )
    except ValueError as exc:
        session.flashes.append(("error", f"无效 Invalid: {exc}"))
        return _redirect(f"{PREFIX}/silences")
    response = await api_call(request, session.token, "POST", "/api/v1/silences", body=body)
    _result_flash(session, response, ("已创建静默", "silence created"))
    return _redirect(f"{PREFIX}/silences")


@router.post("/silences/{silence_id}/expire")
async def expire_silence(request: Request, silence_id: str) -> Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    if not _csrf_ok(session, await _form(request)):
        return _error(request, session, 403, "CSRF 校验失败 CSRF check failed.")
    response = await api_call(
        request, session.token, "DELETE", f"/api/v1/silences/{quote(silence_id, safe='')}"
    )
    _result_flash(session, response, ("已结束静默", "silence expired"))
    return _redirect(f"{PREFIX}/silences")


# ----------------------------------------------------------------------------- maintenance


@router.get("/maintenance")
async def maintenance_page(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    response = await _get(request, session, "/api/v1/silences")
    refused = _refused(request, session, response)
    if refused is not None:
        return refused
    data = response.json()
    items = data.get("items", []) if isinstance(data, Mapping) else data
    windows = [s for s in items if _is_maintenance(s)]
    return _page(request, "maintenance.html", session, {"windows": windows})


@router.post("/maintenance")
async def declare_maintenance(request: Request) -> Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    form = await _form(request)
    if not _csrf_ok(session, form):
        return _error(request, session, 403, "CSRF 校验失败 CSRF check failed.")
    try:
        starts = _local_input(str(form.get("from") or ""))
        ends = _local_input(str(form.get("to") or ""))
    except ValueError as exc:
        session.flashes.append(("error", f"无效 Invalid: {exc}"))
        return _redirect(f"{PREFIX}/maintenance")
    body = {
        "source": str(form.get("source") or "").strip(),
        "starts_at": starts,
        "ends_at": ends,
        "note": str(form.get("note") or ""),
    }
    response = await api_call(request, session.token, "POST", "/api/v1/maintenance", body=body)
    _result_flash(session, response, ("已声明维护", "maintenance declared"))
    return _redirect(f"{PREFIX}/maintenance")


@router.post("/maintenance/{window_id}/end")
async def end_maintenance(request: Request, window_id: str) -> Response:
    session = _session(request)
    if session is None:
        return _to_login(request)
    if not _csrf_ok(session, await _form(request)):
        return _error(request, session, 403, "CSRF 校验失败 CSRF check failed.")
    response = await api_call(
        request, session.token, "DELETE", f"/api/v1/maintenance/{quote(window_id, safe='')}"
    )
    _result_flash(session, response, ("已结束维护", "maintenance ended"))
    return _redirect(f"{PREFIX}/maintenance")
