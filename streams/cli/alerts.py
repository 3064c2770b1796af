"""``envwatch alerts …``: the alerts service's command-line client (docs/console.md §CLI).

Every command talks to ``envwatch api`` over HTTP (``--api URL`` or ``ENVWATCH_API_URL``) with a
bearer token (``--token`` or ``ENVWATCH_API_TOKEN``; never printed). Output is a rich table, or the
API's JSON with ``--json``. Times given on the command line are ISO 8601 (without an offset: Beijing
time), ``now``, or a duration from now (``+2h``, ``-30m``; ``--since 24h`` means 24 hours ago).

Exit status (:class:`Exit`): 0 done (a command accepted, applied or still pending), 1 refused by the
locality stage, 2 the API cannot be reached or answered an unexpected error, 3 the token was
refused (401/403), 4 not found (404: no such alert or silence *for this token*), 5 rate limited
(429), 6 invalid request (422, or arguments the client rejects before sending).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from enum import IntEnum
from typing import Annotated, Any, NoReturn

import typer

from rules.beijing import BEIJING
from streams.cli._app import app

alerts_app = typer.Typer(
    help="Alerts: list, show, acknowledge, assign, resolve, silence; maintenance windows "
    "(talks to `envwatch api`).",
    no_args_is_help=True,
)
app.add_typer(alerts_app, name="alerts")
maint_app = typer.Typer(help="Maintenance windows of an outlet or monitor.", no_args_is_help=True)
alerts_app.add_typer(maint_app, name="maint")


class Exit(IntEnum):
    """Exit status of ``envwatch alerts``."""

    OK = 0
    REFUSED = 1
    UNREACHABLE = 2
    UNAUTHORIZED = 3
    NOT_FOUND = 4
    RATE_LIMITED = 5
    INVALID = 6


Api = Annotated[
    str,
    typer.Option("--api", envvar="ENVWATCH_API_URL", help="alerts service base URL"),
]
Token = Annotated[
    str,
    typer.Option(
        "--token",
        envvar="ENVWATCH_API_TOKEN",
        help="bearer token (prefer the env variable: a command line is visible to others)",
        show_default=False,
        show_envvar=True,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="print the API's JSON")]
Note = Annotated[str, typer.Option("--note", "-n", help="why (kept in the alert's history)")]

DEFAULT_API = "http://127.0.0.1:8090"  # envwatch api's default (ApiSettings.port)
TIMEOUT_SECONDS = 30.0


# ----------------------------------------------------------------------------- parsing

_DURATION = re.compile(r"^([+-]?)(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1.5d``, ``1w`` → timedelta (a sign is allowed)."""
    m = _DURATION.match(text.strip().lower())
    if not m:
        raise ValueError(f"not a duration (e.g. 30m, 2h, 1d): {text!r}")
    seconds = float(m.group(2)) * _UNIT_SECONDS[m.group(3)]
    return timedelta(seconds=-seconds if m.group(1) == "-" else seconds)


def parse_time(text: str, now: datetime, *, ago: bool = False) -> datetime:
    """An ISO 8601 time (no offset: Beijing wall clock), ``now``, or ``±duration`` from ``now``;
    with ``ago`` an unsigned duration counts back (``--since 24h``)."""
    t = text.strip()
    if t.lower() == "now":
        return now
    if _DURATION.match(t.lower()):
        delta = parse_duration(t)
        if ago and t[0] not in "+-":
            delta = -delta
        return now + delta
    try:
        value = datetime.fromisoformat(t)
    except ValueError:
        raise ValueError(f"not a time (ISO 8601, now, or +2h / -30m): {text!r}") from None
    return value.replace(tzinfo=BEIJING) if value.tzinfo is None else value


_MATCHER = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)(.*)$")


def parse_matcher(text: str) -> dict[str, str]:
    """``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex`` (Alertmanager)."""
    m = _MATCHER.match(text.strip())
    if not m:
        raise ValueError(f"not a matcher (name=value, name!=value, name=~re, name!~re): {text!r}")
    value = m.group(3).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return {"name": m.group(1), "op": m.group(2), "value": value}


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_weekdays(text: str) -> list[str]:
    """``MON,TUE`` or ``MON-FRI`` → ``["mon", "tue", …]`` (Monday first)."""
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    days: set[str] = set()
    for part in parts:
        a, sep, b = part.partition("-")
        if a[:3] not in _DAYS or (sep and b[:3] not in _DAYS):
            raise ValueError(f"not a weekday list (MON,TUE or MON-FRI): {text!r}")
        if sep:
            i, j = _DAYS.index(a[:3]), _DAYS.index(b[:3])
            if j < i:
                raise ValueError(f"a weekday range runs Monday to Sunday: {part!r}")
            days.update(_DAYS[i : j + 1])
        else:
            days.add(a[:3])
    if not days:
        raise ValueError("no weekdays given")
    return [d for d in _DAYS if d in days]


def _clock(text: str) -> str:
    try:
        return time.fromisoformat(text.strip()).strftime("%H:%M")
    except ValueError:
        raise ValueError(f"not a wall-clock time (HH:MM, Beijing): {text!r}") from None


def silence_body(
    matchers: Sequence[str],
    *,
    now: datetime,
    starts: str | None = None,
    ends: str | None = None,
    duration: str | None = None,
    weekly: str | None = None,
    daily_from: str | None = None,
    daily_to: str | None = None,
    comment: str = "",
) -> dict[str, Any]:
    """The ``POST /api/v1/silences`` body of the ``silence`` command (raises ValueError)."""
    if not matchers:
        raise ValueError("give at least one matcher, e.g. source=e-wf-001:outlet-1")
    if ends is not None and duration is not None:
        raise ValueError("give --ends or --for, not both")
    start = parse_time(starts, now) if starts else now
    end: datetime | None = None
    if ends is not None:
        end = parse_time(ends, now)
    elif duration is not None:
        end = start + parse_duration(duration)
    body: dict[str, Any] = {
        "matchers": [parse_matcher(m) for m in matchers],
        "starts_at": start.isoformat(),
        "ends_at": end.isoformat() if end is not None else None,
        "comment": comment,
    }
    if weekly is not None or daily_from is not None or daily_to is not None:
        if daily_from is None or daily_to is None:
            raise ValueError("a recurring silence needs --from HH:MM and --to HH:MM (Beijing)")
        body["recurrence"] = {
            "every": "week" if weekly is not None else "day",
            "start": _clock(daily_from),
            "end": _clock(daily_to),
            "weekdays": parse_weekdays(weekly) if weekly is not None else [],
        }
    elif end is None:
        raise ValueError("a one-off silence needs --ends or --for")
    if end is not None and end <= start:
        raise ValueError("the silence must end after it starts")
    return body


# ----------------------------------------------------------------------------- HTTP


def _fail(message: str, code: Exit) -> NoReturn:
    typer.echo(f"envwatch alerts: {message}", err=True)
    raise typer.Exit(int(code))


def make_client(api: str, token: str) -> Any:
    """The HTTP client (an ``httpx.Client``); tests replace this to reach an in-process app."""
    import httpx

    return httpx.Client(
        base_url=api.rstrip("/"),
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=TIMEOUT_SECONDS,
    )


def _detail(response: Any) -> str:
    try:
        data = response.json()
    except ValueError:
        return (response.text or "").strip()[:300]
    detail = data.get("detail", data) if isinstance(data, dict) else data
    if isinstance(detail, list):  # FastAPI's validation errors
        parts = []
        for err in detail:
            if isinstance(err, Mapping):
                where = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
                parts.append(f"{where}: {err.get('msg', '')}" if where else str(err.get("msg")))
            else:
                parts.append(str(err))
        return "; ".join(parts)
    if isinstance(detail, Mapping):
        return str(detail.get("reason") or detail.get("message") or json.dumps(detail))
    return str(detail)


@contextmanager
def _api_errors(api: str) -> Iterator[None]:
    import httpx

    try:
        yield
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the alerts service at {api}: {type(exc).__name__}", Exit.UNREACHABLE)


def request(
    api: str,
    token: str,
    method: str,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
) -> Any:
    """One API call; the decoded JSON, or exit with the status of :class:`Exit`."""
    if not token:
        _fail("no token: set ENVWATCH_API_TOKEN (or --token)", Exit.UNAUTHORIZED)
    with _api_errors(api), make_client(api, token) as client:
        response = client.request(method, path, params=params, json=body)
    status = response.status_code
    if status in (401, 403):
        _fail(f"the token was refused ({status}): {_detail(response)}", Exit.UNAUTHORIZED)
    if status == 404:
        _fail(f"not found: {path} ({_detail(response)})", Exit.NOT_FOUND)
    if status == 429:
        wait = response.headers.get("Retry-After")
        after = f"; retry after {wait} s" if wait else ""
        _fail(f"rate limited (429){after}", Exit.RATE_LIMITED)
    if status in (400, 413, 422):
        _fail(f"invalid request ({status}): {_detail(response)}", Exit.INVALID)
    if status >= 400:
        _fail(f"the alerts service answered {status}: {_detail(response)}", Exit.UNREACHABLE)
    if status == 204 or not response.content:
        return {}
    return response.json()


# ----------------------------------------------------------------------------- output


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True))


def _local(value: Any) -> str:
    """An ISO time from the API shown in Beijing time (``YYYY-MM-DD HH:MM``)."""
    if not value:
        return ""
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def _console() -> Any:
    from rich.console import Console

    return Console(soft_wrap=False, width=200)


def _alerts_table(items: Sequence[Mapping[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=f"告警 alerts ({len(items)})", show_lines=False)
    for col in ("id", "状态 state", "级别 severity", "地区 locality", "来源 source", "规则 rule"):
        table.add_column(col, no_wrap=True)
    for col in ("起始 since", "确认 ack", "负责人 assignee", "摘要 summary"):
        table.add_column(col)
    for a in items:
        ack = str(a.get("acknowledged_by") or "✓") if a.get("acknowledged") else ""
        rule = str(a.get("rule") or "")
        if a.get("factor"):
            rule += f" [{a['factor']}]"
        table.add_row(
            str(a.get("id", "")),
            str(a.get("state", "")),
            str(a.get("severity", "")),
            str(a.get("locality", "")),
            str(a.get("source_name") or a.get("source") or ""),
            rule,
            _local(a.get("since") or a.get("fired_at")),
            ack,
            str(a.get("assignee") or ""),
            str(a.get("summary") or ""),
        )
    return table


def _result(data: Mapping[str, Any], what: str, as_json: bool) -> None:
    """A command's 202 answer: applied / pending / refused (exit 1)."""
    if as_json:
        _print_json(data)
    status = str(data.get("status", ""))
    command = data.get("command", "")
    if status == "refused":
        why = " — ".join(str(x) for x in (data.get("reason"), data.get("detail")) if x)
        _fail(f"{what}: refused by the locality stage: {why}", Exit.REFUSED)
    if not as_json:
        if status == "pending":
            typer.echo(f"{what}: accepted, not applied yet (command {command})")
        else:
            typer.echo(f"{what}: {status or 'done'} (command {command})")


def _items(data: Any) -> list[Mapping[str, Any]]:
    items = data.get("items", []) if isinstance(data, Mapping) else data
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


# ----------------------------------------------------------------------------- commands


@alerts_app.command("ls")
def ls_command(
    state: Annotated[str | None, typer.Option(help="pending, firing, resolved …")] = None,
    locality: Annotated[str | None, typer.Option(help="locality id")] = None,
    source: Annotated[str | None, typer.Option(help="station / outlet / monitor id")] = None,
    rule: Annotated[str | None, typer.Option(help="alert rule id")] = None,
    severity: Annotated[str | None, typer.Option(help="info, warning, critical")] = None,
    since: Annotated[
        str | None, typer.Option(help="changed since: ISO time (Beijing) or a duration ago (24h)")
    ] = None,
    api: Api = DEFAULT_API,
    token: Token = "",
    as_json: AsJson = False,
) -> None:
    """List the alerts this token may see (open ones unless --state says otherwise)."""
    params = {
        k: v
        for k, v in {
            "state": state,
            "locality": locality,
            "source": source,
            "rule": rule,
            "severity": severity,
        }.items()
        if v
    }
    if since:
        try:
            params["since"] = parse_time(since, datetime.now(UTC), ago=True).isoformat()
        except ValueError as exc:
            _fail(str(exc), Exit.INVALID)
    data = request(api, token, "GET", "/api/v1/alerts", params=params)
    if as_json:
        _print_json(data)
        return
    _console().print(_alerts_table(_items(data)))


@alerts_app.command("show")
def show_command(
    alert_id: Annotated[str, typer.Argument(metavar="ID", help="alert id (fingerprint)")],
    api: Api = DEFAULT_API,
    token: Token = "",
    as_json: AsJson = False,
) -> None:
    """One alert with its history (who, when, why)."""
    from rich.table import Table

    data = request(api, token, "GET", f"/api/v1/alerts/{alert_id}")
    if as_json:
        _print_json(data)
        return
    console = _console()
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold")
    fields.add_column()
    for key in (
        "id",
        "state",
        "severity",
        "rule",
        "source",
        "source_name",
        "factor",
        "period",
        "locality",
        "enterprise",
        "summary",
        "summary_en",
        "since",
        "fired_at",
        "resolved_at",
        "acknowledged_by",
        "acknowledged_at",
        "ack_note",
        "assignee",
        "suppressed_by",
        "url",
    ):
        value = data.get(key)
        if value in (None, "", [], False):
            continue
        if key.endswith(("_at", "since")):
            value = _local(value)
        elif isinstance(value, list):
            value = ", ".join(map(str, value))
        fields.add_row(key, str(value))
    console.print(fields)
    history = Table(title="历史 history")
    for col in (
        "时间 at",
        "状态 state",
        "原因 reason",
        "操作人 actor",
        "说明 note",
        "抑制 suppressed",
    ):
        history.add_column(col)
    for h in data.get("history") or []:
        history.add_row(
            _local(h.get("at")),
            str(h.get("state") or ""),
            str(h.get("reason") or ""),
            str(h.get("actor") or ""),
            str(h.get("note") or ""),
            ", ".join(map(str, h.get("suppressed_by") or [])),
        )
    console.print(history)


@alerts_app.command("ack")
def ack_command(
    alert_id: Annotated[str, typer.Argument(metavar="ID")],
    note: Note = "",
    api: Api = DEFAULT_API,
    token: Token = "",
    as_json: AsJson = False,
) -> None:
    """Acknowledge an alert (stops its escalation), with a note."""
    data = request(api, token, "POST", f"/api/v1/alerts/{alert_id}/ack", body={"note": note})
    _result(data, f"ack {alert_id}", as_json)


@alerts_app.command("assign")
def assign_command(
    alert_id: Annotated[str, typer.Argument(metavar="ID")],
    assignee: Annotated[str | None, typer.Argument(help="who takes it over")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="remove the assignee")] = False,
    note: Note = "",
    api: Api = DEFAULT_API,
    token: Token = "",
    as_json: AsJson = False,
) -> None:
    """Assign an alert to someone (or --clear the assignee)."""
    if clear == (assignee is not None):
        _fail("give an ASSIGNEE or --clear", Exit.INVALID)
    if clear:
        data = request(
            api, token, "POST", f"/api/v1/alerts/{alert_id}/unassign", body={"note": note}
        )
        _result(data, f"unassign {alert_id}", as_json)
        return
    body = {"assignee": assignee, "note": note}
    data = request(api, token, "POST", f"/api/v1/alerts/{alert_id}/assign", body=body)
    _result(data, f"assign {alert_id} → {assignee}", as_json)


@alerts_app.command("resolve")
def resolve_command(
    alert_id: Annotated[str, typer.Argument(metavar="ID")],
    note: Note = "",
    api: Api = DEFAULT_API,
    token: Token = "",
    as_json: AsJson = False,
) -> None:
    """Resolve an alert by hand (where its rule allows it)."""
    data = request(api, token, "POST", f"/api/v1/alerts/{alert_id}/resolve", body={"note": note})
    _result(data, f"resolve {alert_id}", as_json)


def _silences_table(items: Sequence[Mapping[str, Any]]) -> Any:
    from rich.table import Table

    table = Table(title=f"静默与维护 silences and maintenance ({len(items)})")
    for col in ("id", "匹配 matchers", "开始 starts", "结束 ends", "重复 recurrence"):
        table.add_column(col)
    table.add_column("创建人 by")
    table.add_column("说明 comment")
    for s in items:
        matchers = " ".join(
            f"{m.get('name')}{m.get('op', '=')}{m.get('value')}"
            for m in s.get("matchers") or []
            if isinstance(m, Mapping)
        )
        rec = s.get("recurrence") or {}
        recurrence = ""
        if rec:
            days = ",".join(rec.get("weekdays") or []) or "daily"
            recurrence = f"{days} {str(rec.get('start', ''))[:5]}–{str(rec.get('end', ''))[:5]}"
        table.add_row(
            str(s.get("id", "")),
            matchers,
            _local(s.get("starts_at")),
            _local(s.get("ends_at")) or "—",
            recurrence,
            str(s.get("created_by") or ""),
            str(s.get("comment") or ""),
        )
    return table


@alerts_app.command("silence")
def silence_command(
    matchers: Annotated[
        list[str] | None,
        typer.Argument(help="name=value, name!=value, name=~regex, name!~regex; none: list"),
    ] = None,
    starts: Annotated[str | None, typer.Option(help="start (default now)")] = None,
    ends: Annotated[str | None, typer.Option(help="end (ISO time, Beijing)")] = None,
    duration: Annotated[str | None, typer.Option("--for", help="length, e.g. 2h, 3d")] = None,
    weekly: Annotated[
        str | None, typer.Option(help="recurring on these days, e.g. MON,TUE or MON-FRI")
    ] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="recurring window start HH:MM (Beijing)")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="recurring window end HH:MM")] = None,
    comment: Annotated[str, typer.Option(help="why (kept with the silence)")] = "",
    api: Api = DEFAULT_API,
    token: Token = "",
    as_json: AsJson = False,
) -> None:
    """Silence the alerts matching all MATCHERS; without matchers list the silences."""
    if not matchers:
        data = request(api, token, "GET", "/api/v1/silences")
        if as_json:
            _print_json(data)
        else:
            _console().print(_silences_table(_items(data)))
        return
    try:
        body = silence_body(
            matchers,
            now=datetime.now(UTC),
            starts=starts,
            ends=ends,
            duration=duration,
            weekly=weekly,
            daily_from=from_,
            daily_to=to,
            comment=comment,
        )
    except ValueError as exc:
        _fail(str(exc), Exit.INVALID)
    data = request(api, token, "POST", "/api/v1/silences", body=body)
    silence = data.get("silence") or data.get("id") or ""
    _result(data, f"silence {silence}".strip(), as_json)


@alerts_app.command("unsilence")
def unsilence_command(
    silence_id: Annotated[str, typer.Argument(metavar="ID", help="silence id")],
    api: Api = DEFAULT_API,
    token: Token = "",
    as_json: AsJson = False,
) -> None:
    """Expire a silence now."""
    data = request(api, token, "DELETE", f"/api/v1/silences/{silence_id}")
    _result(data, f"unsilence {silence_id}", as_json)


@maint_app.command("start")
def maint_start_command(
    source: Annotated[str, typer.Argument(help="outlet or monitor id")],
    from_: Annotated[str, typer.Option("--from", help="start (ISO time, Beijing; now)")] = "now",
    to: Annotated[str | None, typer.Option("--to", help="end (ISO time, Beijing; +4h)")] = None,
    note: Note = "",
    api: Api = DEFAULT_API,
    token: Token = "",
    as_json: AsJson = False,
) -> None:
    """Declare a maintenance window: the source's alerts are not notified during it."""
    now = datetime.now(UTC)
    if to is None:
        _fail("give the end of the window: --to (e.g. 2026-12-03T18:00 or +4h)", Exit.INVALID)
    try:
        starts_at, ends_at = parse_time(from_, now), parse_time(to, now)
    except ValueError as exc:
        _fail(str(exc), Exit.INVALID)
    if ends_at <= starts_at:
        _fail("the window must end after it starts", Exit.INVALID)
    body = {
        "source": source,
        "starts_at": starts_at.isoformat(),
        "ends_at": ends_at.isoformat(),
        "note": note,
    }
    data = request(api, token, "POST", "/api/v1/maintenance", body=body)
    _result(data, f"maintenance of {source}", as_json)


@maint_app.command("end")
def maint_end_command(
    maint_id: Annotated[str, typer.Argument(metavar="ID", help="maintenance window id")],
    api: Api = DEFAULT_API,
    token: Token = "",
    as_json: AsJson = False,
) -> None:
    """End a maintenance window now."""
    data = request(api, token, "DELETE", f"/api/v1/maintenance/{maint_id}")
    _result(data, f"end maintenance {maint_id}", as_json)
