"""The production stack as code (issue 17): deploy/compose.yaml, the Dockerfile, deploy/kafka,
deploy/influxdb and the Kubernetes form deploy/k8s, checked structurally.

Docker, a Kubernetes cluster, a real Kafka and InfluxDB cannot run here, so these tests check
what a start would trip over, against the next-best real things: the compose file against the
compose-spec keys it uses (hand-written list: the JSON schema is not vendored and ``jsonschema``
is not a dependency), every command against envwatch's real command line (the click command
Typer builds), every ``ENVWATCH_*`` variable against the real Settings classes and the docs,
the Kafka topics against ``streams/topics.py``, the MQTT accounts against what ``envwatch
deploy mqtt`` really writes, the shell scripts against ``bash -n``, and the Kubernetes overlay
rendered by ``kubectl kustomize`` when kubectl is installed (CI has none: then the
kustomizations are resolved in Python, patches left out). Nothing here needs a service.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import paho.mqtt.client as mqtt
import pytest
import trustme
import typer
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings
from typer.testing import CliRunner

from alerts.settings import AlertsSettings
from streams import embedded, topics
from streams.api.settings import ApiSettings
from streams.cli import app
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
K8S = DEPLOY / "k8s"
OVERLAY = K8S / "overlays" / "example"
ENVWATCH_IMAGE = "envwatch"

# --------------------------------------------------------------------------- loading


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


COMPOSE_DATA = load_compose()
SERVICES: dict[str, dict[str, Any]] = COMPOSE_DATA["services"]


def envwatch_services() -> dict[str, dict[str, Any]]:
    return {
        n: s for n, s in SERVICES.items() if str(s.get("image", "")).split(":")[0] == ENVWATCH_IMAGE
    }


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    assert isinstance(env, dict), "environment as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def secret_targets(service: dict[str, Any]) -> dict[str, str]:
    """target name (under /run/secrets) → compose secret name, for one service."""
    out: dict[str, str] = {}
    for s in service.get("secrets") or []:
        if isinstance(s, str):
            out[s] = s
        else:
            out[s.get("target", s["source"])] = s["source"]
    return out


def interpolated_default(value: str) -> str:
    """``${VAR:-default}`` / ``${VAR-default}`` → default (compose interpolation, defaults only)."""
    return re.sub(r"\$\{[A-Z0-9_]+:?-([^}]*)\}", r"\1", value)


def cli_command(args: list[str]) -> Any:
    """The click command ``envwatch ARGS`` runs; its options are parsed (unknown ones fail).
    (Typer may bring a click of its own: groups are recognised by their ``commands``.)"""
    cmd: Any = typer.main.get_command(app)
    rest = list(args)
    while hasattr(cmd, "commands"):
        assert rest, f"envwatch {' '.join(args)}: a group needs a command"
        name, rest = rest[0], rest[1:]
        sub = cmd.commands.get(name)
        assert sub is not None, f"envwatch has no command {name!r} (in {args})"
        cmd = sub
    cmd.make_context("envwatch", rest, resilient_parsing=False)  # raises on a bad option
    return cmd


# --------------------------------------------------------------------------- Kubernetes render


def _yaml_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _python_kustomize(directory: Path) -> list[dict[str, Any]]:
    """The resources of a kustomization, resolved without kubectl: resources (files and
    directories), configMapGenerator (literals, files), images, replicas and namespace. Patches
    are not applied (kubectl does that where installed)."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    out: list[dict[str, Any]] = []
    for r in k.get("resources", []):
        p = (directory / r).resolve()
        out += _python_kustomize(p) if p.is_dir() else _yaml_docs(p)
    for g in k.get("configMapGenerator", []):
        data = dict(line.split("=", 1) for line in g.get("literals", []))
        for f in g.get("files", []):
            data[Path(f).name] = (directory / f).read_text(encoding="utf-8")
        out.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": g["name"]}, "data": data}
        )
    for img in k.get("images", []):
        for c in _containers(out):
            name, _, _tag = c["image"].partition(":")
            if name == img["name"]:
                c["image"] = f"{img.get('newName', name)}:{img.get('newTag', _tag)}"
    for rep in k.get("replicas", []):
        for d in out:
            if d["metadata"]["name"] == rep["name"] and "replicas" in d.get("spec", {}):
                d["spec"]["replicas"] = rep["count"]
    if "namespace" in k:
        for d in out:
            if d["kind"] != "Namespace":
                d["metadata"]["namespace"] = k["namespace"]
    return out


def _containers(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for d in docs:
        spec = d.get("spec", {}).get("template", {}).get("spec", {})
        yield from spec.get("containers", [])


def render_k8s() -> tuple[list[dict[str, Any]], str]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run(
            [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return [d for d in yaml.safe_load_all(out.stdout) if d], "kubectl"
    return _python_kustomize(OVERLAY), "python"


K8S_DOCS, K8S_RENDERER = render_k8s()

#: ConfigMaps a kustomization generates (kubectl appends a content hash to their names)
GENERATED = {
    g["name"]
    for k in (K8S / "base" / "kustomization.yaml", DEPLOY / "kafka" / "kustomization.yaml")
    for g in yaml.safe_load(k.read_text(encoding="utf-8")).get("configMapGenerator", [])
}


def unhash(name: str) -> str:
    """A generated ConfigMap's name without kubectl's hash suffix."""
    base = re.sub(r"-[a-z0-9]{10}$", "", name)
    return base if base in GENERATED else name


def k8s(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in K8S_DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} in the rendered overlay"
    return found[0]


def configmap(name: str) -> dict[str, str]:
    """A ConfigMap by its generator name (kubectl appends a content hash)."""
    for d in K8S_DOCS:
        if d["kind"] == "ConfigMap" and unhash(d["metadata"]["name"]) == name:
            return cast(dict[str, str], d.get("data", {}))
    raise AssertionError(f"no ConfigMap {name}")


def k8s_env(workload: dict[str, Any]) -> dict[str, str]:
    """Environment of a workload's first container: envFrom ConfigMaps, then env (values from
    secrets or fields as '<from …>')."""
    c = workload["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for src in c.get("envFrom", []):
        if "configMapRef" in src:
            env.update(configmap(unhash(src["configMapRef"]["name"])))
    for e in c.get("env", []):
        env[e["name"]] = str(e["value"]) if "value" in e else f"<from {next(iter(e['valueFrom']))}>"
    return env


def k8s_envwatch_args(workload: dict[str, Any]) -> list[str]:
    """The envwatch arguments a workload's container runs (image entrypoint ``envwatch`` + args,
    or the ``exec envwatch …`` line of a shell wrapper)."""
    c = workload["spec"]["template"]["spec"]["containers"][0]
    if "command" not in c:
        return list(c["args"])
    script = c["command"][-1]
    lines = [ln.strip() for ln in script.splitlines() if ln.strip().startswith("exec envwatch ")]
    assert len(lines) == 1, f"{workload['metadata']['name']}: one 'exec envwatch …' line"
    return shlex.split(lines[0])[2:]


# --------------------------------------------------------------------------- settings


def _settings_names(model: type[BaseModel], prefix: str, delimiter: str | None) -> set[str]:
    names: set[str] = set()
    for field_name, field in model.model_fields.items():
        name = f"{prefix}{field_name}".upper()
        names.add(name)
        ann = field.annotation
        if ann is SecretStr or (ann is not None and SecretStr in getattr(ann, "__args__", ())):
            names.add(f"{name}_FILE")  # the secret-file convention of issue 17
        sub = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if sub is not None and delimiter:
            names |= _settings_names(sub, f"{name}{delimiter}", delimiter)
    return names


def known_settings() -> set[str]:
    names: set[str] = set()
    for cls in (Settings, ApiSettings, AlertsSettings):
        cfg = cast(BaseSettings, cls).model_config
        names |= _settings_names(
            cls, str(cfg.get("env_prefix", "")), cfg.get("env_nested_delimiter")
        )
    return names


VAR = re.compile(r"\bENVWATCH_[A-Z0-9_]*[A-Z0-9]\b")


def used_variables() -> dict[str, set[str]]:
    """ENVWATCH_* name → files of the stack that use it."""
    files = [COMPOSE, DEPLOY / "compose.env.example", REPO / "Dockerfile"]
    files += sorted((K8S).rglob("*.yaml")) + sorted((K8S).rglob("*.sh"))
    used: dict[str, set[str]] = {}
    for f in files:
        for name in VAR.findall(f.read_text(encoding="utf-8")):
            used.setdefault(name, set()).add(str(f.relative_to(REPO)))
    return used


# =========================================================================== compose

#: compose-spec keys this stack uses, per level (compose-spec.json: top level, service,
#: healthcheck, deploy); a typo or a key from another tool fails here.
TOP_KEYS = {"name", "services", "volumes", "secrets", "configs", "networks"}
SERVICE_KEYS = {
    "image", "build", "command", "entrypoint", "environment", "env_file", "depends_on",
    "healthcheck", "deploy", "restart", "logging", "init", "volumes", "secrets", "configs",
    "ports", "expose", "profiles", "ulimits",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period"}
RESTART = {"no", "always", "on-failure", "unless-stopped"}


def test_compose_keys_are_compose_spec_keys() -> None:
    """A typo or an unknown key would be refused by `docker compose config`."""
    assert set(COMPOSE_DATA) - {k for k in COMPOSE_DATA if k.startswith("x-")} <= TOP_KEYS
    for name, s in SERVICES.items():
        assert set(s) <= SERVICE_KEYS, f"{name}: {set(s) - SERVICE_KEYS}"
        assert "image" in s, f"{name} has no image"
        assert s.get("restart") in RESTART, f"{name}: restart policy {s.get('restart')!r}"
        if "healthcheck" in s:
            hc = s["healthcheck"]
            assert set(hc) <= HEALTHCHECK_KEYS, name
            assert hc["test"][0] in {"CMD", "CMD-SHELL"}, name
        for dep, cond in (s.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            assert cond["condition"] in {
                "service_started", "service_healthy", "service_completed_successfully",
            }  # fmt: skip
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep}'s health check"


def test_long_running_services_restart_and_have_resource_hints() -> None:
    for name, s in SERVICES.items():
        one_shot = s.get("restart") == "no"
        assert one_shot == (name in {"kafka-init", "mqtt-accounts", "mqtt-passwords"}), name
        if not one_shot:
            assert s["restart"] == "unless-stopped", name
            assert "limits" in s.get("deploy", {}).get("resources", {}), f"{name}: no limits"


def test_images_are_pinned_to_exact_versions() -> None:
    """No `latest`, no floating major or minor: every tag is a full version."""
    exact = re.compile(r"^[a-z0-9./-]+:\d+\.\d+\.\d+(-[a-z0-9.-]+)?$")
    images = {s["image"] for s in SERVICES.values()}
    images |= {c["image"] for c in _containers(K8S_DOCS)}
    from_lines = re.findall(r"^FROM\s+(\S+)", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert from_lines == ["python:3.11.13-slim-bookworm"]
    images |= set(from_lines)
    for image in images:
        assert exact.match(image), f"{image} is not pinned to an exact version"
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert {s["image"] for s in envwatch_services().values()} == {f"envwatch:{version}"}


def test_dockerfile_installs_the_lock_as_a_non_root_user() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "uv sync --frozen --no-dev" in text
    make_uv = re.search(r"^UV_VERSION := (\S+)", (REPO / "Makefile").read_text(), re.MULTILINE)
    docker_uv = re.search(r"^ARG UV_VERSION=(\S+)", text, re.MULTILINE)
    assert make_uv
    assert docker_uv
    assert make_uv.group(1) == docker_uv.group(1)
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert re.search(r'^ENTRYPOINT \["envwatch"\]', text, re.MULTILINE)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["envwatch"] == "streams.cli:main"
    # no secret in an ENV or ARG line
    for line in re.findall(r"^(?:ENV|ARG)\s.*(?:\n\s+.*)*", text, re.MULTILINE):
        assert not re.search(r"(PASSWORD|TOKEN|SECRET)\w*=", line), line
    ignore = (REPO / ".dockerignore").read_text().split()
    for path in (".git", ".venv", "deploy/secrets", "var", "**/credentials.json"):
        assert path in ignore, f".dockerignore keeps {path} out of the build context"


def test_envwatch_commands_exist_in_the_cli() -> None:
    """Every envwatch process of compose and Kubernetes runs a real `envwatch` command with
    options the command accepts."""
    seen = set()
    for name, s in envwatch_services().items():
        if "entrypoint" in s:  # mqtt-passwords runs python
            assert s["entrypoint"][0] == "python", name
            continue
        cmd = cli_command(list(s["command"]))
        seen.add(cmd.name)
    assert seen == {"bridge", "gateway", "worker", "api", "mqtt"}
    for d in K8S_DOCS:
        if d["kind"] in {"Deployment", "StatefulSet"}:
            c = d["spec"]["template"]["spec"]["containers"][0]
            if c["image"].rpartition(":")[0].endswith(ENVWATCH_IMAGE):
                cli_command(k8s_envwatch_args(d))


def test_every_envwatch_variable_is_a_setting_and_documented() -> None:
    """A misspelt ENVWATCH_* variable is silently ignored by pydantic-settings: each one the
    stack sets must be a field of Settings, ApiSettings or AlertsSettings (prefix, nested `__`,
    `_FILE` of a secret), and be documented."""
    known = known_settings()
    docs = "\n".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").glob("*.md")))
    docs += (REPO / "README.md").read_text(encoding="utf-8")
    used = used_variables()
    assert "ENVWATCH_MQTT_SHARE_GROUP" in used  # the scan sees the files
    for name, where in sorted(used.items()):
        assert name in known, f"{name} (in {sorted(where)}) is not an envwatch setting"
        assert name in docs, f"{name} (in {sorted(where)}) is not documented in docs/ or README"


def test_secrets_are_files_never_values() -> None:
    """A variable that names a password, token or key holds the path of a mounted secret file,
    never the secret (envwatch's *_FILE settings, the images' own *_FILE and key-file options)."""
    secretish = re.compile(r"PASSWORD|TOKEN|SECRET|_KEY")
    for name, s in SERVICES.items():
        for key, value in env_of(s).items():
            if secretish.search(key) and not key.endswith("REQUIRE_PASSWORD"):  # a switch
                assert value.startswith(("/run/secrets/", "/var/lib/envwatch-tokens/")), (name, key)
            # a file a setting names is mounted in that service (a *_FILE setting pointing at
            # nothing would stop the process at start)
            if value.startswith("/run/secrets/"):
                target = value.removeprefix("/run/secrets/")
                assert target in secret_targets(s), f"{name}: {key} names unmounted {value}"
            if value.startswith("/var/lib/envwatch-tokens/"):
                mounts = [str(v) for v in s.get("volumes") or []]
                assert "influx-tokens:/var/lib/envwatch-tokens:ro" in mounts, (name, key)
        for f in s.get("env_file") or []:
            path = f["path"] if isinstance(f, dict) else f
            assert path.startswith("./secrets/"), f"{name}: env file {path} outside secrets/"


def test_volumes_secrets_and_configs_are_declared_and_exist() -> None:
    declared_volumes = set(COMPOSE_DATA["volumes"])
    declared_secrets = COMPOSE_DATA["secrets"]
    used_volumes: set[str] = set()
    used_secrets: set[str] = set()
    for name, s in SERVICES.items():
        for v in s.get("volumes") or []:
            source = v.split(":")[0]
            if source.startswith("."):
                target = (DEPLOY / source).resolve()
                if "/secrets/" not in f"{target}/":  # made by the operator
                    assert target.exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared_volumes, f"{name}: volume {source} not declared"
                used_volumes.add(source)
        used_secrets |= set(secret_targets(s).values())
        for c in s.get("configs") or []:
            assert c["source"] in COMPOSE_DATA["configs"], name
    assert used_volumes == declared_volumes, "a declared volume nobody mounts"
    assert used_secrets == set(declared_secrets), "a declared secret nobody reads"
    readme = (DEPLOY / "secrets" / "README.md").read_text(encoding="utf-8")
    for sec in declared_secrets.values():
        path = sec["file"]
        assert path.startswith("./secrets/"), path
        rel = path.removeprefix("./secrets/")
        named = rel if not rel.startswith("mqtt/passwords/") else "mqtt/passwords/<username>"
        assert f"`{named}`" in readme or named.split("/")[-1] in readme, f"{rel} not in README"
    tracked = subprocess.run(
        ["git", "ls-files", "deploy/secrets"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(tracked) in ([], ["deploy/secrets/.gitignore", "deploy/secrets/README.md"])


def test_each_process_gets_only_its_own_credentials() -> None:
    """The Kafka password file a process reads is that of its ENVWATCH_KAFKA_USERNAME, the MQTT
    one that of its MQTT username; client id = username (use_username_as_clientid)."""
    secrets = COMPOSE_DATA["secrets"]
    for name, s in envwatch_services().items():
        if s.get("profiles"):
            continue
        env, mounted = env_of(s), secret_targets(s)
        kafka_user = env["ENVWATCH_KAFKA_USERNAME"]
        assert mounted["kafka_password"] == f"kafka_{kafka_user.removeprefix('envwatch-')}_password"
        mqtt_user = env.get("ENVWATCH_MQTT_USERNAME") or env.get("ENVWATCH_ALERTS_MQTT__USERNAME")
        mqtt_secrets = [src for src in mounted.values() if src.startswith("mqtt_")]
        if mqtt_user is None:
            assert mqtt_secrets == [], f"{name} gets an MQTT password it does not use"
            continue
        assert len(mqtt_secrets) == 1, name
        assert secrets[mqtt_secrets[0]]["file"] == f"./secrets/mqtt/passwords/{mqtt_user}", name
        client_id = env.get("ENVWATCH_MQTT_CLIENT_ID") or env.get(
            "ENVWATCH_GATEWAY_MQTT_CLIENT_ID", env.get("ENVWATCH_ALERTS_MQTT__CLIENT_ID")
        )
        assert client_id == mqtt_user, name
    bridges = [s for n, s in SERVICES.items() if n.startswith("bridge-")]
    assert len(bridges) >= 2
    users = [env_of(b)["ENVWATCH_MQTT_USERNAME"] for b in bridges]
    assert len(set(users)) == len(users), (
        "two bridges on one MQTT account take each other's session"
    )
    groups = {interpolated_default(env_of(b)["ENVWATCH_MQTT_SHARE_GROUP"]) for b in bridges}
    assert groups == {"envwatch-bridge"}, "the bridges split one shared subscription"


def _port(url_or_cmd: str, pattern: str) -> int:
    m = re.search(pattern, url_or_cmd)
    assert m, (pattern, url_or_cmd)
    return int(m.group(1))


def test_ports_match_what_the_processes_listen_on() -> None:
    s = SERVICES
    for name in ("bridge-1", "bridge-2"):
        env = env_of(s[name])
        probe = " ".join(s[name]["healthcheck"]["test"])
        assert _port(probe, r":(\d+)/metrics") == int(env["ENVWATCH_BRIDGE_METRICS_PORT"])
        assert env["ENVWATCH_BRIDGE_METRICS_HOST"] == "0.0.0.0"
    gw = env_of(s["gateway"])
    assert _port(" ".join(s["gateway"]["healthcheck"]["test"]), r":(\d+)/metrics") == int(
        gw["ENVWATCH_GATEWAY_METRICS_PORT"]
    )
    assert s["gateway"]["ports"] == ["${STACK_GATEWAY_PORT:-9212}:" + gw["ENVWATCH_GATEWAY_PORT"]]
    api = env_of(s["api"])
    assert _port(" ".join(s["api"]["healthcheck"]["test"]), r":(\d+)/healthz") == int(
        api["ENVWATCH_API_PORT"]
    )
    assert s["api"]["ports"][0].endswith(":" + api["ENVWATCH_API_PORT"])
    # MQTT: clients on the TLS listener; the plain one (the conf envwatch deploy mqtt writes)
    # on the broker's loopback, where the health check knocks
    tls_conf = COMPOSE_DATA["configs"]["mosquitto-tls"]["content"]
    common = COMPOSE_DATA["x-envwatch-env"]
    assert f"listener {COMPOSE_DATA['x-mqtt-env']['ENVWATCH_MQTT_PORT']}\n" in tls_conf
    assert s["mosquitto"]["ports"] == ["${STACK_MQTT_TLS_PORT:-8883}:8883"]
    accounts = s["mqtt-accounts"]["command"]
    assert accounts[accounts.index("--port") + 1] == "1883"
    assert accounts[accounts.index("--bind") + 1] == "127.0.0.1"
    assert "-h 127.0.0.1 -p 1883" in s["mosquitto"]["healthcheck"]["test"][1]
    # Kafka: the client URL is the SASL_SSL listener and the advertised host
    props = (DEPLOY / "kafka" / "server.properties").read_text()
    kafka_port = _port(common["ENVWATCH_KAFKA"], r"kafka://kafka:(\d+)$")
    assert f"listeners=SASL_SSL://:{kafka_port}," in props
    assert s["kafka"]["environment"]["KAFKA_ADVERTISED_HOST"] == "kafka"
    assert s["kafka"]["expose"] == [str(kafka_port)]
    # InfluxDB: the URL workers and Grafana use
    worker = env_of(s["worker-1"])
    assert worker["ENVWATCH_INFLUX_URL"] == f"https://influxdb:{s['influxdb']['expose'][0]}"
    assert env_of(s["grafana"])["ENVWATCH_INFLUX_URL"] == worker["ENVWATCH_INFLUX_URL"]


def test_workers_each_have_their_own_state_volume() -> None:
    workers = {n: s for n, s in SERVICES.items() if n.startswith("worker-")}
    assert len(workers) >= 2
    volumes = [
        next(v for v in s["volumes"] if v.endswith(":/var/lib/envwatch")) for s in workers.values()
    ]
    assert len(set(volumes)) == len(volumes), "two workers would share one spool"
    partitions = int(interpolated_default(COMPOSE_DATA["x-envwatch-env"]["ENVWATCH_PARTITIONS"]))
    assert len(workers) <= partitions, "a worker beyond the partition count does nothing"
    notifier = env_of(SERVICES["notifier"])
    assert notifier["ENVWATCH_AGENTS"] == "notify"
    assert {env_of(s)["ENVWATCH_AGENTS"] for s in workers.values()} == {
        "evaluate,locality,store,deadletter"
    }
    assert notifier.get("ENVWATCH_APP_ID") not in {None, "envwatch"}, "its own consumer group"
    assert "deploy" in SERVICES["notifier"]
    assert "replicas" not in SERVICES["notifier"]["deploy"]


def test_generated_mqtt_files_fit_the_compose_mounts(tmp_path: Path) -> None:
    """`envwatch deploy mqtt` with the mqtt-accounts service's arguments: the conf points at the
    paths compose mounts, and every account a service uses exists with the bridge's topics."""
    args = list(SERVICES["mqtt-accounts"]["command"])
    out = args[args.index("--out") + 1]
    args[args.index("--out") + 1] = str(tmp_path)
    args[args.index("--config") + 1] = str(DEPLOY / "config")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    creds = json.loads((tmp_path / "credentials.json").read_text())
    users = {a["username"]: a for a in creds.values()}
    for name, s in envwatch_services().items():
        env = env_of(s)
        for key in ("ENVWATCH_MQTT_USERNAME", "ENVWATCH_ALERTS_MQTT__USERNAME"):
            if key in env:
                assert env[key] in users, f"{name}: no MQTT account {env[key]}"
    for b in ("envwatch-bridge", "envwatch-bridge-2"):
        assert users[b]["subscribe"] == ["env/#"]
        assert users[b]["publish"] == []
    conf = (tmp_path / "mosquitto.conf").read_text()
    mounted = {v.split(":")[1] for v in SERVICES["mosquitto"]["volumes"]}
    # the conf was written for --out; compose mounts the files there
    assert f"password_file {tmp_path}/passwd" in conf
    assert f"{out}/passwd" in mounted
    assert f"{out}/acl" in mounted
    assert f"{out}/mosquitto.conf" in mounted
    assert "listener 1883 127.0.0.1" in conf
    assert "persistence_location /mosquitto/data/" in conf
    assert any(v.endswith(":/mosquitto/data") for v in SERVICES["mosquitto"]["volumes"])
    assert "allow_anonymous false" in conf
    assert "use_username_as_clientid true" in conf


def test_deploy_mqtt_bridges_option(tmp_path: Path) -> None:
    """--bridges 3: bridge, bridge-2, bridge-3, one username each, the bridge role's topics."""
    result = CliRunner().invoke(
        app,
        [
            "deploy",
            "mqtt",
            "--config",
            str(DEPLOY / "config"),
            "--out",
            str(tmp_path),
            "--bridges",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    creds = json.loads((tmp_path / "credentials.json").read_text())
    bridges = {k: v["username"] for k, v in creds.items() if k.startswith("bridge")}
    assert bridges == {
        "bridge": "envwatch-bridge",
        "bridge-2": "envwatch-bridge-2",
        "bridge-3": "envwatch-bridge-3",
    }
    acl = (tmp_path / "acl").read_text()
    for u in bridges.values():
        assert f"user {u}\ntopic read env/#\n" in acl
    bad = CliRunner().invoke(
        app,
        [
            "deploy",
            "mqtt",
            "--config",
            str(DEPLOY / "config"),
            "--out",
            str(tmp_path),
            "--bridges",
            "0",
        ],
    )
    assert bad.exit_code != 0


# =========================================================================== Kafka


def _bash_array(text: str, name: str) -> list[str]:
    m = re.search(rf"^{name}=\(([^)]*)\)", text, re.MULTILINE)
    assert m, name
    return m.group(1).split()


INIT = (DEPLOY / "kafka" / "init.sh").read_text(encoding="utf-8")


def acl_table() -> list[tuple[str, str, str, str, bool]]:
    block = INIT.split('ACLS="', 1)[1].split('"', 1)[0]
    rows = []
    for line in block.strip().splitlines():
        p = line.split()
        rows.append((p[0], p[1], p[2], p[3], len(p) > 4 and p[4] == "prefixed"))
    return rows


def rights(principal: str, operation: str) -> set[str]:
    """Literal topics ``principal`` may ``operation`` ("*" expanded)."""
    every = set(_bash_array(INIT, "TOPICS")) | set(_bash_array(INIT, "STATE_TOPICS"))
    out: set[str] = set()
    for who, op, res, name, prefixed in acl_table():
        if who == principal and res == "topic" and not prefixed and op in {operation, "All"}:
            out |= every if name == "*" else {name}
    return out


def test_kafka_topics_are_envwatchs_topics() -> None:
    """kafka-init creates exactly what ensure_topics would, compaction included."""
    assert _bash_array(INIT, "TOPICS") == list(topics.EXTERNAL)
    assert _bash_array(INIT, "STATE_TOPICS") == list(topics.STATE)
    assert set(_bash_array(INIT, "COMPACTED")) == {*topics.STATE, topics.PLAN_PROGRESS}


def test_kafka_acls_follow_the_issue_access_rules() -> None:
    """The bridge writes readings; workers read readings and write derived topics; the API reads
    the views and writes commands only (issue 17). Nobody else forges a reading or reads alerts."""
    all_topics = set(topics.EXTERNAL) | set(topics.STATE)
    assert rights("envwatch-bridge", "Write") == {topics.READINGS, topics.DEAD_LETTER}
    assert rights("envwatch-gateway", "Write") == {topics.READINGS, topics.DEAD_LETTER}
    for p in ("envwatch-bridge", "envwatch-gateway"):
        assert rights(p, "Read") == set()
    writers_of_readings = {
        p for p in _bash_array(INIT, "PRINCIPALS") if topics.READINGS in rights(p, "Write")
    }
    assert writers_of_readings == {"envwatch-bridge", "envwatch-gateway"}
    assert topics.READINGS in rights("envwatch-worker", "Read")
    assert rights("envwatch-worker", "Write") <= all_topics - {topics.READINGS}
    # commands of the alerts service go to the locality stage's input (streams/api/kafka.py)
    assert rights("envwatch-api", "Write") == {topics.AGGREGATES}
    assert rights("envwatch-api", "Read") == {
        topics.ALERT_EVENTS, topics.ALERT_COMMANDS, topics.NOTIFICATIONS, topics.PLAN_PROGRESS,
    }  # fmt: skip
    readers_of_alerts = {
        p for p in _bash_array(INIT, "PRINCIPALS") if topics.ALERT_EVENTS in rights(p, "Read")
    }
    assert readers_of_alerts == {"envwatch-worker", "envwatch-notify", "envwatch-api"}
    # every principal a process logs in as has a SCRAM user and a password secret
    principals = set(_bash_array(INIT, "PRINCIPALS"))
    users = {
        env_of(s)["ENVWATCH_KAFKA_USERNAME"]
        for n, s in envwatch_services().items()
        if not s.get("profiles")
    }
    assert users == principals
    init_secrets = set(secret_targets(SERVICES["kafka-init"]))
    assert {f"kafka_{p.removeprefix('envwatch-')}_password" for p in principals} <= init_secrets
    # groups: each app id's own
    groups = {(w, n) for w, _op, res, n, _p in acl_table() if res == "group"}
    assert groups == {("envwatch-worker", "envwatch"), ("envwatch-notify", "envwatch-notify")}
    assert env_of(SERVICES["notifier"])["ENVWATCH_APP_ID"] == "envwatch-notify"


def test_kafka_broker_refuses_anonymous_clients() -> None:
    props = dict(
        line.split("=", 1)
        for line in (DEPLOY / "kafka" / "server.properties").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["listeners"].endswith("CONTROLLER://127.0.0.1:9093")  # container-local only
    assert (
        props["sasl.enabled.mechanisms"]
        == COMPOSE_DATA["x-envwatch-env"]["ENVWATCH_KAFKA_SASL_MECHANISM"]
    )
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    assert "@ADMIN_PASSWORD@" in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]


def test_shell_scripts_parse() -> None:
    scripts = [*sorted((DEPLOY / "kafka").glob("*.sh")), DEPLOY / "influxdb" / "init-tokens.sh"]
    scripts.append(K8S / "create-from-files.sh")
    for script in scripts:
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


# =========================================================================== Kubernetes


def test_k8s_overlay_renders() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in K8S_DOCS}
    for workload in (
        ("StatefulSet", "mosquitto"), ("StatefulSet", "kafka"), ("Job", "kafka-init"),
        ("StatefulSet", "influxdb"), ("Deployment", "grafana"), ("StatefulSet", "bridge"),
        ("Deployment", "gateway"), ("StatefulSet", "worker"), ("StatefulSet", "notifier"),
        ("Deployment", "api"),
    ):  # fmt: skip
        assert workload in kinds, f"{workload} ({K8S_RENDERER})"
    assert all(
        d["metadata"].get("namespace") == "envwatch" for d in K8S_DOCS if d["kind"] != "Namespace"
    )
    for c in _containers(K8S_DOCS):
        if c["image"].rpartition(":")[0].endswith(ENVWATCH_IMAGE):
            assert c["image"] == "registry.example.invalid/envwatch:0.1.0"


#: compose service → Kubernetes workload (bridges and workers are one scaled workload there)
PROCESSES = {
    "bridge-1": ("StatefulSet", "bridge"),
    "bridge-2": ("StatefulSet", "bridge"),
    "gateway": ("Deployment", "gateway"),
    "worker-1": ("StatefulSet", "worker"),
    "worker-2": ("StatefulSet", "worker"),
    "notifier": ("StatefulSet", "notifier"),
    "api": ("Deployment", "api"),
}


def test_k8s_has_the_same_processes_and_settings_as_compose() -> None:
    long_running = {n for n, s in envwatch_services().items() if not s.get("profiles")}
    assert long_running == set(PROCESSES)
    for name, (kind, wname) in PROCESSES.items():
        w = k8s(kind, wname)
        compose_env = env_of(SERVICES[name])
        kube_env = k8s_env(w)
        script = w["spec"]["template"]["spec"]["containers"][0].get("command", [""])[-1]
        exported = (
            set(re.findall(r"export ((?:ENVWATCH_\w+=\S+ ?)+)", script)[0].split())
            if "export" in script
            else set()
        )
        kube_names = set(kube_env) - {"POD_NAME"} | {e.split("=")[0] for e in exported}
        assert set(compose_env) == kube_names, (name, set(compose_env) ^ kube_names)
        assert k8s_envwatch_args(w) == list(SERVICES[name]["command"]), name
    # the other images are the same versions
    compose_images = {s["image"] for n, s in SERVICES.items() if n not in envwatch_services()}
    kube_images = {c["image"] for c in _containers(K8S_DOCS)} - {
        "registry.example.invalid/envwatch:0.1.0"
    }
    assert compose_images == kube_images


def test_k8s_scaling_fits_partitions_and_accounts() -> None:
    partitions = int(configmap("envwatch-common")["ENVWATCH_PARTITIONS"])
    worker = k8s("StatefulSet", "worker")
    if K8S_RENDERER == "kubectl":
        assert worker["spec"]["replicas"] == 3  # the overlay's replicas
    assert worker["spec"]["replicas"] <= partitions
    assert worker["spec"]["volumeClaimTemplates"], "a spool per worker pod"
    bridge = k8s("StatefulSet", "bridge")
    env = k8s_env(bridge)
    assert env["ENVWATCH_MQTT_SHARE_GROUP"] == "envwatch-bridge"
    keys = [
        i["key"]
        for v in bridge["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "mqtt"
        for i in v["secret"]["items"]
    ]
    # pod bridge-0 → envwatch-bridge, bridge-i → envwatch-bridge-(i+1): one account per replica
    assert keys == ["envwatch-bridge"] + [
        f"envwatch-bridge-{i + 1}" for i in range(1, bridge["spec"]["replicas"])
    ]
    assert k8s("StatefulSet", "notifier")["spec"]["replicas"] == 1


def test_k8s_secrets_and_configmaps_are_created_by_the_script() -> None:
    """Every Secret or ConfigMap a workload mounts is rendered or made by create-from-files.sh,
    with the keys the workload picks."""
    script = (K8S / "create-from-files.sh").read_text(encoding="utf-8")
    made = set(re.findall(r"apply (?:secret (?:generic|tls)|configmap) \"?([a-z0-9-]+)", script))
    made |= {f"envwatch-{svc}-tls" for svc in ("mosquitto", "kafka", "influxdb", "grafana")}
    rendered = {unhash(d["metadata"]["name"]) for d in K8S_DOCS if d["kind"] == "ConfigMap"}
    for d in K8S_DOCS:
        spec = d.get("spec", {}).get("template", {}).get("spec", {})
        for v in spec.get("volumes", []):
            ref = v.get("secret", {}).get("secretName") or v.get("configMap", {}).get("name")
            if ref is None:
                continue
            base = unhash(ref)
            assert base in made | rendered, f"{d['metadata']['name']}: {base} is made by nobody"
            for item in v.get("secret", {}).get("items", []):
                if base == "envwatch-kafka-passwords":
                    assert f"--from-file={item['key']}=" in script
        for c in spec.get("containers", []):
            for m in c.get("volumeMounts", []):
                if "subPath" in m and m["name"] == "passwords":
                    assert f"--from-file={m['subPath']}=" in script


# =========================================================================== the real mosquitto


def _tls_client(
    port: int, username: str | None, password: str | None, ca: Path | None, client_id: str = ""
) -> tuple[Any, bool | None]:
    """A paho v5 client on 127.0.0.1:port (TLS against ``ca`` when given): (client, refused);
    refused None when no CONNACK came (a failed handshake, or plain MQTT on a TLS port)."""
    connack = threading.Event()
    result: dict[str, bool] = {}

    def on_connect(_c: object, _u: object, _f: object, rc: Any, _p: object) -> None:
        result["refused"] = bool(rc.is_failure)
        connack.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.on_connect = on_connect
    if username is not None:
        client.username_pw_set(username, password)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    try:
        client.connect("127.0.0.1", port)
    except OSError:  # the TLS handshake failed in connect()
        return client, None
    client.loop_start()
    connack.wait(5)
    return client, result.get("refused")


@pytest.mark.integration
def test_compose_mosquitto_config_on_the_real_broker() -> None:
    """The broker conf compose runs — the files the mqtt-accounts service writes, with the
    mosquitto-tls block appended as the service's command does — started on the real
    mosquitto: the TLS listener takes the stack's accounts with the stack's CA (a test CA from
    trustme) and carries a sample from the publisher to a bridge, also after another account
    connected there under the bridge's client id; a client that does not trust
    the CA, plain MQTT on the TLS port and anonymous clients get nothing. Paths and ports are
    moved to a temporary directory and free ports (the container's own are fixed)."""
    binary = embedded.mosquitto_binary()
    if binary is None:
        raise embedded.ServiceUnavailable(
            f"mosquitto is not installed; fix: {embedded.FIX_MOSQUITTO}"
        )
    with tempfile.TemporaryDirectory(prefix="envwatch-stack-mqtt-") as tmp:
        work = Path(tmp)
        plain, tls = embedded.free_port(), embedded.free_port()
        args = list(SERVICES["mqtt-accounts"]["command"])
        for option, value in (
            ("--config", str(DEPLOY / "config")),
            ("--out", str(work)),
            ("--port", str(plain)),
            ("--persistence", str(work)),
        ):
            args[args.index(option) + 1] = value
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        ca, other_ca = trustme.CA(), trustme.CA()
        ca.cert_pem.write_to_path(str(work / "ca.crt"))
        other_ca.cert_pem.write_to_path(str(work / "other-ca.crt"))
        server = ca.issue_cert("127.0.0.1", "localhost", "mosquitto")
        server.private_key_pem.write_to_path(str(work / "server.key"))
        server.cert_chain_pems[0].write_to_path(str(work / "server.crt"))
        block = interpolated_default(COMPOSE_DATA["configs"]["mosquitto-tls"]["content"])
        block = block.replace("listener 8883", f"listener {tls}")
        for secret, path in (
            ("/run/secrets/mosquitto_tls_cert", "server.crt"),
            ("/run/secrets/mosquitto_tls_key", "server.key"),
            ("/run/secrets/ca_cert", "ca.crt"),
        ):
            block = block.replace(secret, str(work / path))
        # what the compose command runs: cat mosquitto.conf tls.conf > the conf it starts with
        conf = work / "compose-mosquitto.conf"
        conf.write_text((work / "mosquitto.conf").read_text() + block)
        embedded.hand_to_broker_user(work)
        creds = json.loads((work / "credentials.json").read_text())
        proc = embedded.Process("mosquitto", [binary, "-c", str(conf)], work, tls)
        proc.start()
        clients = []
        try:
            bridge, refused = _tls_client(
                tls,
                "envwatch-bridge",
                creds["bridge"]["password"],
                work / "ca.crt",
                client_id="envwatch-bridge",  # as the bridges of the stack connect
            )
            clients.append(bridge)
            assert refused is False, "the bridge's account over TLS"
            got: list[str] = []
            bridge.on_message = lambda _c, _u, m: got.append(m.topic)
            bridge.subscribe("env/#", qos=1)
            publisher, refused = _tls_client(
                tls, "envwatch-publisher", creds["publisher"]["password"], work / "ca.crt"
            )
            clients.append(publisher)
            assert refused is False
            publisher.publish("env/air/weifang/aq-wf-01", b"{}", qos=1).wait_for_publish(10)
            for _ in range(200):
                if got:
                    break
                time.sleep(0.02)
            assert got == ["env/air/weifang/aq-wf-01"]
            # another account under the bridge's client id on the TLS listener is given its own
            # username as client id (use_username_as_clientid on this listener too): the bridge
            # keeps its session and still receives what is published next
            intruder, refused = _tls_client(
                tls,
                "envwatch-gateway",
                creds["gateway"]["password"],
                work / "ca.crt",
                client_id="envwatch-bridge",
            )
            clients.append(intruder)
            assert refused is False
            publisher.publish("env/air/weifang/aq-wf-02", b"{}", qos=1).wait_for_publish(10)
            for _ in range(200):
                if len(got) == 2:
                    break
                time.sleep(0.02)
            assert got == ["env/air/weifang/aq-wf-01", "env/air/weifang/aq-wf-02"]
            for username, password, trust in (
                ("envwatch-bridge", creds["bridge"]["password"], work / "other-ca.crt"),
                ("envwatch-bridge", creds["bridge"]["password"], None),  # plain on TLS
                (None, None, work / "ca.crt"),  # anonymous over TLS
            ):
                c, refused = _tls_client(tls, username, password, trust)
                clients.append(c)
                assert refused is not False, (username, trust)
            anonymous_plain, refused = _tls_client(plain, None, None, None)
            clients.append(anonymous_plain)
            assert refused is True, "the loopback listener refuses anonymous clients too"
        finally:
            for c in clients:
                c.disconnect()
                c.loop_stop()
            proc.stop()


def test_k8s_files_the_settings_name_are_mounted() -> None:
    """Every secret or token file an envwatch setting names is under one of the pod's mounts."""
    for kind, wname in set(PROCESSES.values()):
        w = k8s(kind, wname)
        c = w["spec"]["template"]["spec"]["containers"][0]
        mounts = [m["mountPath"] for m in c["volumeMounts"]]
        for key, value in k8s_env(w).items():
            if value.startswith(("/run/secrets/", "/var/lib/envwatch-tokens/")):
                assert any(value.startswith(f"{m}/") for m in mounts), (wname, key, value)


@pytest.mark.parametrize("name", sorted(envwatch_services()))
def test_each_process_environment_is_accepted_by_its_settings(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The environment compose gives an envwatch process, with its secret files present, passes
    every settings class's validation — e.g. a Kafka user with a protocol that has no SASL, a
    CA file without TLS, or a password given both inline and as a file stops a process at start,
    and would only show when the stack is started."""
    for key in [k for k in os.environ if k.startswith("ENVWATCH_")]:
        monkeypatch.delenv(key)
    for key, value in env_of(SERVICES[name]).items():
        value = interpolated_default(value)
        if value.startswith(("/run/secrets/", "/var/lib/envwatch-tokens/")):
            stand_in = tmp_path / value.strip("/").replace("/", "_")
            stand_in.write_text("stand-in secret\n", encoding="utf-8")
            value = str(stand_in)
        monkeypatch.setenv(key, value)
    settings = Settings()
    ApiSettings()
    AlertsSettings()
    if "ENVWATCH_KAFKA_USERNAME" in env_of(SERVICES[name]):
        assert settings.kafka_security_protocol == "SASL_SSL"
        assert settings.kafka_password is not None
        assert settings.kafka_password.get_secret_value() == "stand-in secret"
