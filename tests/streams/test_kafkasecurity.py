"""Kafka TLS and SASL/SCRAM settings → aiokafka and Faust (streams/kafkasecurity.py).

SASL/SCRAM cannot be proven against a real broker here: Tansu 0.6.0 has ``--authentication``
and ``tansu user create``, but creating a user against a broker started with
``--authentication`` fails (``early eof``) and its memory storage forgets users on restart. So
these tests check what the helper hands to aiokafka and Faust, and that aiokafka and Faust
accept it (clients constructed, Faust's own translation to aiokafka arguments). TLS is proven
live in test_kafka_tls_live.py.
"""

from __future__ import annotations

import ast
import asyncio
import ssl
from pathlib import Path

import faust
import pytest
import trustme
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr, ValidationError

from streams import kafkasecurity
from streams.kafkasecurity import KafkaSecurity, KafkaSecurityError
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "scram-pw-for-a-test-91d2"  # invented


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def _sasl_ssl(ca_file: Path) -> Settings:
    return Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_username="envwatch-worker",
        kafka_password=SecretStr(PASSWORD),
        kafka_ca_file=ca_file,
    )


def test_plaintext_is_the_default_and_adds_nothing() -> None:
    s = Settings()
    assert kafkasecurity.client_kwargs(s) == {"security_protocol": "PLAINTEXT"}
    assert kafkasecurity.broker_credentials(s) is None


def test_sasl_ssl_gives_aiokafka_a_verifying_context_and_the_scram_user(ca_file: Path) -> None:
    kwargs = kafkasecurity.client_kwargs(_sasl_ssl(ca_file))
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"  # the documented default
    assert kwargs["sasl_plain_username"] == "envwatch-worker"
    assert kwargs["sasl_plain_password"] == PASSWORD
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    # the CA from the file is the one trusted (trustme's subject), not only the system's
    subjects = [str(c["subject"]) for c in context.get_ca_certs()]
    assert any("trustme" in s for s in subjects)


def test_aiokafka_accepts_the_options_for_every_client_kind(ca_file: Path) -> None:
    """Construction runs aiokafka's own checks (aiokafka/client.py: SSL needs a context, SCRAM
    needs a user and password); nothing connects."""
    for protocol in ("SSL", "SASL_SSL", "SASL_PLAINTEXT"):
        s = Settings(
            kafka_security_protocol=protocol,
            kafka_username="envwatch-api" if protocol.startswith("SASL") else None,
            kafka_password=SecretStr(PASSWORD) if protocol.startswith("SASL") else None,
            kafka_ca_file=ca_file if protocol.endswith("SSL") else None,
            kafka_sasl_mechanism="SCRAM-SHA-256",
        )
        kw = kafkasecurity.client_kwargs(s)

        async def construct(kw: dict[str, object] = kw) -> list[object]:
            producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **kw)
            consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", **kw)
            admin = AIOKafkaAdminClient(bootstrap_servers="127.0.0.1:1", **kw)
            return [producer.client, consumer._client, admin._client]

        for client in asyncio.run(construct()):
            assert client._security_protocol == protocol  # type: ignore[attr-defined]
            if protocol.startswith("SASL"):
                assert client._sasl_mechanism == "SCRAM-SHA-256"  # type: ignore[attr-defined]


def test_faust_turns_the_credentials_into_the_same_aiokafka_options(ca_file: Path) -> None:
    s = _sasl_ssl(ca_file)
    credentials = kafkasecurity.broker_credentials(s)
    assert isinstance(credentials, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(credentials)  # what Faust gives its aiokafka clients
    assert auth["security_protocol"] == "SASL_SSL"
    assert auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "envwatch-worker"
    assert auth["sasl_plain_password"] == PASSWORD
    assert isinstance(auth["ssl_context"], ssl.SSLContext)
    tls_only = Settings(kafka_security_protocol="SSL", kafka_ca_file=ca_file)
    auth = credentials_to_aiokafka_auth(kafkasecurity.broker_credentials(tls_only))
    assert auth["security_protocol"] == "SSL"


def test_the_worker_app_carries_the_credentials(ca_file: Path, tmp_path: Path) -> None:
    from streams.app import create_app

    s = _sasl_ssl(ca_file).model_copy(update={"data_dir": tmp_path / "faust"})
    app = create_app(s)
    assert app.conf.broker_credentials is not None
    assert credentials_to_aiokafka_auth(app.conf.broker_credentials)["security_protocol"] == (
        "SASL_SSL"
    )


def test_no_repr_shows_the_password(ca_file: Path) -> None:
    s = _sasl_ssl(ca_file)
    security = KafkaSecurity.of(s)
    credentials = kafkasecurity.broker_credentials(s)
    for text in (repr(s), str(s), repr(security), str(security), repr(credentials)):
        assert PASSWORD not in text


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "ENVWATCH_KAFKA_USERNAME"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_username": "u"},
            "ENVWATCH_KAFKA_PASSWORD",
        ),
        ({"kafka_ca_file": Path("/ca.pem")}, "does not use TLS"),
        (
            {"kafka_security_protocol": "SSL", "kafka_key_file": Path("/k.pem")},
            "ENVWATCH_KAFKA_KEY_FILE set without ENVWATCH_KAFKA_CERT_FILE",
        ),
        (
            {"kafka_username": "u", "kafka_password": SecretStr(PASSWORD)},
            "does not authenticate with SASL",
        ),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "GSSAPI",
                "kafka_username": "u",
                "kafka_password": SecretStr(PASSWORD),
            },
            "kafka_sasl_mechanism",
        ),
    ],
)
def test_inconsistent_settings_are_refused_clearly(fields: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(**fields)  # type: ignore[arg-type]
    assert says in str(info.value)
    assert PASSWORD not in str(info.value)


def test_an_unreadable_ca_file_names_the_variable(tmp_path: Path) -> None:
    s = Settings(kafka_security_protocol="SSL", kafka_ca_file=tmp_path / "missing-ca.pem")
    with pytest.raises(KafkaSecurityError, match=r"ENVWATCH_KAFKA_CA_FILE=.*missing-ca\.pem"):
        kafkasecurity.client_kwargs(s)


def test_without_settings_the_environment_is_read(
    ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alerts API and the delivery tools have no streams Settings: they read the same
    ENVWATCH_KAFKA_* variables."""
    monkeypatch.setenv("ENVWATCH_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("ENVWATCH_KAFKA_CA_FILE", str(ca_file))
    kw = kafkasecurity.client_kwargs()
    assert kw["security_protocol"] == "SSL"
    assert isinstance(kw["ssl_context"], ssl.SSLContext)


# --------------------------------------------------------------------------- every client uses it

CLIENTS = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_name(node.value)}.{node.attr}"
    return ""


def _uses_helper(call: ast.Call, helper: str) -> bool:
    values = [k.value for k in call.keywords]
    return any(isinstance(v, ast.Call) and _name(v.func).split(".")[-1] == helper for v in values)


def client_constructions(root: Path) -> list[tuple[str, int, str, bool]]:
    """(file, line, what, uses the helper) for every Kafka client or faust.App constructed."""
    found = []
    for package in ("streams", "ingest", "alerts"):
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = _name(node.func)
                short = name.split(".")[-1]
                rel = str(path.relative_to(root))
                if short in CLIENTS:
                    found.append((rel, node.lineno, short, _uses_helper(node, "client_kwargs")))
                elif name in ("faust.App", "App") and rel.startswith("streams"):
                    ok = any(
                        k.arg == "broker_credentials"
                        and isinstance(k.value, ast.Call)
                        and _name(k.value.func).endswith("broker_credentials")
                        for k in node.keywords
                    )
                    found.append((rel, node.lineno, name, ok))
    return found


def test_every_kafka_client_of_envwatch_goes_through_the_helper() -> None:
    found = client_constructions(ROOT)
    files = {f for f, *_ in found}
    # the scan sees the known call sites (so it cannot pass by finding nothing)
    for expected in (
        "streams/app.py",
        "streams/api/kafka.py",
        "streams/deliveries.py",
        "streams/topics.py",
        "streams/state.py",
        "streams/brokerwatch.py",
        "streams/agents/notify.py",
        "streams/cli/gateway.py",
        "ingest/bridge.py",
    ):
        assert expected in files, f"no Kafka client found in {expected}"
    bare = [f"{f}:{line} {what}" for f, line, what, ok in found if not ok]
    assert bare == [], "Kafka clients built without streams.kafkasecurity: " + ", ".join(bare)


def test_the_scan_catches_a_bare_client(tmp_path: Path) -> None:
    (tmp_path / "streams").mkdir()
    (tmp_path / "ingest").mkdir()
    (tmp_path / "alerts").mkdir()
    (tmp_path / "streams" / "x.py").write_text(
        "from aiokafka import AIOKafkaProducer\n"
        "import faust\n"
        "p = AIOKafkaProducer(bootstrap_servers='h:1')\n"
        "a = faust.App('x', broker='kafka://h:1')\n",
        encoding="utf-8",
    )
    assert [ok for *_, ok in client_constructions(tmp_path)] == [False, False]
