"""Short-lived signed stream URLs for the web page's <audio> element.

An <audio> element cannot send an Authorization header, so the page asks (authenticated) for a URL
that carries its own proof: HMAC-SHA256 over track id, version and expiry with a server-side key.
The URL grants reading that one track's audio, in that one version, until it expires; nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from music_core.settings import Settings

_CONTEXT = b"music-analyzer/signed-stream-url/v1"


def signing_key(settings: Settings) -> bytes:
    """Derived from MUSIC_SECRET_KEY (else the API token), so every worker of one deployment agrees;
    with neither, random per process (then links only work against the worker that issued them)."""
    for secret in (settings.secret_key, settings.api_token):
        if secret and secret.get_secret_value():
            return hmac.new(secret.get_secret_value().encode(), _CONTEXT, hashlib.sha256).digest()
    return secrets.token_bytes(32)


@dataclass(frozen=True)
class UrlSigner:
    key: bytes
    ttl_seconds: int = 3600

    def _mac(self, track_id: str, version: str, expires: int) -> str:
        message = f"{track_id}\n{version}\n{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def sign(self, track_id: str, version: str, now: float | None = None) -> tuple[int, str]:
        expires = int(now if now is not None else time.time()) + self.ttl_seconds
        return expires, self._mac(track_id, version, expires)

    def verify(
        self, track_id: str, version: str, expires: int, signature: str, now: float | None = None
    ) -> bool:
        current = now if now is not None else time.time()
        if not current <= expires <= current + self.ttl_seconds + 60:  # expired, or minted far ahead
            return False
        return hmac.compare_digest(self._mac(track_id, version, expires), signature)
