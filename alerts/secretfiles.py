"""Secrets from files: every ``SecretStr`` setting ``ENVWATCH_<PREFIX>X`` may be given as a file.

Container platforms hand secrets over as files (Docker/compose ``secrets:`` under
``/run/secrets/``, Kubernetes secret volumes), not as environment variables, which leak into
``/proc/<pid>/environ``, ``docker inspect`` and crash reports. So for every top-level field of a
settings model whose type is ``SecretStr`` (or ``SecretStr | None``), the environment variable
``<env_prefix><FIELD>_FILE`` names a file whose content is the value:

    ENVWATCH_KAFKA_PASSWORD_FILE=/run/secrets/kafka-password   # instead of ENVWATCH_KAFKA_PASSWORD
    ENVWATCH_INFLUX_TOKEN_FILE=/run/secrets/influx-token

One trailing line break (``\\n`` or ``\\r\\n``) is stripped, nothing else: ``echo secret > f``
gives ``secret``. Setting both the variable and its ``_FILE`` is an error that names both
variables; an unreadable or empty file is an error that names the variable and the path. No
message ever contains the secret.

Use :class:`SecretFilesMixin` as the base of a ``BaseSettings`` model (streams.settings,
streams.api.settings, alerts.settings). It lives in alerts/ because alerts/ may not import
streams/ (alerts/ruff.toml) while streams/ may import alerts/. Nested models (``ENVWATCH_ALERTS_MQTT__…``) are not
covered: their secrets have their own ``…_FILE`` fields (``MqttAlertSettings.password_file``).
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

SUFFIX = "_FILE"


class SecretFileError(ValueError):
    """A ``…_FILE`` secret setting is ambiguous or unreadable (the message holds no secret)."""


def is_secret(annotation: Any) -> bool:
    """True for ``SecretStr`` and ``SecretStr | None`` (``Optional[SecretStr]``)."""
    if annotation is SecretStr:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(arg is SecretStr for arg in typing.get_args(annotation))
    return False


def read_secret_file(path: Path, variable: str) -> str:
    """The content of ``path`` with one trailing line break stripped.

    Errors name ``variable`` and the path, never content."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretFileError(
            f"{variable}={path}: cannot read the file ({type(exc).__name__}: "
            f"{getattr(exc, 'strerror', None) or 'not UTF-8 text'})"
        ) from None
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        raise SecretFileError(f"{variable}={path}: the file is empty")
    return text


class SecretFilesSource(PydanticBaseSettingsSource):
    """Values of ``SecretStr`` fields read from the files named by ``<PREFIX><FIELD>_FILE``."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        prefix = str(settings_cls.model_config.get("env_prefix") or "")
        self.case_sensitive = bool(settings_cls.model_config.get("case_sensitive", False))
        self.prefix = prefix if self.case_sensitive else prefix.upper()

    def _environ(self) -> dict[str, str]:
        if self.case_sensitive:
            return dict(os.environ)
        return {k.upper(): v for k, v in os.environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        # Required by the base class; __call__ does the work for all fields at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = self._environ()
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            if not is_secret(field.annotation):
                continue
            key = self.prefix + (name if self.case_sensitive else name.upper())
            file_key = key + SUFFIX
            path = env.get(file_key)
            if path is None or path == "":
                continue
            if env.get(key) not in (None, ""):
                raise SecretFileError(
                    f"both {key} and {file_key} are set: give the secret one way only"
                )
            values[name] = read_secret_file(Path(path), file_key)
        return values

    def __repr__(self) -> str:
        return f"SecretFilesSource(prefix={self.prefix!r})"


class SecretFilesMixin(BaseSettings):
    """Adds :class:`SecretFilesSource` after the environment (the variable itself wins; both set
    is an error anyway) and before dotenv and pydantic's secrets directory."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            SecretFilesSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )
