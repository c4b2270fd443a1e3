"""API keys of the web lyrics providers: from the environment, or stored encrypted at rest in ``api_config``.

Stored values are Fernet tokens (AES-128-CBC + HMAC-SHA256) under a key derived with HKDF-SHA256 from
``MUSIC_SECRET_KEY``; the plaintext never reaches the database, a log, an exception message or a repr.
The environment wins over ``api_config``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg import Connection
from pydantic import SecretStr

from music_core.settings import Settings

SETTING = {"genius": "genius_token", "brave": "brave_api_key", "tavily": "tavily_api_key"}
MIN_SECRET_CHARS = 16
MAX_KEY_CHARS = 500


class ProviderKeyError(ValueError):
    """A key cannot be stored or read; the message never contains the key."""


def config_name(provider: str) -> str:
    if provider not in SETTING:
        raise ProviderKeyError(f"unknown provider {provider!r}; keyed providers: {', '.join(SETTING)}")
    return f"lyrics.{SETTING[provider]}"


def _fernet(secret: SecretStr | None) -> Fernet:
    raw = secret.get_secret_value() if secret else ""
    if len(raw) < MIN_SECRET_CHARS:
        raise ProviderKeyError(f"set MUSIC_SECRET_KEY (at least {MIN_SECRET_CHARS} characters) to store keys")
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"music-analyzer/api_config", info=b"provider keys v1"
    ).derive(raw.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(value: SecretStr, secret: SecretStr | None) -> str:
    return _fernet(secret).encrypt(value.get_secret_value().encode()).decode("ascii")


def decrypt(token: str, secret: SecretStr | None) -> SecretStr:
    try:
        return SecretStr(_fernet(secret).decrypt(token.encode("ascii")).decode())
    except (InvalidToken, UnicodeError):
        raise ProviderKeyError("stored key cannot be decrypted (was MUSIC_SECRET_KEY changed?)") from None


def mask(value: SecretStr | None) -> str | None:
    """``…wxyz`` for long keys, ``****`` for short ones: enough to tell keys apart, never enough to use one."""
    if value is None:
        return None
    raw = value.get_secret_value()
    return "…" + raw[-4:] if len(raw) >= 16 else "****"


def set_key(conn: Connection, provider: str, value: SecretStr, secret: SecretStr | None) -> None:
    raw = value.get_secret_value()
    if not raw or len(raw) > MAX_KEY_CHARS or any(ch.isspace() for ch in raw):
        raise ProviderKeyError(f"a key is 1-{MAX_KEY_CHARS} characters without spaces")
    conn.execute(
        "INSERT INTO api_config (key, value, encrypted, updated_at) VALUES (%s, %s, TRUE, now())"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, encrypted = TRUE, updated_at = now()",
        (config_name(provider), encrypt(value, secret)),
    )


def delete_key(conn: Connection, provider: str) -> bool:
    return conn.execute("DELETE FROM api_config WHERE key = %s", (config_name(provider),)).rowcount > 0


def stored_key(conn: Connection, provider: str, secret: SecretStr | None) -> SecretStr | None:
    row = conn.execute(
        "SELECT value, encrypted FROM api_config WHERE key = %s", (config_name(provider),)
    ).fetchone()
    if row is None or not row[0]:
        return None
    return decrypt(row[0], secret) if row[1] else SecretStr(row[0])


@dataclass(frozen=True)
class ResolvedKeys:
    keys: dict[str, SecretStr | None]
    notes: tuple[str, ...]


def resolve_keys(settings: Settings, conn: Connection | None) -> ResolvedKeys:
    """Each provider's key: the environment first, then ``api_config``; unreadable keys become notes."""
    keys: dict[str, SecretStr | None] = {}
    notes: list[str] = []
    for provider, field in SETTING.items():
        value: SecretStr | None = getattr(settings, field)
        if (value is None or not value.get_secret_value()) and conn is not None:
            try:
                value = stored_key(conn, provider, settings.secret_key)
            except ProviderKeyError as exc:
                notes.append(f"{provider}: {exc}")
                value = None
        keys[provider] = value
    return ResolvedKeys(keys, tuple(notes))


def web_urls(settings: Settings) -> dict[str, str]:
    return {"genius": settings.genius_url, "brave": settings.brave_url, "tavily": settings.tavily_url}


def list_masked(settings: Settings, conn: Connection) -> list[dict[str, Any]]:
    """Where each provider's key comes from, masked."""
    out = []
    for provider, field in SETTING.items():
        env: SecretStr | None = getattr(settings, field)
        row = conn.execute(
            "SELECT encrypted, updated_at FROM api_config WHERE key = %s", (config_name(provider),)
        ).fetchone()
        try:
            stored = stored_key(conn, provider, settings.secret_key) if row else None
            problem = None
        except ProviderKeyError as exc:
            stored, problem = None, str(exc)
        source = "environment" if env else ("api_config" if row else None)
        out.append({
            "provider": provider, "source": source, "masked": mask(env or stored),
            "encrypted": bool(row[0]) if row else None, "updated_at": row[1].isoformat() if row else None,
            "problem": problem,
        })  # fmt: skip
    return out
