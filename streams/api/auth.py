"""Principals and bearer tokens of the alerts service (docs/api.md §3).

The principals file (YAML) names each principal, its role and scope, and its token **by
reference** only: ``token: {env: VAR}`` or ``token: {file: PATH}``. An inline token is an error
naming the file and line. Only SHA-256 digests of the tokens are kept; a presented token is
compared with :func:`hmac.compare_digest` against every principal's digest (no early exit, so
the time taken does not reveal which principal matched). Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml


class Role(StrEnum):
    DUTY = "duty"  # a locality's duty officer (``locality``) or all localities (none)
    ENTERPRISE = "enterprise"  # one enterprise: only alerts labelled with its id
    EMERGENCY = "emergency"  # emergency office: heavy-pollution-weather warnings
    ADMIN = "admin"  # everything


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    locality: str | None = None  # duty: its locality (None: all)
    enterprise: str | None = None  # enterprise: its id


class PrincipalsError(ValueError):
    """A principals file that cannot be used (the message names file and line)."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class Auth:
    """Who holds a token."""

    def __init__(self, entries: list[tuple[bytes, Principal]]) -> None:
        self._entries = list(entries)

    @classmethod
    def from_tokens(cls, tokens: Mapping[str, Principal]) -> Auth:
        return cls([(digest(t), p) for t, p in tokens.items()])

    @property
    def principals(self) -> list[Principal]:
        return [p for _, p in self._entries]

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal holding ``token``, None for none. Every digest is compared."""
        presented = digest(token or "")
        found: Principal | None = None
        for d, p in self._entries:
            match = hmac.compare_digest(d, presented)
            if match and found is None:
                found = p
        if not token:
            return None
        return found


def _line_of_inline_tokens(text: str) -> list[int]:
    """1-based lines of ``token:`` values that are not a mapping (an inline token)."""
    lines: list[int] = []
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key, value in root.value:
        if getattr(key, "value", None) != "principals" or not isinstance(value, yaml.SequenceNode):
            continue
        for item in value.value:
            if not isinstance(item, yaml.MappingNode):
                continue
            for k, v in item.value:
                if getattr(k, "value", None) == "token" and not isinstance(v, yaml.MappingNode):
                    lines.append(v.start_mark.line + 1)
    return lines


def _token_of(ref: Any, where: str, env: Mapping[str, str], base: Path) -> str:
    if not isinstance(ref, Mapping) or len(ref) != 1 or not ({"env", "file"} & set(ref)):
        raise PrincipalsError(f"{where}: token must be {{env: VAR}} or {{file: PATH}}")
    if "env" in ref:
        var = str(ref["env"])
        value = env.get(var, "")
        if not value:
            raise PrincipalsError(f"{where}: environment variable {var} is not set")
        return value.strip()
    path = Path(str(ref["file"]))
    if not path.is_absolute():
        path = base / path
    try:
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PrincipalsError(f"{where}: token file {path}: {exc.strerror}") from exc
    if not value:
        raise PrincipalsError(f"{where}: token file {path} is empty")
    return value


def load_principals(path: Path, env: Mapping[str, str] | None = None) -> Auth:
    """Read a principals file; raises :class:`PrincipalsError` naming file and line."""
    env = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PrincipalsError(f"{path}: {exc.strerror}") from exc
    try:
        inline = _line_of_inline_tokens(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise PrincipalsError(f"{path}: not valid YAML: {exc}") from exc
    if inline:
        raise PrincipalsError(
            f"{path}:{inline[0]}: inline token — give it by reference "
            "({env: VAR} or {file: PATH}), never in the file"
        )
    items = data.get("principals") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise PrincipalsError(f"{path}: expected 'principals:' with a list")
    entries: list[tuple[bytes, Principal]] = []
    names: set[str] = set()
    for i, item in enumerate(items):
        where = f"{path}: principals[{i}]"
        if not isinstance(item, Mapping):
            raise PrincipalsError(f"{where}: expected a mapping")
        name = str(item.get("name") or "")
        if not name or name in names:
            raise PrincipalsError(f"{where}: missing or repeated name {name!r}")
        names.add(name)
        try:
            role = Role(str(item.get("role")))
        except ValueError as exc:
            raise PrincipalsError(
                f"{where}: role must be one of {', '.join(r.value for r in Role)}"
            ) from exc
        locality = item.get("locality")
        enterprise = item.get("enterprise")
        if role is Role.ENTERPRISE and not enterprise:
            raise PrincipalsError(f"{where}: an enterprise principal needs 'enterprise'")
        p = Principal(
            name,
            role,
            locality=str(locality) if locality and role is Role.DUTY else None,
            enterprise=str(enterprise) if role is Role.ENTERPRISE else None,
        )
        token = _token_of(item.get("token"), where, env, path.parent)
        entries.append((digest(token), p))
    return Auth(entries)
