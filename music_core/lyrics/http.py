"""HTTP for lyrics providers: timeouts, retries with backoff (429 Retry-After honoured), a minimum
interval per provider, and a Redis cache of lookups with a TTL that is skipped when Redis is down."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from typing import Any

import httpx
import redis

log = logging.getLogger(__name__)
USER_AGENT = "music-analyzer/0.1 (self-hosted music analysis)"


class ProviderHttp:
    def __init__(
        self,
        name: str,
        *,
        cache_url: str | None = None,
        ttl_seconds: int = 7 * 24 * 3600,
        timeout: float = 8.0,
        retries: int = 2,
        min_interval: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.ttl = ttl_seconds
        self.retries = retries
        self.min_interval = min_interval
        self._last = 0.0
        self._lock = threading.Lock()
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 4.0)),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            transport=transport,
        )
        self._cache = (
            redis.Redis.from_url(cache_url, socket_timeout=0.3, socket_connect_timeout=0.3)
            if cache_url
            else None
        )

    def close(self) -> None:
        self._client.close()

    def _cache_key(self, url: str, params: dict[str, Any]) -> str:
        body = json.dumps([url, sorted(params.items())], default=str)
        return f"lyrics:{self.name}:{hashlib.sha256(body.encode()).hexdigest()}"

    def _cached(self, key: str) -> tuple[bool, Any]:
        if self._cache is None:
            return False, None
        try:
            raw = self._cache.get(key)
        except redis.RedisError:
            return False, None
        return (True, json.loads(raw)) if raw is not None else (False, None)

    def _store(self, key: str, value: Any) -> None:
        if self._cache is not None:
            try:
                self._cache.set(key, json.dumps(value), ex=self.ttl)
            except redis.RedisError:
                pass

    def _pace(self) -> None:
        with self._lock:
            wait = self._last + self.min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            self._last = time.monotonic()

    def get_json(self, url: str, params: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        """Decoded JSON, or None for 404. Raises httpx.HTTPError when the provider stays unusable."""
        key = self._cache_key(url, params)
        hit, value = self._cached(key)
        if hit:
            return value
        for attempt in range(self.retries + 1):
            self._pace()
            try:
                response = self._client.get(url, params=params, headers=headers)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                time.sleep(0.5 * 2**attempt)
                continue
            if response.status_code == 404:
                self._store(key, None)
                return None
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self.retries:
                    response.raise_for_status()
                time.sleep(_retry_after(response, default=0.5 * 2**attempt))
                continue
            response.raise_for_status()
            value = response.json()
            self._store(key, value)
            return value
        return None


def _retry_after(response: httpx.Response, default: float, cap: float = 30.0) -> float:
    try:
        return min(cap, max(0.0, float(response.headers.get("Retry-After", default))))
    except ValueError:
        return default
