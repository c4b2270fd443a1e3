"""HTTP for lyrics providers: timeouts (also on slowly trickling bodies), a size cap, retries with backoff
(429 Retry-After honoured), announced ``X-RateLimit-*`` windows, a minimum
interval per provider, and a Redis cache of lookups with a TTL that is skipped when Redis is down."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

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
        max_bytes: int = 4 * 1024 * 1024,
        max_wait: float = 30.0,
    ) -> None:
        self.name = name
        self.total_timeout = timeout * 2  # connect + a slowly trickling body, all told
        self.max_bytes = max_bytes
        self.max_wait = max_wait
        self._not_before: dict[str, float] = {}  # per host: a page site is not the API
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
            event_hooks={"response": [refuse_redirects_to_other_hosts]},
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

    def _wait_rate_window(self, host: str) -> None:
        """Sleep out a short rate-limit window the host announced; fail fast on a long one."""
        wait = self._not_before.get(host, 0.0) - time.monotonic()
        if wait > self.max_wait:
            raise RateLimited(f"{self.name}: rate limit exhausted for {wait:.0f} s more")
        if wait > 0:
            time.sleep(wait)

    def _note_rate_headers(self, host: str, response: httpx.Response) -> None:
        """``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` may hold one value per window (Brave: "1, 15000")."""
        remaining = _numbers(response.headers.get("X-RateLimit-Remaining"))
        reset = _numbers(response.headers.get("X-RateLimit-Reset"))
        waits = [r for left, r in zip(remaining, reset, strict=False) if left <= 0]
        if waits:
            self._not_before[host] = max(self._not_before.get(host, 0.0), time.monotonic() + max(waits))

    def _request(
        self, url: str, params: dict[str, Any], headers: dict[str, str] | None
    ) -> httpx.Response | None:
        """The response (body read within the total time limit and size cap), or None for 404."""
        host = urlsplit(url).netloc
        for attempt in range(self.retries + 1):
            self._wait_rate_window(host)
            self._pace()
            try:
                response = self._send(url, params, headers)
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
                time.sleep(0.5 * 2**attempt)
                continue
            self._note_rate_headers(host, response)
            if response.status_code == 404:
                return None
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self.retries:
                    response.raise_for_status()
                time.sleep(_retry_after(response, default=0.5 * 2**attempt))
                continue
            response.raise_for_status()
            return response
        return None

    def _send(self, url: str, params: dict[str, Any], headers: dict[str, str] | None) -> httpx.Response:
        deadline = time.monotonic() + self.total_timeout
        with self._client.stream("GET", url, params=params, headers=headers) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise httpx.ReadError(f"{self.name}: body larger than {self.max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout(f"{self.name}: body not complete within {self.total_timeout} s")
        return httpx.Response(
            response.status_code, headers=response.headers, content=bytes(body), request=response.request
        )

    def get_json(self, url: str, params: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        """Decoded JSON, or None for 404. Raises httpx.HTTPError when the provider stays unusable."""
        key = self._cache_key(url, params)
        hit, value = self._cached(key)
        if hit:
            return value
        response = self._request(url, params, headers)
        value = response.json() if response is not None else None
        self._store(key, value)
        return value

    def get_text(self, url: str, headers: dict[str, str] | None = None) -> str | None:
        """A page as text (untrusted), or None for 404; cached like JSON lookups."""
        key = self._cache_key(url, {"as": "text"})
        hit, value = self._cached(key)
        if hit:
            return value
        response = self._request(url, {}, headers)
        value = response.text if response is not None else None
        self._store(key, value)
        return value

    def remember(self, parts: dict[str, Any], compute: Callable[[], Any]) -> Any:
        """Cache any lookup (e.g. an SDK call) under ``parts``; the value must be JSON."""
        key = self._cache_key("call", parts)
        hit, value = self._cached(key)
        if hit:
            return value
        value = compute()
        self._store(key, value)
        return value


class RedirectRefused(httpx.HTTPError):
    """A page redirected to another host: pages come from search results, so an untrusted site
    could otherwise send our request to anything this machine reaches (its own services included)."""


def _site(host: str) -> str:
    return host.lower().rstrip(".").removeprefix("www.")


def refuse_redirects_to_other_hosts(response: httpx.Response) -> None:
    """httpx response hook: a redirect may change the scheme or add/drop "www.", not the host."""
    location = response.headers.get("location")
    if not response.is_redirect or not location:
        return
    target = response.request.url.join(location)
    if _site(target.host) != _site(response.request.url.host):
        raise RedirectRefused(f"redirect from {response.request.url.host} to another host refused")


class RateLimited(httpx.HTTPError):
    """The provider's announced rate-limit window is longer than we are willing to wait."""


class ProviderError(Exception):
    """A provider's SDK failed; ``str(exc)`` is the failure's kind only (no message that could hold a key)."""


class ProviderSkipped(Exception):
    """The provider is not usable as configured (e.g. no API key): a note, not an error."""


def _numbers(header: str | None) -> list[float]:
    out: list[float] = []
    for part in (header or "").split(","):
        try:
            out.append(float(part.strip()))
        except ValueError:
            continue
    return out


def _retry_after(response: httpx.Response, default: float, cap: float = 30.0) -> float:
    try:
        return min(cap, max(0.0, float(response.headers.get("Retry-After", default))))
    except ValueError:
        return default
