"""Secrets from files (alerts/secretfiles.py): ``ENVWATCH_<PREFIX>X_FILE`` for every SecretStr ``x``.

What an operator notices: a Docker/Kubernetes secret file works in place of the variable, its
trailing newline does not become part of the password, giving both is refused with a message
that names the two variables, and no message or repr ever shows the secret.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from alerts.secretfiles import SecretFileError
from alerts.settings import AlertsSettings
from streams.api.settings import ApiSettings
from streams.settings import Settings

SECRET = "s3cret-Kafka-pw-7f1c"  # an invented value; searched for in every message below


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ENVWATCH_KAFKA_PASSWORD",
        "ENVWATCH_KAFKA_PASSWORD_FILE",
        "ENVWATCH_KAFKA_USERNAME",
        "ENVWATCH_KAFKA_SECURITY_PROTOCOL",
        "ENVWATCH_INFLUX_TOKEN",
        "ENVWATCH_INFLUX_TOKEN_FILE",
        "ENVWATCH_ALERTS_SMTP_URL",
        "ENVWATCH_ALERTS_SMTP_URL_FILE",
        "ENVWATCH_API_TOKEN",
        "ENVWATCH_API_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def _file(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def test_a_secret_file_replaces_the_variable_and_loses_its_trailing_newline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `echo s3cret > file` writes "s3cret\n": the password is "s3cret"
    monkeypatch.setenv("ENVWATCH_INFLUX_TOKEN_FILE", str(_file(tmp_path, "t", SECRET + "\n")))
    s = Settings()
    assert s.influx_token is not None
    assert s.influx_token.get_secret_value() == SECRET
    assert SECRET not in repr(s)
    assert SECRET not in str(s.model_dump())


def test_only_one_line_break_is_stripped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a Windows-edited file ends in \r\n; inner and leading spaces are part of the secret
    monkeypatch.setenv("ENVWATCH_INFLUX_TOKEN_FILE", str(_file(tmp_path, "t", " a b\n\r\n")))
    token = Settings().influx_token
    assert token is not None
    assert token.get_secret_value() == " a b\n"


def test_the_kafka_password_file_feeds_the_sasl_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("ENVWATCH_KAFKA_USERNAME", "envwatch-worker")
    monkeypatch.setenv("ENVWATCH_KAFKA_PASSWORD_FILE", str(_file(tmp_path, "p", SECRET + "\n")))
    s = Settings()
    assert s.kafka_password is not None
    assert s.kafka_password.get_secret_value() == SECRET


def test_variable_and_file_both_set_is_refused_without_showing_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVWATCH_INFLUX_TOKEN", SECRET)
    monkeypatch.setenv("ENVWATCH_INFLUX_TOKEN_FILE", str(_file(tmp_path, "t", "other-" + SECRET)))
    with pytest.raises(SecretFileError) as info:
        Settings()
    message = str(info.value)
    assert "ENVWATCH_INFLUX_TOKEN " in message
    assert "ENVWATCH_INFLUX_TOKEN_FILE" in message
    assert SECRET not in message


def test_a_missing_or_empty_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("ENVWATCH_INFLUX_TOKEN_FILE", str(missing))
    with pytest.raises(SecretFileError, match=r"ENVWATCH_INFLUX_TOKEN_FILE=.*nope: cannot read"):
        Settings()
    monkeypatch.setenv("ENVWATCH_INFLUX_TOKEN_FILE", str(_file(tmp_path, "empty", "\n")))
    with pytest.raises(SecretFileError, match="is empty"):
        Settings()


def test_the_alerts_service_reads_its_secret_files_under_its_own_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"mailtos://duty:{SECRET}@smtp.example.invalid"
    monkeypatch.setenv("ENVWATCH_ALERTS_SMTP_URL_FILE", str(_file(tmp_path, "smtp", url + "\n")))
    s = AlertsSettings()
    assert s.smtp_url is not None
    assert s.smtp_url.get_secret_value() == url
    assert SECRET not in repr(s)


def test_the_api_settings_read_secret_files_under_their_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ApiSettings has no secret of its own yet; a subclass with one (as ``ENVWATCH_API_TOKEN``
    would be) shows that the source follows the model's ``ENVWATCH_API_`` prefix."""

    class WithToken(ApiSettings):
        token: SecretStr | None = None

    monkeypatch.setenv("ENVWATCH_API_TOKEN_FILE", str(_file(tmp_path, "tok", SECRET + "\n")))
    s = WithToken()
    assert s.token is not None
    assert s.token.get_secret_value() == SECRET
    # the streams prefix does not pick it up
    monkeypatch.setenv("ENVWATCH_TOKEN_FILE", str(tmp_path / "unused"))
    assert Settings().influx_token is None


def test_a_settings_error_does_not_echo_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    # SASL without a user: refused, and the password given is not in the message
    monkeypatch.setenv("ENVWATCH_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ENVWATCH_KAFKA_PASSWORD", SECRET)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "ENVWATCH_KAFKA_USERNAME" in str(info.value)
    assert SECRET not in str(info.value)
