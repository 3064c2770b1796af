"""Running the alerts service inside another asyncio program (the demo, tests): uvicorn on a
loopback port in the caller's event loop, without touching its signal handlers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from streams.api.app import create_app
from streams.api.auth import Auth, Principal, Role
from streams.api.kafka import kafka_context
from streams.api.settings import ApiSettings


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the host program owns SIGINT/SIGTERM


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Running:
    url: str
    ctx: Any


def demo_principals(catalog: Any) -> tuple[dict[str, str], Auth]:
    """Random tokens for the demo: duty (all), emergency, admin, ``duty:<locality>`` per
    locality, ``enterprise:<id>`` per enterprise of the catalogue."""
    wanted: dict[str, Principal] = {
        "duty": Principal("duty", Role.DUTY),
        "emergency": Principal("emergency", Role.EMERGENCY),
        "admin": Principal("admin", Role.ADMIN),
    }
    if catalog is not None:
        for loc in catalog.localities:
            wanted[f"duty:{loc.id}"] = Principal(f"duty-{loc.id}", Role.DUTY, locality=loc.id)
        for ent in catalog.enterprises:
            wanted[f"enterprise:{ent.id}"] = Principal(ent.id, Role.ENTERPRISE, enterprise=ent.id)
    tokens = {key: secrets.token_urlsafe(32) for key in wanted}
    return tokens, Auth.from_tokens({tokens[k]: p for k, p in wanted.items()})


def write_api_json(path: Path, url: str, tokens: Mapping[str, str]) -> None:
    """``api.json`` (mode 0600 from its creation: the tokens never sit readable)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"url": url, "tokens": dict(tokens)}, f, ensure_ascii=False, indent=2)
    os.chmod(path, 0o600)


@contextlib.asynccontextmanager
async def running_api(
    kafka: str,
    auth: Auth,
    *,
    prefix: str = "",
    catalog: Any = None,
    settings: ApiSettings | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
) -> AsyncIterator[Running]:
    """The API on ``host:port`` (0: a free port) fed by Kafka, until the block ends."""
    settings = settings or ApiSettings()
    port = port or free_port(host)
    ctx = kafka_context(settings, auth, kafka, prefix, catalog)
    server = _Server(
        uvicorn.Config(create_app(ctx), host=host, port=port, log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(), name="envwatch-api")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the alerts API stopped while starting")
            await asyncio.sleep(0.05)
        yield Running(f"http://{host}:{port}", ctx)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
