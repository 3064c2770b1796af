"""``envwatch deploy mqtt``: mosquitto accounts, ACL and configuration from the catalogue.

The rendering is :mod:`streams.mqttaccounts` (pure, shared with the test harness); this module
reads the templates and the catalogue and writes the files. Passwords are generated once with
:mod:`secrets` and kept in ``credentials.json`` (mode 0600): a rerun keeps every existing
account's password (and its password-file line when the hash still matches). No password is
ever printed.

TLS (``--certfile``/``--keyfile``/``--cafile``): the conf gets a TLS listener on ``--tls-port``
that reads the files where they are (absolute paths, not copied: a private key is not
duplicated, and a renewed certificate is picked up where it was). The command checks that they
can be read and that the certificate and key belong together; the broker, which drops to the
``mosquitto`` user when started as root, must be able to read them too (docs/mqtt.md §4).
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
from pathlib import Path
from typing import Annotated, Any

import typer

from rules.catalog import load_catalog
from rules.errors import ConfigError
from streams import mqttaccounts
from streams.cli._app import app
from streams.embedded import MOSQUITTO_ACL, MOSQUITTO_CONF

deploy_app = typer.Typer(
    help="Deployment artefacts generated from the catalogue.",
    no_args_is_help=True,
)
app.add_typer(deploy_app, name="deploy")

CREDENTIALS = "credentials.json"


def _write(path: Path, text: str, mode: int) -> None:
    """Write ``text`` through a temporary file created with ``mode``, then rename it."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)  # the umask may have narrowed it
    tmp.replace(path)


def _tls_listener(
    tls_port: int,
    bind: str | None,
    cafile: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
    require_certificate: bool,
    tls_only: bool,
) -> mqttaccounts.TlsListener | None:
    """The TLS listener the options ask for (None: none); exits with a message when they are
    incomplete or the files do not load."""
    given = [f for f in (cafile, certfile, keyfile) if f is not None]
    if not given:
        if require_certificate or tls_only:
            typer.echo(
                "--require-certificate and --tls-only need --cafile, --certfile and --keyfile",
                err=True,
            )
            raise typer.Exit(2)
        return None
    if cafile is None or certfile is None or keyfile is None:
        typer.echo("a TLS listener needs all of --cafile, --certfile and --keyfile", err=True)
        raise typer.Exit(2)
    cafile, certfile, keyfile = cafile.resolve(), certfile.resolve(), keyfile.resolve()
    check = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        check.load_verify_locations(cafile=str(cafile))
    except (OSError, ssl.SSLError) as exc:
        typer.echo(f"--cafile {cafile}: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        check.load_cert_chain(str(certfile), str(keyfile))
    except (OSError, ssl.SSLError) as exc:  # never the key's content: only the error
        typer.echo(f"--certfile {certfile} / --keyfile {keyfile}: {exc}", err=True)
        raise typer.Exit(1) from None
    return mqttaccounts.TlsListener(
        tls_port, str(cafile), str(certfile), str(keyfile), require_certificate, bind
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        typer.echo(f"cannot read {path}: {exc}", err=True)
        raise typer.Exit(1) from None
    return data if isinstance(data, dict) else {}


@deploy_app.command("mqtt")
def mqtt(
    out: Annotated[Path, typer.Option(help="output directory (keep it out of the repository)")],
    config: Annotated[Path, typer.Option(help="catalogue directory")] = Path("deploy/config"),
    port: Annotated[int, typer.Option(help="port of the plain MQTT listener")] = 1883,
    bind: Annotated[
        str | None, typer.Option(help="listener address (default: every interface)")
    ] = None,
    persistence: Annotated[
        Path | None,
        typer.Option(help="mosquitto persistence_location (default: the output directory)"),
    ] = None,
    bridges: Annotated[
        int,
        typer.Option(
            min=1,
            help="bridge accounts: bridge (envwatch-bridge), then bridge-2 … bridge-N "
            "(envwatch-bridge-<i>), one per bridge process of a shared subscription",
        ),
    ] = 1,
    tls_port: Annotated[int, typer.Option(help="port of the TLS listener")] = 8883,
    cafile: Annotated[
        Path | None,
        typer.Option(help="TLS: CA (PEM) that signs client certificates (required for TLS)"),
    ] = None,
    certfile: Annotated[Path | None, typer.Option(help="TLS: the broker's certificate")] = None,
    keyfile: Annotated[Path | None, typer.Option(help="TLS: the broker's private key")] = None,
    require_certificate: Annotated[
        bool,
        typer.Option(
            help="TLS listener: every client presents a certificate signed by --cafile whose "
            "common name is its account (no password asked there)"
        ),
    ] = False,
    tls_only: Annotated[
        bool, typer.Option(help="no plain listener: only the TLS one (--port is ignored)")
    ] = False,
) -> None:
    """Write mosquitto.conf, passwd, acl and credentials.json (0600) into OUT: one account per
    role (bridge, gateway, publisher, notifier) and per enterprise (``enterprise:<id>``,
    username = the enterprise id), nobody anonymous; a TLS listener when --cafile, --certfile
    and --keyfile are given (docs/mqtt.md §4)."""
    tls = _tls_listener(tls_port, bind, cafile, certfile, keyfile, require_certificate, tls_only)
    if tls is not None and not tls_only and tls_port == port:
        typer.echo(f"--tls-port {tls_port} is also the plain --port", err=True)
        raise typer.Exit(2)
    try:
        catalog = load_catalog(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    template = mqttaccounts.parse_acl_template(MOSQUITTO_ACL.read_text(encoding="utf-8"))
    try:
        accounts = mqttaccounts.accounts_from_catalog(catalog, template, bridges=bridges)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    old = _read_json(out / CREDENTIALS)
    try:
        old_hashes = mqttaccounts.parse_passwd((out / "passwd").read_text(encoding="utf-8"))
    except OSError:
        old_hashes = {}

    credentials: dict[str, dict[str, Any]] = {}
    entries: list[tuple[str, str]] = []
    for a in accounts:
        previous = old.get(a.name)
        password = previous.get("password") if isinstance(previous, dict) else None
        if not isinstance(password, str) or not password:
            password = secrets.token_urlsafe(24)
        hashed = old_hashes.get(a.username, "")
        if not mqttaccounts.verify_password(hashed, password):
            hashed = mqttaccounts.hash_password(password, os.urandom(mqttaccounts.SALT_BYTES))
        entries.append((a.username, hashed))
        credentials[a.name] = {
            "username": a.username,
            "password": password,
            "publish": list(a.publish),
            "subscribe": list(a.subscribe),
        }

    conf = mqttaccounts.render_conf(
        MOSQUITTO_CONF.read_text(encoding="utf-8"),
        port=None if tls_only else port,
        host=bind,
        tls=tls,
        persistence_dir=str((persistence or out).resolve()),
        password_file=str(out / "passwd"),
        acl_file=str(out / "acl"),
    )
    _write(out / CREDENTIALS, json.dumps(credentials, indent=2, ensure_ascii=False) + "\n", 0o600)
    # mosquitto, started as root, drops to its own user before it reads these: 0644 (the
    # password file holds salted hashes only; the passwords are in credentials.json)
    _write(out / "passwd", mqttaccounts.render_passwd(entries), 0o644)
    _write(out / "acl", mqttaccounts.render_acl(template, accounts), 0o644)
    _write(out / "mosquitto.conf", conf, 0o644)
    n_ent = sum(a.name.startswith(mqttaccounts.ENTERPRISE_PREFIX) for a in accounts)
    typer.echo(
        f"{len(accounts)} accounts ({n_ent} enterprises) written to {out}: mosquitto.conf, "
        f"passwd, acl; passwords in {out / CREDENTIALS} (mode 0600)"
    )
    listeners = [] if tls_only else [f"plain on {port}"]
    if tls is not None:
        listeners.append(
            f"TLS on {tls.port}"
            + (" (client certificates required)" if tls.require_certificate else "")
        )
    typer.echo(f"listeners: {', '.join(listeners)}")
    typer.echo(f"start the broker with: mosquitto -c {out / 'mosquitto.conf'}")
