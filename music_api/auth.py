"""Authentication (HTTP Basic, API keys, bearer token) and roles (reader, admin)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import (
    APIKeyHeader,
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from music_core.passwords import hash_key, hash_password, verify_password
from music_core.settings import Settings

ROLES = ("reader", "admin")
_bearer = HTTPBearer(auto_error=False, description="API token or API key")
_basic = HTTPBasic(auto_error=False, realm="music-analyzer", description="user name and password")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
_DUMMY_HASH = hash_password("timing equaliser")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str


class VerifiedPasswords:
    """Recently verified Basic-auth credentials. A browser sends the same user name and password with
    every request (each seek of an ``<audio>`` element is one), and scrypt costs about 20 ms of CPU per
    check: without this, a handful of listeners keep both cores busy hashing. Entries are keyed by an
    HMAC under a random per-process key, so nothing held here reveals or tests a password offline;
    they expire after ``ttl_seconds`` and the least recently used go first beyond ``capacity``. Failed
    checks are never remembered (they stay slow, and the rate limiter counts them)."""

    def __init__(
        self, ttl_seconds: float = 300, capacity: int = 1024, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._secret = secrets.token_bytes(32)
        self._ttl, self._capacity, self._clock = ttl_seconds, capacity, clock
        self._entries: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, user: str, password: str) -> bytes:
        message = f"{len(user)}:{user}:{password}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def get(self, user: str, password: str) -> Principal | None:
        key = self._key(user, password)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, user: str, password: str, principal: Principal) -> None:
        key = self._key(user, password)
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl, principal)
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class CredentialStore:
    """Built once per app from configuration; holds only hashes."""

    def __init__(self, settings: Settings, verified: VerifiedPasswords | None = None) -> None:
        self.verified = verified or VerifiedPasswords()
        self.keys: dict[str, Principal] = {}
        self.users: dict[str, tuple[str, Principal]] = {}
        if settings.api_token:
            self.keys[hash_key(settings.api_token.get_secret_value())] = Principal("token", "admin")
        for entry in settings.api_keys:
            name, role, digest = _split(entry, "MUSIC_API_KEYS")
            self.keys[digest.lower()] = Principal(name, role)
        for entry in settings.api_users:
            name, role, stored = _split(entry, "MUSIC_API_USERS")
            self.users[name] = (stored, Principal(name, role))

    def by_key(self, key: str) -> Principal | None:
        digest = hash_key(key)
        for known, principal in self.keys.items():
            if hmac.compare_digest(known, digest):
                return principal
        return None

    def by_password(self, user: str, password: str) -> Principal | None:
        remembered = self.verified.get(user, password)
        if remembered is not None:
            return remembered
        stored, principal = self.users.get(user, (_DUMMY_HASH, None))
        ok = verify_password(password, stored)  # run even for unknown users: no timing oracle
        if not ok or principal is None:
            return None
        self.verified.put(user, password, principal)
        return principal


def _split(entry: str, variable: str) -> tuple[str, str, str]:
    name, _, rest = entry.partition(":")
    role, _, secret = rest.partition(":")
    if not name or role not in ROLES or not secret:
        raise ValueError(f"{variable} entries look like name:reader|admin:hash")
    return name, role, secret


async def authenticate(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    store: CredentialStore = request.app.state.credentials
    principal = None
    if api_key:
        principal = store.by_key(api_key)
    elif bearer and bearer.scheme.lower() == "bearer":
        principal = store.by_key(bearer.credentials)
    elif basic:  # scrypt runs in a worker thread; a remembered password is answered on the loop
        principal = store.verified.get(basic.username, basic.password) or await run_in_threadpool(
            store.by_password, basic.username, basic.password
        )
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authentication required",
            headers={"WWW-Authenticate": 'Basic realm="music-analyzer", Bearer'},
        )
    request.state.principal = principal
    return principal


# The dependencies are coroutines: FastAPI runs a plain ``def`` dependency in a worker thread, and these
# hops cost more CPU than the checks themselves on every request (measured by ``make bench-stream``).
async def limited(request: Request, principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    retry = await request.app.state.rate_limiter.ahit("principal", principal.name)
    if retry is not None:
        raise HTTPException(429, "too many requests for this account", headers={"Retry-After": str(retry)})
    return principal


async def require_reader(principal: Annotated[Principal, Depends(limited)]) -> Principal:
    return principal


async def require_admin(principal: Annotated[Principal, Depends(limited)]) -> Principal:
    if principal.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin role required")
    return principal
