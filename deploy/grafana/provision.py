"""Push envwatch's folder, InfluxDB datasource and dashboards to a running Grafana (grafana-client).

Idempotent: each object is read first (``GET /api/folders/{uid}``,
``GET /api/datasources/uid/{uid}``, ``GET /api/dashboards/uid/{uid}``) and written only when it
is missing (``POST /api/folders``, ``POST /api/datasources``, ``POST /api/dashboards/db``) or
differs (``PUT /api/folders/{uid}``, ``PUT /api/datasources/uid/{uid}``,
``POST /api/dashboards/db`` with ``overwrite: true``). A second run against an unchanged Grafana
only reads.

Errors: every grafana-client exception is translated once, here, into :class:`ProvisionError`
carrying the step, the HTTP status and Grafana's message.

Exception tree::

    ProvisionError            step, status, detail
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException
from niquests.exceptions import RequestException  # grafana-client's HTTP library

DATASOURCE_UID: Final = "envwatch-influxdb"
DATASOURCE_NAME: Final = "envwatch InfluxDB"
#: Keys of a dashboard Grafana manages itself (differ between what we send and what it returns).
_SERVER_KEYS: Final = frozenset({"id", "version"})


class ProvisionError(Exception):
    """A Grafana API call failed: ``step`` (what we were doing), ``status`` (HTTP, 0 = no answer)."""

    def __init__(self, step: str, status: int, detail: str) -> None:
        self.step = step
        self.status = status
        self.detail = detail
        code = f"HTTP {status}" if status else "no HTTP answer"
        super().__init__(f"{step}: {code}: {detail}")


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class Step:
    """What provisioning did with one object."""

    kind: str  # folder | datasource | dashboard
    uid: str
    action: Action


@dataclass(frozen=True, slots=True)
class InfluxSource:
    """The InfluxDB 2 (Flux) datasource the dashboards query."""

    url: str
    org: str
    bucket: str
    token: str | None = None
    uid: str = DATASOURCE_UID
    name: str = DATASOURCE_NAME

    def payload(self) -> dict[str, Any]:
        """Body of POST /api/datasources (Grafana's InfluxDB datasource, Flux mode)."""
        body: dict[str, Any] = {
            "uid": self.uid,
            "name": self.name,
            "type": "influxdb",
            "access": "proxy",
            "url": self.url,
            "isDefault": False,
            "jsonData": {
                "version": "Flux",
                "organization": self.org,
                "defaultBucket": self.bucket,
            },
        }
        if self.token:
            body["secureJsonData"] = {"token": self.token}
        return body


def connect(url: str, token: str | None, *, timeout: float = 10.0) -> GrafanaApi:
    """A grafana-client API object for ``url`` (e.g. http://grafana:3000) with a bearer token."""
    api: GrafanaApi = GrafanaApi.from_url(url=url, credential=token or None, timeout=timeout)
    return api


def _message(exc: GrafanaException) -> str:
    resp = exc.response
    if isinstance(resp, dict) and "message" in resp:
        return str(resp["message"])
    return str(exc.message or exc)


def _unreachable(step: str, exc: RequestException) -> ProvisionError:
    """grafana-client lets connection errors of niquests through: translate them too."""
    reason = exc.__class__.__name__
    request = getattr(exc, "request", None)
    where = f" ({request.url})" if request is not None and getattr(request, "url", None) else ""
    return ProvisionError(step, 0, f"Grafana unreachable{where}: {reason}")


def _call(step: str, fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except GrafanaException as exc:
        raise ProvisionError(step, int(exc.status_code or 0), _message(exc)) from exc
    except RequestException as exc:
        raise _unreachable(step, exc) from exc


def _get_or_none(step: str, fn: Any, *args: Any) -> Any:
    """GET that returns None on 404 (the object does not exist yet)."""
    try:
        return fn(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise ProvisionError(step, int(exc.status_code or 0), _message(exc)) from exc
    except GrafanaException as exc:
        raise ProvisionError(step, int(exc.status_code or 0), _message(exc)) from exc
    except RequestException as exc:
        raise _unreachable(step, exc) from exc


def ensure_folder(api: GrafanaApi, uid: str, title: str) -> Step:
    step = f"folder {uid}"
    found = _get_or_none(step, api.folder.get_folder, uid)
    if found is None:
        _call(step, api.folder.create_folder, title, uid)
        return Step("folder", uid, Action.CREATED)
    if found.get("title") != title:
        # update_folder(uid, title, version, overwrite): PUT /api/folders/{uid}
        _call(step, api.folder.update_folder, uid, title, None, True)
        return Step("folder", uid, Action.UPDATED)
    return Step("folder", uid, Action.UNCHANGED)


def _same_datasource(found: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    keys = ("name", "type", "url", "access")
    if any(found.get(k) != want[k] for k in keys):
        return False
    have = found.get("jsonData") or {}
    return all(have.get(k) == v for k, v in want["jsonData"].items())


def ensure_datasource(api: GrafanaApi, source: InfluxSource) -> Step:
    """Create or update the datasource. The token cannot be read back from Grafana: it is sent on
    create and on every update, and an otherwise identical datasource is left alone."""
    step = f"datasource {source.uid}"
    want = source.payload()
    found = _get_or_none(step, api.datasource.get_datasource_by_uid, source.uid)
    if found is None:
        _call(step, api.datasource.create_datasource, want)
        return Step("datasource", source.uid, Action.CREATED)
    if _same_datasource(found, want):
        return Step("datasource", source.uid, Action.UNCHANGED)
    _call(step, api.datasource.update_datasource_by_uid, source.uid, want)
    return Step("datasource", source.uid, Action.UPDATED)


def _comparable(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in _SERVER_KEYS}


def ensure_dashboard(api: GrafanaApi, dashboard: Mapping[str, Any], folder_uid: str) -> Step:
    uid = str(dashboard["uid"])
    step = f"dashboard {uid}"
    found = _get_or_none(step, api.dashboard.get_dashboard, uid)
    if found is not None:
        same_folder = (found.get("meta") or {}).get("folderUid") == folder_uid
        if same_folder and _comparable(found.get("dashboard") or {}) == _comparable(dashboard):
            return Step("dashboard", uid, Action.UNCHANGED)
    body = {
        "dashboard": {**dashboard, "id": None},
        "folderUid": folder_uid,
        "overwrite": True,
        "message": "envwatch grafana provision",
    }
    _call(step, api.dashboard.update_dashboard, body)
    return Step("dashboard", uid, Action.CREATED if found is None else Action.UPDATED)


def provision(
    api: GrafanaApi,
    dashboards: Mapping[str, Mapping[str, Any]],
    *,
    folder_uid: str,
    folder_title: str,
    source: InfluxSource | None,
) -> list[Step]:
    """Folder, then datasource (when given), then every dashboard; stops at the first failure."""
    steps = [ensure_folder(api, folder_uid, folder_title)]
    if source is not None:
        steps.append(ensure_datasource(api, source))
    for uid in sorted(dashboards):
        steps.append(ensure_dashboard(api, dashboards[uid], folder_uid))
    return steps
